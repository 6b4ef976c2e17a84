// Shared state of a running server and the two ways a completion request is driven through the scheduler:
// collect (one JSON answer; a client disconnect cancels the task) and stream (SSE; a closed stream or a
// disconnect cancels it, errors after the first byte become one `data: {"error":…}` event before the end).
import type { ChatTemplate } from "../engine/chat/template.js";
import type { Context, Model } from "../engine/index.js";
import type { ServerOptions } from "../options/server.js";
import { ApiError } from "./errors.js";
import type { Metrics } from "./metrics.js";
import type { Limits } from "./request.js";
import type { Scheduler, TaskInput, TaskResult, TokenEvent } from "./slots.js";
import { SseStream } from "./sse.js";

export interface ServerState {
    opts: ServerOptions;
    metrics: Metrics;
    ready: boolean;
    draining: boolean;
    model?: Model;
    ctx?: Context;
    sched?: Scheduler;
    limits?: Limits;
    template?: ChatTemplate | ApiError; // the error when no template could be resolved (chat requests get it)
    alias: string;
}

export interface Loaded {
    model: Model;
    ctx: Context;
    sched: Scheduler;
    limits: Limits;
}

export function loaded(s: ServerState): Loaded {
    if (s.model === undefined || s.ctx === undefined || s.sched === undefined || s.limits === undefined) {
        throw new ApiError(503, "unavailable_error", "Loading model");
    }
    return { model: s.model, ctx: s.ctx, sched: s.sched, limits: s.limits };
}

export type TaskSpec = Omit<TaskInput, "signal" | "sink">;

function linked(signal: AbortSignal): AbortController {
    const ac = new AbortController();
    if (signal.aborted) ac.abort();
    else signal.addEventListener("abort", () => ac.abort(), { once: true });
    return ac;
}

export function collect(sched: Scheduler, spec: TaskSpec, reqSignal: AbortSignal): Promise<TaskResult> {
    return new Promise<TaskResult>((resolve, reject) => {
        const ac = linked(reqSignal);
        sched.submit({ ...spec, signal: ac.signal, sink: { token: () => undefined, done: resolve, fail: reject } });
    });
}

export interface StreamHandlers {
    token(sse: SseStream, ev: TokenEvent): void;
    done(sse: SseStream, r: TaskResult): void;
}

/** Validation errors thrown by submit() escape before any byte is sent, so they are plain JSON errors. */
export function stream(s: ServerState, spec: TaskSpec, reqSignal: AbortSignal, h: StreamHandlers, doneMarker: boolean): Response {
    const ac = linked(reqSignal);
    const sse = new SseStream(() => ac.abort(), s.opts.ssePingMs);
    loaded(s).sched.submit({
        ...spec,
        signal: ac.signal,
        sink: {
            token: (ev) => h.token(sse, ev),
            done: (r) => {
                h.done(sse, r);
                sse.end(doneMarker);
            },
            fail: (e) => {
                sse.send(e.body());
                sse.end(doneMarker);
            }
        }
    });
    return sse.response;
}

/** The reference's `timings` object (spec/server.md §5.5). */
export function timings(r: TaskResult, nCtxSlot: number): Record<string, number> {
    const promptN = r.nPrompt - r.nCached;
    const predictedN = r.tokens.length;
    return {
        prompt_n: promptN,
        prompt_ms: r.promptMs,
        prompt_per_token_ms: r.promptMs / Math.max(1, promptN),
        prompt_per_second: (1e3 * promptN) / Math.max(1e-6, r.promptMs),
        predicted_n: predictedN,
        predicted_ms: r.predictedMs,
        predicted_per_token_ms: r.predictedMs / Math.max(1, predictedN),
        predicted_per_second: (1e3 * predictedN) / Math.max(1e-6, r.predictedMs),
        n_ctx: nCtxSlot,
        n_past: r.nPast
    };
}

export function usage(r: TaskResult): Record<string, unknown> {
    return {
        completion_tokens: r.tokens.length,
        prompt_tokens: r.nPrompt,
        total_tokens: r.nPrompt + r.tokens.length,
        prompt_tokens_details: { cached_tokens: r.nCached }
    };
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export function completionId(prefix: string): string {
    let s = prefix;
    for (let i = 0; i < 32; i++) s += ALNUM[Math.floor(Math.random() * ALNUM.length)];
    return s;
}
