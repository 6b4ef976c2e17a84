// The server's scheduler: -np slots over one Context (slot i = sequence i of the unified KV cache, at most
// n_ctx/np cells each), a FIFO queue, and continuous batching: every step is ONE decode call carrying the next
// token of every generating slot plus prompt chunks of slots in prompt processing, up to n_batch tokens
// (spec/server.md §8.4). Prompt reuse is the exact longest common token prefix with the slot's cached tokens
// (§8.2); context overflow follows --ctx-overflow (§9 and issue #10). All KV edits happen here, between decode
// calls, because the engine refuses them while a decode is in flight. The step's rows are sampled in the engine,
// each by its slot's own sampler (step.ts); text, stop strings and logprobs are produced per token through the
// task's sink; HTTP shaping lives in openai.ts / native-routes.ts.
import { Utf8Stream } from "../engine/generate.js";
import type { Context, Model } from "../engine/index.js";
import { ApiError, badRequest, toApiError } from "./errors.js";
import type { Metrics } from "./metrics.js";
import type { GenParams } from "./request.js";
import { JsonPrefix } from "./json-mode.js";
import { SlotSampler, tokenLogprobs, topKIndices, type TokenLogprob } from "./sampling.js";
import { decodeStep, nativeSampler, rowBias, type RowBias, type RowRequest, type RowResult } from "./step.js";
import type { Sampler } from "../engine/index.js";

export type OverflowMode = "shift" | "reprefill" | "error";
export type StopKind = "eos" | "word" | "limit";

export interface TokenEvent {
    delta: string; // text released by this token (may be "" while a stop string or a UTF-8 character is pending)
    id: number;
    logprob?: TokenLp;
}

export interface TokenLp {
    id: number;
    logprob: number;
    top: TokenLogprob[];
}

export interface TaskResult {
    slot: number;
    text: string;
    tokens: number[];
    stop: StopKind;
    stoppingWord: string;
    nPrompt: number; // prompt tokens of the request (after truncation)
    nCached: number; // of which reused from the slot's cache
    truncated: boolean;
    nPast: number; // tokens in the slot's cache at the end
    promptMs: number;
    predictedMs: number;
    logprobs: TokenLp[];
}

export interface TaskSink {
    token(ev: TokenEvent): void;
    done(r: TaskResult): void;
    fail(e: ApiError): void;
}

export interface TaskInput {
    prompt: Uint32Array;
    params: GenParams;
    signal: AbortSignal;
    sink: TaskSink;
    /** Chat requests: the conversation re-rendered without its oldest turns so that it fits `budget` tokens. */
    shorten?: (budget: number) => Uint32Array | undefined;
    truncated?: boolean; // set by submit() when the prompt had to be cut to fit
    json?: boolean; // response_format json_object: every accepted token must continue one JSON object
}

/** Optional engine calls that land with the MLA work (src/engine/native.ts); used when present. */
interface EngineExtras {
    kvShift?: (seq: number, p0: number, p1: number, delta: number) => unknown;
}

class Running {
    pending: number[]; // tokens to evaluate next; the token after the last one is sampled
    prompting = true;
    readonly generated: number[] = [];
    readonly logprobs: TokenLp[] = [];
    readonly utf8 = new Utf8Stream();
    readonly decoder = new TextDecoder();
    text = "";
    sent = 0;
    truncated: boolean;
    readonly tStart = performance.now();
    tFirst = 0;
    json: JsonPrefix | undefined;
    /** Either the engine samples this slot's rows (native, with bias) or JS does from the row's logits (js). */
    constructor(readonly input: TaskInput, public prompt: Uint32Array, readonly nCached: number, readonly sampler: { native?: Sampler; bias?: RowBias; js?: SlotSampler }, truncated: boolean) {
        this.pending = Array.from(prompt.subarray(nCached));
        this.truncated = truncated;
        if (input.json === true) this.json = new JsonPrefix();
    }
}

export class Slot {
    readonly cache: number[] = []; // tokens in KV at positions 0..cache.length-1 of sequence `id`
    task: Running | undefined;
    lastUsed = 0;
    reserved = false; // held by a save/restore/erase operation
    constructor(readonly id: number) {}
}

