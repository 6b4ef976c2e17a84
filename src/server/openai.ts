// OpenAI endpoints: POST /v1/chat/completions and /v1/completions (spec/server.md §5.6–5.7). Requests are
// validated (unknown fields and unsupported features are a 400, never silently dropped), chat messages are
// rendered with the chat template (engine/chat/template.ts), and answers keep the reference's key order
// (choices, created, id, model, object). Streams end with `data: [DONE]`; `finish_reason` is "length" when the
// token budget ended the generation (a documented divergence from the reference, which always says "stop").
import type { Model } from "../engine/index.js";
import type { ChatMessage } from "../engine/chat/template.js";
import { badRequest } from "./errors.js";
import { collect, completionId, loaded, stream, timings, usage, type ServerState } from "./drive.js";
import { GEN_FIELDS, genParams, rejectUnknown, str, type Body, type Json } from "./request.js";
import type { TaskResult, TokenLp } from "./slots.js";

// `store`, `metadata` (OpenAI-side storage: nothing is stored here) and `parallel_tool_calls` (tools are refused)
// change nothing in the reply, so clients that always send them are served.
const CHAT_FIELDS = [
    ...GEN_FIELDS, "messages", "logprobs", "top_logprobs", "response_format", "tools", "tool_choice", "add_generation_prompt", "chat_template_kwargs",
    "store", "metadata", "parallel_tool_calls"
];
const COMPLETION_FIELDS = [...GEN_FIELDS, "prompt", "logprobs", "echo", "best_of", "suffix"];
const ROLES = new Set(["system", "developer", "user", "assistant"]);

function finishReason(r: TaskResult): "stop" | "length" {
    return r.stop === "limit" ? "length" : "stop";
}

function messageText(content: Json | undefined, i: number): string {
    if (typeof content === "string") return content;
    if (Array.isArray(content)) {
        return content
            .map((part) => {
                if (part === null || typeof part !== "object" || Array.isArray(part)) throw badRequest(`messages[${i}].content parts must be objects`);
                if (part["type"] !== "text") throw badRequest(`messages[${i}].content part type '${String(part["type"])}' is not supported (text only)`);
                if (typeof part["text"] !== "string") throw badRequest(`messages[${i}].content text part needs a string 'text'`);
                return part["text"];
            })
            .join("");
    }
    throw badRequest(`messages[${i}].content must be a string or an array of text parts`);
}

/** Validated chat messages (developer → system); tool calls are refused until the server supports them. */
export function parseMessages(body: Body): ChatMessage[] {
    const v = body["messages"];
    if (!Array.isArray(v) || v.length === 0) throw badRequest("'messages' is required and must be a non-empty array");
    const out = v.map((m, i): ChatMessage => {
        if (m === null || typeof m !== "object" || Array.isArray(m)) throw badRequest(`messages[${i}] must be an object`);
        const role = m["role"];
        if (role === "tool" || m["tool_calls"] !== undefined) throw badRequest(`messages[${i}]: tool messages and tool_calls are not supported by this server yet`);
        if (typeof role !== "string" || !ROLES.has(role)) throw badRequest(`messages[${i}].role must be one of system, developer, user, assistant`);
        return { role: role === "developer" ? "system" : (role as ChatMessage["role"]), content: messageText(m["content"], i) };
    });
    const n = out.length;
    if (n >= 2 && out[n - 1]?.role === "assistant" && out[n - 2]?.role === "assistant") throw badRequest("two trailing assistant messages: only the last one can be continued (prefill)");
    return out;
}

/** Renders the conversation; a trailing assistant message is a prefill that the reply continues. */
export function renderChat(s: ServerState, model: Model, messages: ChatMessage[], addGenerationPrompt: boolean): string {
    const tpl = s.template;
    if (tpl === undefined || !("render" in tpl)) throw tpl ?? badRequest("no chat template");
    const piece = (id: number | null): string => (id === null ? "" : Buffer.from(model.tokenToPiece(id, true)).toString("utf8"));
    const vars = { bos_token: piece(model.meta.bos), eos_token: piece(model.meta.eos) };
    const last = messages[messages.length - 1];
    if (last?.role === "assistant") return tpl.render(messages.slice(0, -1), { ...vars, add_generation_prompt: true }) + last.content;
    return tpl.render(messages, { ...vars, add_generation_prompt: addGenerationPrompt });
}

