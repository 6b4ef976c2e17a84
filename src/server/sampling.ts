// Per-slot sampling in JavaScript over one row of logits. The server's batched steps normally sample in the engine
// (ctx.decodeRows, step.ts: each row by its slot's native Sampler); this chain serves the rows that must be
// sampled here — response_format json_object, which re-draws tokens that cannot continue the JSON — and engine
// builds without decodeRows. It follows the reference's default order and arithmetic (ik common/sampling.cpp, as
// ported in native/core/src/sample): penalties → logit bias → top-k → typical → top-p → min-p → temperature → draw.
// Greedy (temperature <= 0) is the engine's rule exactly: the first maximum wins. The RNG is mulberry32, so a
// seeded JSON-mode request is reproducible here but does not reproduce `ikl run`'s mt19937 stream for the same seed.

export interface SamplingParams {
    temperature: number;
    topK: number; // 0 = off
    topP: number; // 1 = off
    minP: number; // 0 = off
    typicalP: number; // 1 = off
    repeatPenalty: number; // 1 = off
    repeatLastN: number; // 0 = off, -1 = whole history
    presencePenalty: number;
    frequencyPenalty: number;
    seed: number; // -1 = random
    logitBias: ReadonlyMap<number, number>; // -Infinity bans a token
}

function mulberry32(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

/** Indices of the k largest values (ties: lower index first), in descending order. */
export function topKIndices(v: Float32Array, k: number): number[] {
    if (k > 256) {
        // large k (top_k 0 = whole vocabulary): one sort beats a big heap
        const all = Array.from({ length: v.length }, (_, i) => i).sort((a, b) => (v[b] as number) - (v[a] as number) || a - b);
        return all.slice(0, k);
    }
    const heap: number[] = []; // min-heap on (value, -index)
    const less = (a: number, b: number): boolean => (v[a] as number) < (v[b] as number) || (v[a] === v[b] && a > b);
    const down = (i: number): void => {
        for (;;) {
            const l = 2 * i + 1;
            const r = l + 1;
            let m = i;
            if (l < heap.length && less(heap[l] as number, heap[m] as number)) m = l;
            if (r < heap.length && less(heap[r] as number, heap[m] as number)) m = r;
            if (m === i) return;
            [heap[i], heap[m]] = [heap[m] as number, heap[i] as number];
            i = m;
        }
    };
    for (let i = 0; i < v.length; i++) {
        if (heap.length < k) {
            heap.push(i);
            for (let j = heap.length - 1; j > 0; ) {
                const p = (j - 1) >> 1;
                if (!less(heap[j] as number, heap[p] as number)) break;
                [heap[j], heap[p]] = [heap[p] as number, heap[j] as number];
                j = p;
            }
        } else if (less(heap[0] as number, i)) {
            heap[0] = i;
            down(0);
        }
    }
    return heap.sort((a, b) => (v[b] as number) - (v[a] as number) || a - b);
}

/** Softmax probabilities of the candidates' logits (in candidate order). */
function softmax(logits: number[]): number[] {
    const max = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - max));
    const sum = e.reduce((s, x) => s + x, 0);
    return e.map((x) => x / sum);
}

export class SlotSampler {
    private readonly history: number[] = [];
    private readonly rand: () => number;
    private scratch = new Float32Array(0);

    constructor(readonly params: SamplingParams) {
        const seed = params.seed < 0 ? Math.floor(Math.random() * 0xffffffff) : params.seed;
        this.rand = mulberry32(seed);
    }

    accept(token: number): void {
        this.history.push(token);
        const keep = Math.max(this.params.repeatLastN, 256);
        if (this.params.repeatLastN >= 0 && this.history.length > 4 * keep) this.history.splice(0, this.history.length - keep);
    }