interface Control {
    slot: number;
    run: (slot: Slot) => Promise<unknown>;
    resolve: (v: unknown) => void;
    reject: (e: unknown) => void;
}

export interface SchedulerOptions {
    nParallel: number;
    nBatch: number;
    overflow: OverflowMode;
    similarity: number; // -sps
    maxQueue: number;
}

function lcp(a: readonly number[], b: Uint32Array): number {
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    return i;
}

export class Scheduler {
    readonly slots: Slot[];
    readonly nCtxSlot: number;
    private readonly queue: TaskInput[] = [];
    private readonly controls: Control[] = [];
    private running = false;
    private readonly pieces = new Map<number, string>();
    private idleWaiters: (() => void)[] = [];
    private clock = 0;

    constructor(readonly model: Model, readonly ctx: Context, readonly opts: SchedulerOptions, readonly metrics: Metrics) {
        this.slots = Array.from({ length: opts.nParallel }, (_, i) => new Slot(i));
        this.nCtxSlot = Math.floor(ctx.nCtx / opts.nParallel);
    }

    get canShift(): boolean {
        return typeof (this.ctx.native as unknown as EngineExtras).kvShift === "function";
    }

    get queued(): number {
        return this.queue.length;
    }

    get busy(): number {
        return this.slots.filter((s) => s.task !== undefined).length;
    }

    kvUsed(): number {
        return this.slots.reduce((n, s) => n + s.cache.length, 0);
    }

    /** Validates the prompt against the slot context (truncating or shortening per --ctx-overflow) and queues. */
    submit(input: TaskInput): void {
        const p = input.params;
        if (input.prompt.length === 0) throw badRequest("the prompt is empty ('prompt' must not be empty)");
        if (p.idSlot >= this.slots.length) throw badRequest(`'id_slot' = ${p.idSlot} does not exist; this server has ${this.slots.length} slot(s) (-np)`);
        if (this.queue.length >= this.opts.maxQueue) throw new ApiError(503, "unavailable_error", `server busy: ${this.queue.length} requests are waiting (--max-queue ${this.opts.maxQueue}); retry later`);
        const limit = this.nCtxSlot;
        const need = input.prompt.length + Math.max(p.nPredict, 0);
        if (this.opts.overflow === "error" && (input.prompt.length >= limit || need > limit)) {
            throw badRequest(`the request exceeds the available context size: prompt ${input.prompt.length} + max_tokens ${Math.max(p.nPredict, 0)} = ${need} tokens, but a slot holds ${limit} tokens (-c ${this.ctx.nCtx} / -np ${this.slots.length}); shorten the prompt, lower max_tokens or raise -c`);
        }
        if (input.prompt.length >= limit) {
            this.fitPrompt(input);
            this.metrics.contextShift();
        }
        this.queue.push(input);
        this.metrics.deferred(this.queue.length);
        this.kick();
    }

    /** Over-long prompt: chat → drop oldest turns (reprefill); otherwise keep n_keep and drop blocks (shift). */
    private fitPrompt(input: TaskInput): void {
        const limit = this.nCtxSlot;
        const p = input.params;
        const reserve = Math.max(1, Math.min(p.nPredict > 0 ? p.nPredict : Math.floor(limit / 4), Math.floor(limit / 2)));
        if (this.opts.overflow === "reprefill" && input.shorten !== undefined) {
            const short = input.shorten(limit - reserve);
            if (short === undefined || short.length >= limit) {
                throw badRequest(`the request exceeds the available context size: even without older messages the prompt needs more than ${limit - reserve} tokens (slot context ${limit}); shorten the last message or raise -c`);
            }
            input.prompt = short;
        } else {
            input.prompt = this.truncateTokens(input.prompt, p, limit);
        }
        input.truncated = true;
    }