/** Refuses what the server cannot do yet; returns whether the reply must be one JSON object. */
function checkChatFeatures(body: Body): boolean {
    const tools = body["tools"];
    if (Array.isArray(tools) ? tools.length > 0 : tools !== undefined && tools !== null) throw badRequest("'tools' (function calling) is not supported by this server yet");
    const choice = body["tool_choice"];
    if (choice !== undefined && choice !== null && choice !== "none" && choice !== "auto") throw badRequest("'tool_choice' needs tools, which this server does not support yet");
    const rf = body["response_format"];
    let json = false;
    if (rf !== undefined && rf !== null) {
        const type = typeof rf === "object" && !Array.isArray(rf) ? rf["type"] : undefined;
        if (type === "json_object" && typeof rf === "object" && !Array.isArray(rf) && rf["schema"] === undefined) json = true;
        else if (type !== "text") throw badRequest(`'response_format' ${JSON.stringify(rf)} is not supported: use {"type":"json_object"} (no schema) or {"type":"text"}; JSON schemas are not implemented yet`);
    }
    const kw = body["chat_template_kwargs"];
    if (kw !== undefined && kw !== null && (typeof kw !== "object" || Array.isArray(kw) || Object.keys(kw).length > 0)) throw badRequest("'chat_template_kwargs' is not supported yet");
    return json;
}

function chatLogprobs(model: Model, lps: TokenLp[]): Record<string, unknown> {
    const entry = (id: number, logprob: number): Record<string, unknown> => {
        const bytes = Array.from(model.tokenToPiece(id));
        return { id, token: Buffer.from(bytes).toString("utf8"), bytes, logprob };
    };
    return { content: lps.map((l) => ({ ...entry(l.id, l.logprob), top_logprobs: l.top.map((t) => entry(t.id, t.logprob)) })) };
}

export async function chatCompletions(s: ServerState, body: Body, signal: AbortSignal): Promise<Response> {
    const { model, sched, limits } = loaded(s);
    rejectUnknown(body, CHAT_FIELDS);
    const json = checkChatFeatures(body);
    const params = genParams(body, limits, "chat");
    const messages = parseMessages(body);
    const addGen = body["add_generation_prompt"] === undefined ? true : body["add_generation_prompt"] === true;
    const tokenize = (msgs: ChatMessage[]): Uint32Array => model.tokenize(renderChat(s, model, msgs, addGen), false, true);
    const prompt = tokenize(messages);
    const shorten = (budget: number): Uint32Array | undefined => {
        const system = messages.filter((m, i) => m.role === "system" && messages.slice(0, i).every((p) => p.role === "system"));
        let rest = messages.slice(system.length);
        while (rest.length > 1) {
            rest = rest.slice(1);
            while (rest.length > 1 && rest[0]?.role !== "user") rest = rest.slice(1);
            const t = tokenize([...system, ...rest]);
            if (t.length <= budget) return t;
        }
        return undefined;
    };
    const id = completionId("chatcmpl-");
    const created = Math.floor(Date.now() / 1000);
    const name = str(body, "model") ?? s.alias;
    const head = { created, id, model: name };
    if (!params.stream) {
        const r = await collect(sched, { prompt, params, shorten, json }, signal);
        const choice: Record<string, unknown> = { finish_reason: finishReason(r), index: 0, message: { role: "assistant", content: r.text } };
        if (params.logprobs) choice["logprobs"] = chatLogprobs(model, r.logprobs);
        return Response.json({ choices: [choice], ...head, object: "chat.completion", usage: usage(r), timings: timings(r, sched.nCtxSlot) });
    }
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({ choices, ...head, object: "chat.completion.chunk", ...extra });
    let started = false;
    const start = (sse: { send(o: unknown): void }): void => {
        if (!started) sse.send(chunk([{ finish_reason: null, index: 0, delta: { role: "assistant", content: null } }]));
        started = true;
    };
    return stream(s, { prompt, params, shorten, json }, signal, {
        token: (sse, ev) => {
            start(sse);
            if (ev.delta === "" && ev.logprob === undefined) return;
            const choice: Record<string, unknown> = { finish_reason: null, index: 0, delta: ev.delta === "" ? {} : { content: ev.delta } };
            if (ev.logprob !== undefined) choice["logprobs"] = chatLogprobs(model, [ev.logprob]);
            sse.send(chunk([choice]));
        },
        done: (sse, r) => {
            start(sse);
            const t = { timings: timings(r, sched.nCtxSlot) };
            sse.send(chunk([{ finish_reason: finishReason(r), index: 0, delta: {} }], params.includeUsage ? {} : t));
            if (params.includeUsage) sse.send(chunk([], { usage: usage(r), ...t }));
        }
    }, true);
}

