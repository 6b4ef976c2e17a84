// Request-body validation for the completion endpoints: JSON object check, the field whitelist (unknown fields are
// a 400, never silently ignored), typed readers with ranges, and the mapping of OpenAI and native fields onto one
// GenParams (spec/server.md §6; max_tokens / max_completion_tokens → n_predict, logprobs → n_probs). Every
// failure is an ApiError 400 naming the field and what was expected.
import { badRequest } from "./errors.js";
import type { SamplingParams } from "./sampling.js";
import type { SamplingOptions } from "../options/sampling.js";

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Body = Record<string, Json>;

/** Per-request limits (server options) and model facts the validation needs. */
export interface Limits {
    nVocab: number;
    nPredictCap: number; // server -n: -1 = none
    maxStop: number;
    maxStopLength: number;
    defaults: SamplingOptions;
}

export interface GenParams {
    nPredict: number; // -1 = until end of text (bounded by the slot's safety limit)
    stop: string[];
    sampling: SamplingParams;
    ignoreEos: boolean;
    logprobs: boolean; // report the sampled tokens' log-probabilities
    topLogprobs: number; // and this many alternatives per token
    cachePrompt: boolean;
    idSlot: number; // -1 = any
    nKeep: number; // -1 = whole prompt
    nDiscard: number; // 0 = half
    stream: boolean;
    includeUsage: boolean;
}

/** Sampling and generation fields every completion endpoint accepts (native names and their OpenAI aliases). */
export const GEN_FIELDS = [
    "stream", "stream_options", "max_tokens", "max_completion_tokens", "n_predict", "temperature", "top_p", "top_k", "min_p",
    "typical_p", "repeat_penalty", "repeat_last_n", "presence_penalty", "frequency_penalty", "seed", "stop", "logit_bias",
    "ignore_eos", "n_probs", "cache_prompt", "id_slot", "n_keep", "n_discard", "model", "n", "user"
] as const;

export function parseBody(text: string, maxBytes: number): Body {
    if (Buffer.byteLength(text) > maxBytes) throw badRequest(`request body is ${Buffer.byteLength(text)} bytes; the limit is ${maxBytes} (--max-body-size)`);
    let v: unknown;
    try {
        v = JSON.parse(text);
    } catch (e) {
        throw badRequest(`request body is not valid JSON: ${(e as Error).message}`);
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw badRequest("request body must be a JSON object");
    return v as Body;
}

export function rejectUnknown(body: Body, allowed: readonly string[]): void {
    const set = new Set(allowed);
    const unknown = Object.keys(body).filter((k) => !set.has(k));
    if (unknown.length > 0) throw badRequest(`unknown field${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `'${k}'`).join(", ")}`);
}

function present(body: Body, key: string): boolean {
    return body[key] !== undefined && body[key] !== null;
}

export function num(body: Body, key: string, def: number, min: number, max: number, integer = false): number {
    if (!present(body, key)) return def;
    const v = body[key];
    if (typeof v !== "number" || !Number.isFinite(v)) throw badRequest(`'${key}' must be a number`);
    if (integer && !Number.isInteger(v)) throw badRequest(`'${key}' must be an integer`);
    if (v < min || v > max) throw badRequest(`'${key}' = ${v} is out of range; it must be between ${min} and ${max}`);
    return v;
}

export function bool(body: Body, key: string, def: boolean): boolean {
    if (!present(body, key)) return def;
    const v = body[key];
    if (typeof v !== "boolean") throw badRequest(`'${key}' must be true or false`);
    return v;
}

export function str(body: Body, key: string): string | undefined {
    if (!present(body, key)) return undefined;
    const v = body[key];
    if (typeof v !== "string") throw badRequest(`'${key}' must be a string`);
    return v;
}

function stopList(body: Body, lim: Limits): string[] {
    const v = body["stop"];
    if (v === undefined || v === null) return [];
    const list = typeof v === "string" ? [v] : Array.isArray(v) ? v : undefined;
    if (list === undefined || !list.every((s) => typeof s === "string")) throw badRequest("'stop' must be a string or an array of strings");
    if (list.length > lim.maxStop) throw badRequest(`'stop' has ${list.length} entries; at most ${lim.maxStop} are allowed`);
    for (const s of list as string[]) {
        if (s.length > lim.maxStopLength) throw badRequest(`a 'stop' string is ${s.length} characters long; the limit is ${lim.maxStopLength}`);
    }
    return (list as string[]).filter((s) => s !== "");
}

/** logit_bias as OpenAI's {"id": bias} or the native [[id, bias|false], …]; ids must be in the vocabulary. */
function logitBias(body: Body, nVocab: number): Map<number, number> {
    const v = body["logit_bias"];
    const out = new Map<number, number>();
    if (v === undefined || v === null) return out;
    const put = (idRaw: unknown, bias: unknown): void => {
        const id = typeof idRaw === "string" && /^\d+$/.test(idRaw) ? Number(idRaw) : idRaw;
        if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= nVocab) throw badRequest(`'logit_bias' token id ${JSON.stringify(idRaw)} is not in the vocabulary (0..${nVocab - 1})`);
        if (bias === false) out.set(id, -Infinity);
        else if (typeof bias === "number" && Number.isFinite(bias) && Math.abs(bias) <= 100) out.set(id, bias);
        else throw badRequest("'logit_bias' values must be numbers between -100 and 100 (or false to ban a token)");
    };
    if (Array.isArray(v)) for (const e of v) Array.isArray(e) && e.length === 2 ? put(e[0], e[1]) : put(undefined, undefined);
    else if (typeof v === "object") for (const [k, b] of Object.entries(v)) put(k, b);
    else throw badRequest("'logit_bias' must be an object {token_id: bias} or an array of [token_id, bias] pairs");
    return out;
}