    /** The reference's prompt truncation: keep n_keep (+BOS), drop whole n_discard blocks after it until it fits. */
    private truncateTokens(prompt: Uint32Array, p: GenParams, limit: number): Uint32Array {
        const nKeep = this.nKeep(p, prompt.length, limit);
        const block = Math.min(p.nDiscard > 0 ? p.nDiscard : Math.max(1, Math.floor((limit - nKeep) / 2)), prompt.length - nKeep);
        const erased = block <= 0 ? 0 : Math.min(Math.floor((prompt.length - nKeep) / block), Math.max(1, Math.ceil((prompt.length - limit + block) / block)));
        const out = new Uint32Array(prompt.length - erased * block);
        out.set(prompt.subarray(0, nKeep));
        out.set(prompt.subarray(nKeep + erased * block), nKeep);
        if (out.length >= limit || out.length === 0) throw badRequest(`the prompt (${prompt.length} tokens) cannot be truncated to fit the slot context of ${limit} tokens with n_keep ${nKeep}`);
        return out;
    }

    private nKeep(p: GenParams, promptLen: number, limit: number): number {
        const bos = this.model.meta.addBos ? 1 : 0; // the reference keeps n_keep + BOS (spec/server.md §9)
        const keep = p.nKeep < 0 ? promptLen : p.nKeep + bos;
        return Math.max(0, Math.min(keep, limit - 4));
    }

    /** Runs `fn` on slot `id` once it is idle, between decode steps (save / restore / erase). */
    withIdleSlot<T>(id: number, fn: (slot: Slot) => Promise<T>): Promise<T> {
        if (!Number.isInteger(id) || id < 0 || id >= this.slots.length) return Promise.reject(badRequest("Invalid slot ID"));
        return new Promise<T>((resolve, reject) => {
            this.controls.push({ slot: id, run: fn as (s: Slot) => Promise<unknown>, resolve: resolve as (v: unknown) => void, reject });
            this.kick();
        });
    }

    /** Resolves when nothing is queued or running (SIGTERM drain). */
    idle(): Promise<void> {
        if (!this.running && this.queue.length === 0) return Promise.resolve();
        return new Promise((r) => this.idleWaiters.push(r));
    }

    private kick(): void {
        if (this.running) return;
        this.running = true;
        void this.loop().finally(() => {
            this.running = false;
            if (this.queue.length > 0 || this.controls.length > 0) this.kick();
            else for (const w of this.idleWaiters.splice(0)) w();
        });
    }

    private async loop(): Promise<void> {
        for (;;) {
            await this.runControls();
            this.reapCancelled();
            this.assign();
            this.metrics.deferred(this.queue.length);
            if (!this.slots.some((s) => s.task !== undefined)) {
                if (this.controls.length === 0 || this.slots.every((s) => s.reserved)) return;
                continue;
            }
            await this.step();
        }
    }

    private async runControls(): Promise<void> {
        for (let i = 0; i < this.controls.length; ) {
            const c = this.controls[i] as Control;
            const slot = this.slots[c.slot] as Slot;
            if (slot.task !== undefined) {
                i++;
                continue;
            }
            this.controls.splice(i, 1);
            slot.reserved = true;
            try {
                c.resolve(await c.run(slot));
            } catch (e) {
                c.reject(e);
            } finally {
                slot.reserved = false;
            }
        }
    }

    private reapCancelled(): void {
        for (let i = this.queue.length - 1; i >= 0; i--) if ((this.queue[i] as TaskInput).signal.aborted) this.queue.splice(i, 1);
        for (const s of this.slots) {
            if (s.task?.input.signal.aborted === true) {
                this.metrics.cancelled();
                this.release(s);
            }
        }
    }

    /** FIFO: each waiting task takes its named slot, the idle slot sharing the longest prefix, or the LRU one. */
    private assign(): void {
        for (let i = 0; i < this.queue.length; ) {
            const t = this.queue[i] as TaskInput;
            const slot = this.pickSlot(t);
            if (slot === undefined) {
                i++;
                continue;
            }
            this.queue.splice(i, 1);
            this.start(slot, t);
        }
    }