/** A prompt as text, token ids, or a mixed array of both (BOS only when it starts with text, spec §5.5). */
export function parsePrompt(model: Model, v: Json | undefined, key = "prompt"): Uint32Array {
    if (v === undefined || v === null) throw badRequest(`'${key}' is required`);
    if (typeof v === "string") return model.tokenize(v, true, true);
    if (!Array.isArray(v)) throw badRequest(`'${key}' must be a string, an array of token ids, or a mixed array of both`);
    if (v.length === 1 && typeof v[0] === "string") return model.tokenize(v[0], true, true);
    const out: number[] = [];
    v.forEach((e, i) => {
        if (typeof e === "string") out.push(...model.tokenize(e, i === 0, true));
        else if (typeof e === "number" && Number.isInteger(e) && e >= 0 && e < model.meta.nVocab) out.push(e);
        else if (Array.isArray(e) || typeof e === "string") throw badRequest(`only one prompt per request is supported ('${key}' holds several)`);
        else throw badRequest(`'${key}'[${i}] is not a token id in 0..${model.meta.nVocab - 1} or a string`);
    });
    return Uint32Array.from(out);
}

function completionLogprobs(model: Model, lps: TokenLp[], offset0: number): Record<string, unknown> {
    const text = (id: number): string => Buffer.from(model.tokenToPiece(id)).toString("utf8");
    let off = offset0;
    const textOffset = lps.map((l) => {
        const o = off;
        off += text(l.id).length;
        return o;
    });
    return {
        tokens: lps.map((l) => text(l.id)),
        token_logprobs: lps.map((l) => l.logprob),
        top_logprobs: lps.map((l) => Object.fromEntries(l.top.map((t) => [text(t.id), t.logprob]))),
        text_offset: textOffset
    };
}

export async function completions(s: ServerState, body: Body, signal: AbortSignal): Promise<Response> {
    const { model, sched, limits } = loaded(s);
    rejectUnknown(body, COMPLETION_FIELDS);
    if (body["echo"] === true) throw badRequest("'echo' is not supported");
    for (const k of ["best_of", "suffix"]) if (body[k] !== undefined && body[k] !== null) throw badRequest(`Unsupported param: ${k}`);
    const params = genParams(body, limits, "completion");
    const prompt = parsePrompt(model, body["prompt"]);
    const head = { created: Math.floor(Date.now() / 1000), id: completionId("cmpl-"), model: str(body, "model") ?? s.alias };
    if (!params.stream) {
        const r = await collect(sched, { prompt, params }, signal);
        const lp = params.logprobs ? completionLogprobs(model, r.logprobs, 0) : null;
        return Response.json({ choices: [{ text: r.text, index: 0, logprobs: lp, finish_reason: finishReason(r) }], ...head, object: "text_completion", usage: usage(r), timings: timings(r, sched.nCtxSlot) });
    }
    let offset = 0;
    return stream(s, { prompt, params }, signal, {
        token: (sse, ev) => {
            if (ev.delta === "" && ev.logprob === undefined) return;
            const lp = ev.logprob !== undefined ? completionLogprobs(model, [ev.logprob], offset) : null;
            offset += ev.delta.length;
            sse.send({ choices: [{ text: ev.delta, index: 0, logprobs: lp, finish_reason: null }], ...head, object: "text_completion" });
        },
        done: (sse, r) => {
            const t = { timings: timings(r, sched.nCtxSlot) };
            sse.send({ choices: [{ text: "", index: 0, logprobs: null, finish_reason: finishReason(r) }], ...head, object: "text_completion", ...(params.includeUsage ? {} : t) });
            if (params.includeUsage) sse.send({ choices: [], ...head, object: "text_completion", usage: usage(r), ...t });
        }
    }, true);
}
