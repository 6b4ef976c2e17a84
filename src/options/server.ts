// Server-only options of `ikl server` (spec/cli.md §4, llama-server spellings: --host, --port, -np/--parallel,
// -a/--alias, --api-key, --slot-save-path, --metrics, --no-slots, ...) plus ikl's own --ctx-overflow and
// per-request limits. Model, context and sampling groups are shared with `ikl run` (options/model.ts, ...).
import { readFileSync, statSync } from "node:fs";
import { Command, Option } from "commander";
import { attachGroup } from "./attach.js";
import { floatInRange, intInRange, parseSize } from "./parsers.js";
import { IklError, usageError } from "../engine/errors.js";
import type { SamplingOptions } from "./sampling.js";

export const OVERFLOW_MODES = ["shift", "reprefill", "error"] as const;
export type CtxOverflow = (typeof OVERFLOW_MODES)[number];

export interface ServerOptions {
    modelPath: string;
    host: string;
    port: number;
    parallel: number;
    nPredict: number; // server cap; -1 = none
    alias: string | undefined;
    apiKeys: string[];
    slotSavePath: string | undefined;
    metrics: boolean;
    noSlots: boolean;
    corsOrigins: string[]; // empty = CORS off
    chatTemplate: string | undefined;
    chatTemplateFile: string | undefined;
    ctxOverflow: CtxOverflow;
    similarity: number;
    maxBodyBytes: number;
    maxQueue: number;
    timeoutS: number;
    ssePingMs: number;
    sampling: SamplingOptions;
}

/** Up to 64 slots: one KV sequence id each (the engine's sequence ids are 0..63). */
export const MAX_PARALLEL = 64;

function collectList(value: string, previous: string[] | undefined): string[] {
    return [...(previous ?? []), ...value.split(",").map((s) => s.trim()).filter((s) => s !== "")];
}

export function withServerOptions(cmd: Command): Command {
    return attachGroup(cmd, "Server:", [
        new Option("--host <ADDR>", "listen address (never expose the server to the Internet)").default("127.0.0.1"),
        new Option("--port <N>", "listen port; 0 = any free port (printed on start)").argParser(intInRange(0, 65535)).default(8080),
        new Option("--parallel <N>", "slots: requests served at once, each with n_ctx/N tokens of context").argParser(intInRange(1, MAX_PARALLEL)).default(1),
        new Option("-n, --n-predict <N>", "cap on tokens generated per request; -1 = none").argParser(intInRange(-1, 1 << 30)).default(-1),
        new Option("-a, --alias <NAME>", "model name reported by /v1/models (default: the model file path)"),
        new Option("--api-key <KEY,...>", "require `Authorization: Bearer KEY` (or X-Api-Key); repeatable").argParser(collectList),
        new Option("--api-key-file <FILE>", "read API keys from FILE, one per line"),
        new Option("--slot-save-path <DIR>", "enable slot save/restore into files in DIR (must exist)"),
        new Option("--metrics", "enable the Prometheus /metrics endpoint"),
        new Option("--no-slots", "disable the /slots endpoint"),
        new Option("--cors-origins <ORIGIN,...>", "allow browser requests from these origins (* = any); default: CORS off").argParser(collectList),
        new Option("--chat-template <NAME|JINJA>", "built-in template name or a Jinja template (default: the model's)"),
        new Option("--chat-template-file <FILE>", "read the Jinja chat template from FILE"),
        new Option("--ctx-overflow <MODE>", "when a slot's context is full: shift (drop the older half), reprefill (drop oldest messages, re-evaluate), error (400)")
            .choices(OVERFLOW_MODES)
            .default("shift"),
        new Option("--slot-prompt-similarity <F>", "reuse the idle slot whose cache shares at least this fraction of the prompt; 0 = least recently used")
            .argParser(floatInRange(0, 1))
            .default(0.1),
        new Option("--max-body-size <SIZE>", "largest request body accepted (e.g. 8MiB)").argParser(parseSize).default(8 << 20, "8MiB"),
        new Option("--max-queue <N>", "requests allowed to wait for a slot; more get 503").argParser(intInRange(0, 1 << 20)).default(256),
        new Option("--timeout <S>", "seconds allowed to receive a request").argParser(intInRange(1, 86400)).default(600),
        new Option("--sse-ping-interval <S>", "seconds between `: ping` comments on a quiet stream; 0 = off").argParser(floatInRange(0, 3600)).default(30)
    ]);
}

function apiKeys(raw: Record<string, unknown>): string[] {
    const keys = [...((raw["apiKey"] as string[] | undefined) ?? [])];
    const file = raw["apiKeyFile"] as string | undefined;
    if (file !== undefined) {
        let text: string;
        try {
            text = readFileSync(file, "utf8");
        } catch (e) {
            throw new IklError("IKL_E_IO", `${file}: cannot read API key file: ${(e as Error).message}`);
        }
        keys.push(...text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== ""));
        if (keys.length === 0) throw usageError(`${file} holds no API key`);
    }
    return keys;
}

export function parseServerOptions(raw: Record<string, unknown>, modelPath: string, sampling: SamplingOptions): ServerOptions {
    const dir = raw["slotSavePath"] as string | undefined;
    if (dir !== undefined) {
        const st = (() => {
            try {
                return statSync(dir);
            } catch {
                return undefined;
            }
        })();
        if (st === undefined || !st.isDirectory()) throw usageError(`--slot-save-path ${dir}: not an existing directory`, "create it first");
    }
    return {
        modelPath,
        host: (raw["host"] as string | undefined) ?? "127.0.0.1",
        port: (raw["port"] as number | undefined) ?? 8080,
        parallel: (raw["parallel"] as number | undefined) ?? 1,
        nPredict: (raw["nPredict"] as number | undefined) ?? -1,
        alias: raw["alias"] as string | undefined,
        apiKeys: apiKeys(raw),
        slotSavePath: dir,
        metrics: raw["metrics"] === true,
        noSlots: raw["slots"] === false,
        corsOrigins: (raw["corsOrigins"] as string[] | undefined) ?? [],
        chatTemplate: raw["chatTemplate"] as string | undefined,
        chatTemplateFile: raw["chatTemplateFile"] as string | undefined,
        ctxOverflow: (raw["ctxOverflow"] as CtxOverflow | undefined) ?? "shift",
        similarity: (raw["slotPromptSimilarity"] as number | undefined) ?? 0.1,
        maxBodyBytes: (raw["maxBodySize"] as number | undefined) ?? 8 << 20,
        maxQueue: (raw["maxQueue"] as number | undefined) ?? 256,
        timeoutS: (raw["timeout"] as number | undefined) ?? 600,
        ssePingMs: 1000 * ((raw["ssePingInterval"] as number | undefined) ?? 30),
        sampling
    };
}