    private pickSlot(t: TaskInput): Slot | undefined {
        const free = this.slots.filter((s) => s.task === undefined && !s.reserved && !this.controls.some((c) => c.slot === s.id));
        if (t.params.idSlot >= 0) return free.find((s) => s.id === t.params.idSlot);
        if (free.length === 0) return undefined;
        let best: Slot | undefined;
        let bestSim = this.opts.similarity;
        if (t.params.cachePrompt && bestSim > 0) {
            for (const s of free) {
                if (s.cache.length === 0) continue;
                const sim = (2 * lcp(s.cache, t.prompt)) / (t.prompt.length + s.cache.length);
                if (sim > bestSim) [best, bestSim] = [s, sim];
            }
        }
        return best ?? free.reduce((a, b) => (b.lastUsed < a.lastUsed ? b : a));
    }

    private start(slot: Slot, t: TaskInput): void {
        let sampler: Running["sampler"];
        try {
            sampler = this.samplerFor(t);
        } catch (e) {
            this.metrics.failed();
            return t.sink.fail(badRequest(`sampling parameters refused by the engine: ${toApiError(e).message}`));
        }
        let keep = t.params.cachePrompt ? lcp(slot.cache, t.prompt) : 0;
        if (keep >= t.prompt.length) keep = t.prompt.length - 1; // the last prompt token is evaluated again for its logits
        if (keep < slot.cache.length) {
            this.ctx.kvRemove(slot.id, keep, -1);
            slot.cache.length = keep;
        }
        slot.task = new Running(t, t.prompt, keep, sampler, t.truncated === true);
        slot.lastUsed = ++this.clock;
        this.metrics.cacheHit(keep);
    }

    /** Engine-side sampling for every request but JSON mode (which re-draws under a JSON prefix check in JS). */
    private samplerFor(t: TaskInput): Running["sampler"] {
        const banned = t.params.ignoreEos ? [...this.model.meta.eog] : [];
        if (t.json !== true) return { native: nativeSampler(t.params.sampling, t.prompt), bias: rowBias(t.params.sampling.logitBias, banned) };
        const js = new SlotSampler(t.params.sampling);
        for (const tok of t.prompt) js.accept(tok);
        return { js };
    }

    private release(slot: Slot): void {
        slot.task = undefined;
        slot.lastUsed = ++this.clock;
    }

    private finish(slot: Slot, stop: StopKind, word = ""): void {
        const r = slot.task as Running;
        const tail = r.decoder.decode(r.utf8.flush());
        r.text += tail;
        if (r.text.length > r.sent) r.input.sink.token({ delta: r.text.slice(r.sent), id: -1 });
        r.sent = r.text.length;
        const now = performance.now();
        const first = r.tFirst === 0 ? now : r.tFirst;
        this.metrics.request(first - r.tStart, now - first, r.generated.length);
        this.release(slot);
        r.input.sink.done({
            slot: slot.id, text: r.text, tokens: r.generated, stop, stoppingWord: word, nPrompt: r.prompt.length, nCached: r.nCached,
            truncated: r.truncated, nPast: slot.cache.length, promptMs: first - r.tStart, predictedMs: now - first, logprobs: r.logprobs
        });
    }

    private fail(slot: Slot, e: ApiError): void {
        const r = slot.task as Running;
        this.release(slot);
        this.metrics.failed();
        r.input.sink.fail(e);
    }