/** The fields of §6 (plus OpenAI aliases) → GenParams; `logprobs` says which endpoint's logprobs fields apply. */
export function genParams(body: Body, lim: Limits, logprobs: "chat" | "completion" | "native"): GenParams {
    const d = lim.defaults;
    if (num(body, "n", 1, 1, 128, true) !== 1) throw badRequest("only one completion choice per request is supported ('n' must be 1)");
    const maxPredict = 1 << 20;
    let nPredict = -1;
    for (const key of ["n_predict", "max_tokens", "max_completion_tokens"]) nPredict = num(body, key, nPredict, key === "n_predict" ? -1 : 0, maxPredict, true);
    if (lim.nPredictCap >= 0 && (nPredict < 0 || nPredict > lim.nPredictCap)) nPredict = lim.nPredictCap;
    let topLogprobs = num(body, "n_probs", 0, 0, 20, true);
    let wantLogprobs = topLogprobs > 0;
    if (logprobs === "chat") {
        wantLogprobs = bool(body, "logprobs", wantLogprobs);
        if (present(body, "top_logprobs") && !wantLogprobs) throw badRequest("'top_logprobs' requires 'logprobs': true");
        topLogprobs = num(body, "top_logprobs", topLogprobs, 0, 20, true);
    } else if (logprobs === "completion" && present(body, "logprobs")) {
        topLogprobs = num(body, "logprobs", 0, 0, 5, true);
        wantLogprobs = true;
    }
    const opts = body["stream_options"];
    if (opts !== undefined && opts !== null && (typeof opts !== "object" || Array.isArray(opts))) throw badRequest("'stream_options' must be an object");
    const includeUsage = opts !== undefined && opts !== null ? bool(opts as Body, "include_usage", false) : false;
    if (present(body, "model")) str(body, "model");
    if (present(body, "user")) str(body, "user");
    return {
        nPredict,
        stop: stopList(body, lim),
        sampling: {
            temperature: num(body, "temperature", d.temp, 0, 100),
            topK: num(body, "top_k", d.topK, 0, lim.nVocab, true),
            topP: num(body, "top_p", d.topP, 0, 1),
            minP: num(body, "min_p", d.minP, 0, 1),
            typicalP: num(body, "typical_p", d.typical, 0, 1),
            repeatPenalty: num(body, "repeat_penalty", d.repeatPenalty, 0, 100),
            repeatLastN: num(body, "repeat_last_n", d.repeatLastN, -1, 1 << 20, true),
            presencePenalty: num(body, "presence_penalty", d.presencePenalty, -2, 2),
            frequencyPenalty: num(body, "frequency_penalty", d.frequencyPenalty, -2, 2),
            seed: num(body, "seed", d.seed, -1, 0xffffffff, true),
            logitBias: logitBias(body, lim.nVocab)
        },
        ignoreEos: bool(body, "ignore_eos", false),
        logprobs: wantLogprobs,
        topLogprobs,
        cachePrompt: bool(body, "cache_prompt", true),
        idSlot: num(body, "id_slot", -1, -1, 1 << 16, true),
        nKeep: num(body, "n_keep", 0, -1, 1 << 24, true),
        nDiscard: num(body, "n_discard", 0, 0, 1 << 24, true),
        stream: bool(body, "stream", false),
        includeUsage
    };
}
