// Generation helpers for `ikl run`: prompt escapes, UTF-8-safe streaming of token bytes, a Session that keeps
// the tokens already in the KV cache (so a chat turn only decodes what is new), the greedy/sampled token loop
// with sampling fused into decode, the model card, and llama.cpp's timing block (spec/cli.md §3.2). Printing is
// left to callers through `write` callbacks; nothing here touches process streams.
import { sprintf } from "../ui/printf.js";
import { formatBytes, formatCount } from "../ui/format.js";
import { isCancelled } from "../ui/sigint.js";
import type { Context, Model, Sampler } from "./model.js";

/** ik common.cpp `process_escapes`: \n \r \t \' \" \\ \xNN; unknown escapes are kept as written. */
export function processEscapes(s: string): string {
    return s.replace(/\\(x[0-9a-fA-F]{2}|.)/gs, (m, c: string) => {
        if (c.length === 3) return String.fromCharCode(parseInt(c.slice(1), 16));
        const map: Record<string, string> = { n: "\n", r: "\r", t: "\t", "'": "'", '"': '"', "\\": "\\" };
        return map[c] ?? m;
    });
}

/** Holds back an incomplete trailing UTF-8 sequence so each write is whole characters (bytes pass unchanged). */
export class Utf8Stream {
    private pending = new Uint8Array(0);

    push(bytes: Uint8Array): Uint8Array {
        const buf = new Uint8Array(this.pending.length + bytes.length);
        buf.set(this.pending);
        buf.set(bytes, this.pending.length);
        let cut = buf.length;
        for (let back = 1; back <= Math.min(3, buf.length); back++) {
            const b = buf[buf.length - back] as number;
            if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back
            const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
            if (need > back) cut = buf.length - back;
            break;
        }
        this.pending = buf.slice(cut);
        return buf.subarray(0, cut);
    }

    flush(): Uint8Array {
        const rest = this.pending;
        this.pending = new Uint8Array(0);
        return rest;
    }
}

export interface Timings {
    startMs: number;
    loadMs: number;
    sampleUs: number;
    nSample: number;
    promptUs: number;
    nPrompt: number;
    evalUs: number;
    nEval: number;
    /** Wall clock (ms) of the first prompt decode, the first and the latest emitted token; tokens emitted. */
    promptStartMs: number | undefined;
    firstTokenMs: number;
    lastTokenMs: number;
    nDecoded: number;
}

export function newTimings(): Timings {
    return { startMs: performance.now(), loadMs: 0, sampleUs: 0, nSample: 0, promptUs: 0, nPrompt: 0, evalUs: 0, nEval: 0,
        promptStartMs: undefined, firstTokenMs: 0, lastTokenMs: 0, nDecoded: 0 };
}

/** The reference's `llama_print_timings` block (spec/cli.md §3.2); compute times are measured in Rust. */
export function formatTimings(t: Timings): string {
    const rate = (ms: number, n: number): [number, number] => [ms / Math.max(n, 1), (1e3 / ms) * n];
    const [sMs, pMs, eMs] = [t.sampleUs / 1e3, t.promptUs / 1e3, t.evalUs / 1e3];
    const nS = Math.max(1, t.nSample);
    const nE = Math.max(1, t.nEval);
    return [
        "",
        sprintf("llama_print_timings:        load time = %10.2f ms", t.loadMs),
        sprintf("llama_print_timings:      sample time = %10.2f ms / %5d runs   (%8.2f ms per token, %8.2f tokens per second)", sMs, nS, ...rate(sMs, nS)),
        sprintf("llama_print_timings: prompt eval time = %10.2f ms / %5d tokens (%8.2f ms per token, %8.2f tokens per second)", pMs, t.nPrompt, ...rate(pMs, t.nPrompt)),
        sprintf("llama_print_timings:        eval time = %10.2f ms / %5d runs   (%8.2f ms per token, %8.2f tokens per second)", eMs, nE, ...rate(eMs, nE)),
        sprintf("llama_print_timings:       total time = %10.2f ms / %5d tokens", performance.now() - t.startMs, t.nPrompt + t.nEval),
        ""
    ].join("\n");
}

/**
 * The block llama-cli prints when generation ends normally (ik examples/main/main.cpp): prompt eval = wall time
 * from the first prompt decode to the first emitted token, eval = first to latest emitted token over the tokens
 * emitted; nothing when no token was emitted. (`formatTimings` is the Ctrl-C block.)
 */
export function formatMainTimings(t: Timings): string {
    if (t.nDecoded === 0) return "";
    const pMs = t.promptStartMs === undefined ? 0 : t.firstTokenMs - t.promptStartMs;
    const eMs = Math.max(1e-3, t.lastTokenMs - t.firstTokenMs);
    const pPer = t.nPrompt > 0 ? pMs / t.nPrompt : 0;
    const pRate = pMs > 0 && t.nPrompt > 0 ? (1e3 / pMs) * t.nPrompt : 0;
    return [
        "",
        sprintf("main: prompt eval time = %10.2f ms / %5d tokens (%8.2f ms per token, %8.2f tokens per second)", pMs, t.nPrompt, pPer, pRate),
        sprintf("main:        eval time = %10.2f ms / %5d tokens (%8.2f ms per token, %8.2f tokens per second)", eMs, t.nDecoded, eMs / t.nDecoded,
            (1e3 / eMs) * t.nDecoded),
        sprintf("main:       total time = %10.2f ms / %5d tokens", pMs + eMs, t.nPrompt + t.nDecoded),
        ""
    ].join("\n");
}