    /** One continuous-batching step: overflow handling, batch assembly, ONE decode, per-slot sampling. */
    private async step(): Promise<void> {
        for (const s of this.slots) if (s.task !== undefined && !s.task.prompting && s.cache.length + 1 > this.nCtxSlot) this.overflow(s);
        const tokens: number[] = [];
        const pos: number[] = [];
        const seq: number[] = [];
        const outRows: number[] = [];
        const parts: { slot: Slot; n: number; sample: boolean; prompt: boolean }[] = [];
        const add = (s: Slot, n: number): void => {
            const r = s.task as Running;
            for (let j = 0; j < n; j++) {
                tokens.push(r.pending[j] as number);
                pos.push(s.cache.length + j);
                seq.push(s.id);
            }
            const sample = n === r.pending.length;
            if (sample) outRows.push(tokens.length - 1);
            parts.push({ slot: s, n, sample, prompt: r.prompting });
        };
        for (const s of this.slots) if (s.task !== undefined && !s.task.prompting && tokens.length < this.opts.nBatch) add(s, 1);
        for (const s of this.slots) {
            const room = this.opts.nBatch - tokens.length;
            if (s.task === undefined || !s.task.prompting || room <= 0) continue;
            add(s, Math.min(room, s.task.pending.length));
        }
        if (tokens.length === 0) return;
        const rows: RowRequest[] = [];
        for (const p of parts) {
            if (!p.sample) continue;
            const r = p.slot.task as Running;
            const prm = r.input.params;
            rows.push({ sampler: r.sampler.native?.native, bias: r.sampler.bias, nProbs: prm.logprobs ? prm.topLogprobs : -1 });
        }
        let results: RowResult[];
        try {
            const batch = { tokens: Uint32Array.from(tokens), pos: Int32Array.from(pos), seq: Int32Array.from(seq), outRows: Int32Array.from(outRows) };
            results = await decodeStep(this.ctx, this.model.meta.nVocab, batch, rows);
        } catch (e) {
            const err = toApiError(e);
            for (const p of parts) {
                this.ctx.kvRemove(p.slot.id, p.slot.cache.length, -1);
                if (p.slot.task !== undefined) this.fail(p.slot, new ApiError(500, "server_error", `decode failed: ${err.message}`));
            }
            return;
        }
        let row = 0;
        for (const p of parts) {
            const r = p.slot.task as Running;
            p.slot.cache.push(...r.pending.splice(0, p.n));
            if (p.prompt) this.metrics.promptTokens(p.n);
            if (!p.sample) continue;
            const res = results[row++] as RowResult;
            if (r.prompting) {
                r.prompting = false;
                if (r.tFirst === 0) r.tFirst = performance.now();
            }
            this.onSampled(p.slot, res);
        }
    }

    private onSampled(slot: Slot, res: RowResult): void {
        const r = slot.task as Running;
        const prm = r.input.params;
        if (prm.nPredict === 0) return this.finish(slot, "limit"); // max_tokens 0: evaluate the prompt only
        let tok = res.tok;
        let lp: TokenLp | undefined;
        if (res.logits !== undefined) {
            const picked = this.pick(r, r.sampler.js as SlotSampler, res.logits);
            if (picked === undefined) return this.fail(slot, new ApiError(500, "server_error", "response_format json_object: no token of the vocabulary continues the JSON reply"));
            tok = picked.tok;
            r.json = picked.json;
            r.sampler.js?.accept(tok);
            if (prm.logprobs) {
                const l = tokenLogprobs(res.logits, tok, prm.topLogprobs);
                lp = { id: tok, logprob: l.logprob, top: l.top };
            }
        } else if (prm.logprobs) {
            lp = { id: tok, logprob: res.logprob, top: res.top };
        }
        if (this.model.isEog(tok)) return this.finish(slot, "eos");
        r.generated.push(tok);
        this.metrics.generatedTokens(1);
        if (lp !== undefined) r.logprobs.push(lp);
        r.text += r.decoder.decode(r.utf8.push(this.model.tokenToPiece(tok)));
        // stop strings: cut at the earliest occurrence; hold back a tail that could still become one
        let cut = -1;
        let word = "";
        for (const s of prm.stop) {
            const i = r.text.indexOf(s, Math.max(0, r.sent - s.length));
            if (i >= 0 && (cut < 0 || i < cut)) [cut, word] = [i, s];
        }
        if (cut >= 0) {
            if (cut > r.sent) r.input.sink.token({ delta: r.text.slice(r.sent, cut), id: tok, ...(lp ? { logprob: lp } : {}) });
            r.sent = Math.max(r.sent, cut);
            r.text = r.text.slice(0, cut);
            r.utf8.flush();
            return this.finish(slot, "word", word);
        }
        let hold = 0;
        for (const s of prm.stop) {
            for (let k = Math.min(s.length - 1, r.text.length); k > hold; k--) if (r.text.endsWith(s.slice(0, k))) hold = k;
        }
        const end = Math.max(r.sent, r.text.length - hold);
        r.input.sink.token({ delta: r.text.slice(r.sent, end), id: tok, ...(lp ? { logprob: lp } : {}) });
        r.sent = end;
        if (r.json?.done === true) return this.finish(slot, "word");
        const safety = this.model.meta.nCtxTrain - r.prompt.length;
        if ((prm.nPredict >= 0 && r.generated.length >= prm.nPredict) || (prm.nPredict < 0 && r.generated.length >= Math.max(1, safety))) {
            if (prm.nPredict < 0) r.truncated = true;
            return this.finish(slot, "limit");
        }
        r.pending = [tok];
    }