    /** Penalised, biased copy of the row (the raw row is left untouched for logprobs). */
    private prepare(row: Float32Array, banned: readonly number[]): Float32Array {
        if (this.scratch.length !== row.length) this.scratch = new Float32Array(row.length);
        const v = this.scratch;
        v.set(row);
        const p = this.params;
        const n = p.repeatLastN < 0 ? this.history.length : Math.min(p.repeatLastN, this.history.length);
        if (n > 0 && !(p.repeatPenalty === 1 && p.frequencyPenalty === 0 && p.presencePenalty === 0)) {
            const counts = new Map<number, number>();
            for (const t of this.history.slice(this.history.length - n)) counts.set(t, (counts.get(t) ?? 0) + 1);
            for (const [t, count] of counts) {
                if (t >= v.length) continue;
                let l = v[t] as number;
                l = l <= 0 ? l * p.repeatPenalty : l / p.repeatPenalty;
                v[t] = l - count * p.frequencyPenalty - p.presencePenalty;
            }
        }
        for (const [t, bias] of p.logitBias) if (t < v.length) v[t] = (v[t] as number) + bias;
        for (const t of banned) if (t < v.length) v[t] = -Infinity;
        return v;
    }

    /** Picks the next token from `row` (one slot's logits); `banned` tokens (e.g. EOG under ignore_eos) never win. */
    sample(row: Float32Array, banned: readonly number[] = []): number {
        const v = this.prepare(row, banned);
        const p = this.params;
        if (p.temperature <= 0) {
            let best = 0;
            for (let i = 1; i < v.length; i++) if ((v[i] as number) > (v[best] as number)) best = i;
            return best;
        }
        let ids = topKIndices(v, p.topK > 0 ? Math.min(p.topK, v.length) : v.length);
        let logits = ids.map((i) => v[i] as number);
        if (p.typicalP < 1) [ids, logits] = this.typical(ids, logits);
        if (p.topP < 1) {
            const probs = softmax(logits);
            let cum = 0;
            let last = ids.length;
            for (let i = 0; i < probs.length; i++) {
                cum += probs[i] as number;
                if (cum >= p.topP) {
                    last = i + 1;
                    break;
                }
            }
            ids = ids.slice(0, last);
            logits = logits.slice(0, last);
        }
        if (p.minP > 0 && ids.length > 1) {
            const cut = (logits[0] as number) + Math.log(p.minP);
            let last = logits.findIndex((l) => l < cut);
            if (last < 0) last = logits.length;
            ids = ids.slice(0, Math.max(1, last));
            logits = logits.slice(0, ids.length);
        }
        if (ids.length === 1) return ids[0] as number;
        const probs = softmax(logits.map((l) => l / p.temperature));
        const r = this.rand();
        let cum = 0;
        for (let i = 0; i < probs.length; i++) {
            cum += probs[i] as number;
            if (r < cum) return ids[i] as number;
        }
        return ids[ids.length - 1] as number;
    }

    /** Locally typical sampling (Meister et al.), as llama_sample_typical: keep the tokens closest to the entropy. */
    private typical(ids: number[], logits: number[]): [number[], number[]] {
        const probs = softmax(logits);
        const entropy = -probs.reduce((s, q) => s + (q > 0 ? q * Math.log(q) : 0), 0);
        const order = probs.map((q, i) => ({ i, d: Math.abs(-Math.log(q) - entropy) })).sort((a, b) => a.d - b.d);
        let cum = 0;
        let last = order.length;
        for (let j = 0; j < order.length; j++) {
            cum += probs[order[j]?.i as number] as number;
            if (cum > this.params.typicalP) {
                last = j + 1;
                break;
            }
        }
        const kept = order.slice(0, last).map((o) => o.i);
        return [kept.map((i) => ids[i] as number), kept.map((i) => logits[i] as number)];
    }
}

export interface TokenLogprob {
    id: number;
    logprob: number;
}

/** log-softmax of the raw row at `sampled`, and the `n` most likely tokens (OpenAI logprobs are pre-sampling). */
export function tokenLogprobs(row: Float32Array, sampled: number, n: number): { logprob: number; top: TokenLogprob[] } {
    let max = -Infinity;
    for (const l of row) if (l > max) max = l;
    let sum = 0;
    for (const l of row) sum += Math.exp(l - max);
    const lse = max + Math.log(sum);
    const top = n > 0 ? topKIndices(row, Math.min(n, row.length)).map((id) => ({ id, logprob: (row[id] as number) - lse })) : [];
    return { logprob: (row[sampled] as number) - lse, top };
}