/** Short model card for stderr (UX.md §3): architecture, size, types, context. */
export function modelCard(model: Model, path: string, nCtx: number): string {
    const m = model.meta;
    const types = Object.entries(m.types).sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t} ×${n}`).join(", ");
    return [
        `model: ${path}${m.name === null ? "" : ` (${m.name})`}`,
        `  arch ${m.arch ?? "?"}, ${formatCount(m.nParams)} params, ${formatBytes(m.sizeBytes)}, ${m.nLayer} layers, n_embd ${m.nEmbd}, n_vocab ${m.nVocab}`,
        `  types: ${types}`,
        `  context: n_ctx ${nCtx} (trained ${m.nCtxTrain})`
    ].join("\n");
}

export type StopReason = "eog" | "length" | "context" | "interrupted";

/** A context plus the tokens already evaluated into sequence 0 of its KV cache. */
export class Session {
    readonly evaluated: number[] = [];
    constructor(readonly model: Model, readonly ctx: Context, readonly nBatch: number, readonly timings: Timings) {}

    /**
     * Makes the KV cache hold exactly `tokens` (keeping the longest common prefix, decoding only the rest in
     * chunks of nBatch) and samples the next token. Returns undefined when interrupted.
     */
    async feed(tokens: Uint32Array, sampler: Sampler, signal: AbortSignal): Promise<number | undefined> {
        this.timings.promptStartMs ??= performance.now();
        let keep = 0;
        while (keep < this.evaluated.length && keep < tokens.length - 1 && this.evaluated[keep] === tokens[keep]) keep++;
        if (keep < this.evaluated.length) this.ctx.kvRemove(0, keep, -1);
        this.evaluated.length = keep;
        for (const t of tokens.subarray(keep)) sampler.accept(t);
        let sampled = -1;
        for (let i0 = keep; i0 < tokens.length; i0 += this.nBatch) {
            const chunk = tokens.subarray(i0, Math.min(i0 + this.nBatch, tokens.length));
            const last = i0 + chunk.length === tokens.length;
            try {
                const r = await this.ctx.decode({
                    tokens: chunk,
                    pos: Int32Array.from(chunk, (_, j) => i0 + j),
                    seq: new Int32Array(chunk.length),
                    outRows: last ? Int32Array.of(chunk.length - 1) : new Int32Array(0),
                    sampler: last ? sampler : undefined,
                    signal
                });
                this.timings.promptUs += r.computeUs;
                this.timings.nPrompt += chunk.length;
                this.timings.sampleUs += r.sampleUs;
                this.evaluated.push(...chunk);
                if (last) sampled = r.sampled[0] as number;
            } catch (e) {
                if (isCancelled(e)) return undefined;
                throw e;
            }
        }
        this.timings.nSample += 1;
        return sampled;
    }

    /**
     * Streams tokens from `first` on: stops at an end-of-generation token, after nPredict tokens (< 0: no limit),
     * when the context is full, or when `signal` aborts. `write` receives whole UTF-8 characters.
     */
    async generate(first: number, sampler: Sampler, nPredict: number, signal: AbortSignal, write: (b: Uint8Array) => void): Promise<{ reason: StopReason; tokens: number[] }> {
        const utf8 = new Utf8Stream();
        const out: number[] = [];
        let tok = first;
        let reason: StopReason;
        for (;;) {
            if (this.model.isEog(tok)) {
                reason = "eog";
                break;
            }
            out.push(tok);
            write(utf8.push(this.model.tokenToPiece(tok)));
            const now = performance.now();
            if (this.timings.nDecoded++ === 0) this.timings.firstTokenMs = now;
            this.timings.lastTokenMs = now;
            if (nPredict >= 0 && out.length >= nPredict) {
                reason = "length";
                break;
            }
            if (signal.aborted) {
                reason = "interrupted";
                break;
            }
            if (this.evaluated.length + 1 > this.ctx.nCtx) {
                reason = "context";
                break;
            }
            try {
                const pos = this.evaluated.length;
                const r = await this.ctx.decode({ tokens: Uint32Array.of(tok), pos: Int32Array.of(pos), seq: Int32Array.of(0), outRows: Int32Array.of(0), sampler, signal });
                this.evaluated.push(tok);
                this.timings.evalUs += r.computeUs;
                this.timings.nEval += 1;
                this.timings.sampleUs += r.sampleUs;
                this.timings.nSample += 1;
                tok = r.sampled[0] as number;
            } catch (e) {
                if (!isCancelled(e)) throw e;
                reason = "interrupted";
                break;
            }
        }
        write(utf8.flush());
        return { reason, tokens: out };
    }
}

/** KV cells the reference allocates for -c N: padded to 256 with flash attention, 32 without. */
export function paddedCtx(n: number, flashAttn: boolean): number {
    const pad = flashAttn ? 256 : 32;
    return Math.ceil(n / pad) * pad;
}