    private pieceText(id: number): string {
        let t = this.pieces.get(id);
        if (t === undefined) {
            t = new TextDecoder().decode(this.model.tokenToPiece(id));
            this.pieces.set(id, t);
        }
        return t;
    }

    /** The slot's sampler draws; under json_object a token that cannot continue the JSON is banned and re-drawn
     *  (8 tries), then the most likely acceptable token of the raw logits is taken. */
    private pick(r: Running, sampler: SlotSampler, row: Float32Array): { tok: number; json?: JsonPrefix } | undefined {
        const banned = r.input.params.ignoreEos ? [...this.model.meta.eog] : [];
        const json = r.json;
        if (json === undefined) return { tok: sampler.sample(row, banned) };
        const check = (t: number): JsonPrefix | undefined => {
            if (this.model.isEog(t)) return undefined;
            const c = json.clone();
            return c.pushText(this.pieceText(t)) ? c : undefined;
        };
        for (let i = 0; i < 8; i++) {
            const t = sampler.sample(row, banned);
            const c = check(t);
            if (c !== undefined) return { tok: t, json: c };
            banned.push(t);
        }
        for (const t of topKIndices(row, Math.min(row.length, 4096))) {
            const c = check(t);
            if (c !== undefined) return { tok: t, json: c };
        }
        return undefined;
    }

    /** The slot's next token has no room: shift (rotate, or recompute without engine support), reprefill or fail. */
    private overflow(slot: Slot): void {
        const r = slot.task as Running;
        const limit = this.nCtxSlot;
        const p = r.input.params;
        if (this.opts.overflow === "error") {
            const need = r.prompt.length + r.generated.length + 1;
            return this.fail(slot, badRequest(`context_length_exceeded: the request needs ${need} tokens (prompt ${r.prompt.length} + ${r.generated.length + 1} generated) but a slot holds ${limit} (-c ${this.ctx.nCtx} / -np ${this.slots.length}); --ctx-overflow is error`));
        }
        r.truncated = true;
        this.metrics.contextShift();
        if (this.opts.overflow === "reprefill" && r.input.shorten !== undefined) {
            const budget = limit - r.generated.length - Math.max(1, Math.floor(limit / 4));
            const short = budget > 0 ? r.input.shorten(budget) : undefined;
            if (short === undefined || short.length >= r.prompt.length) return this.finish(slot, "limit");
            const next = [...short, ...r.generated.slice(0, -1)];
            const keep = lcp(slot.cache, Uint32Array.from(next));
            this.ctx.kvRemove(slot.id, keep, -1);
            slot.cache.length = keep;
            r.prompt = short;
            r.pending = [...next.slice(keep), ...r.pending];
            r.prompting = true;
            return;
        }
        const nKeep = this.nKeep(p, r.prompt.length, limit);
        const nPast = slot.cache.length;
        const nLeft = nPast - nKeep;
        const nDiscard = p.nDiscard > 0 ? Math.min(p.nDiscard, nLeft) : Math.floor(nLeft / 2);
        if (nDiscard <= 0) return this.finish(slot, "limit");
        const extras = this.ctx.native as unknown as EngineExtras;
        if (this.opts.overflow === "shift" && extras.kvShift !== undefined) {
            this.ctx.kvRemove(slot.id, nKeep, nKeep + nDiscard);
            extras.kvShift.call(this.ctx.native, slot.id, nKeep + nDiscard, nPast, -nDiscard);
            slot.cache.splice(nKeep, nDiscard);
            return;
        }
        // recompute: the same tokens a shift keeps, evaluated again at their new positions
        const kept = slot.cache.slice(nKeep + nDiscard);
        this.ctx.kvRemove(slot.id, nKeep, -1);
        slot.cache.length = nKeep;
        r.pending = [...kept, ...r.pending];
        r.prompting = true;
    }
}
