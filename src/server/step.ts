// One continuous-batching step through the engine: the batch of every active slot goes down in ONE decode call
// (`decodeRows`, native/node/src/sample.rs) and each output row is sampled in Rust by its slot's own native
// Sampler (chain, penalty history, seed) with its logit bias, so logits never cross into JS; the sampled
// token's logprob and top tokens come back when asked. Rows without a native sampler (JSON mode, which re-draws
// under a JSON prefix check) ask for their logits and are sampled by SlotSampler in JS.
import type { Context } from "../engine/index.js";
import { Sampler } from "../engine/index.js";
import type { DecodeBatch, NativeSampler } from "../engine/native.js";
import type { SamplingParams, TokenLogprob } from "./sampling.js";

export interface RowBias {
    ids: Uint32Array;
    values: Float32Array; // -Infinity bans
}

export interface RowRequest {
    sampler?: NativeSampler; // undefined: the row is sampled in JS from its logits
    bias?: RowBias;
    nProbs: number; // < 0: no logprobs; n >= 0: the sampled token's logprob and the n most likely tokens
}

export interface RowResult {
    tok: number; // -1 when the row was not sampled in the engine
    logprob: number;
    top: TokenLogprob[];
    logits?: Float32Array; // rows sampled in JS
}

/** A native sampler with the request's chain; the prompt's last repeat_last_n tokens seed its penalty window. */
export function nativeSampler(p: SamplingParams, prompt: Uint32Array): Sampler {
    const s = Sampler.create({
        temp: p.temperature, topK: p.topK, topP: p.topP, minP: p.minP, typicalP: p.typicalP, repeatPenalty: p.repeatPenalty,
        repeatLastN: p.repeatLastN, presencePenalty: p.presencePenalty, frequencyPenalty: p.frequencyPenalty, seed: p.seed
    });
    const neutral = p.repeatLastN === 0 || (p.repeatPenalty === 1 && p.presencePenalty === 0 && p.frequencyPenalty === 0);
    if (!neutral) for (const t of prompt.subarray(p.repeatLastN < 0 ? 0 : Math.max(0, prompt.length - p.repeatLastN))) s.accept(t);
    return s;
}

/** logit_bias plus banned tokens (ignore_eos) as the engine's per-row arrays; undefined when empty. */
export function rowBias(bias: ReadonlyMap<number, number>, banned: readonly number[]): RowBias | undefined {
    const all = new Map(bias);
    for (const t of banned) all.set(t, -Infinity);
    if (all.size === 0) return undefined;
    return { ids: Uint32Array.from(all.keys()), values: Float32Array.from(all.values()) };
}

/** Decodes the batch once; one RowResult per out-row. Throws what the engine throws (the caller fails the slots). */
export async function decodeStep(ctx: Context, nVocab: number, batch: DecodeBatch, rows: RowRequest[]): Promise<RowResult[]> {
    const args = rows.map((r) => ({
        ...(r.bias !== undefined ? { biasIds: r.bias.ids, biasValues: r.bias.values } : {}),
        nProbs: r.sampler !== undefined ? r.nProbs : -1,
        wantLogits: r.sampler === undefined
    }));
    const res = await ctx.native.decodeRows(batch, rows.map((r) => r.sampler ?? null), args);
    let k = 0;
    return rows.map((r, j) => {
        if (r.sampler === undefined) {
            const logits = (res.logits as Float32Array).subarray(k * nVocab, (k + 1) * nVocab);
            k++;
            return { tok: -1, logprob: NaN, top: [], logits };
        }
        const top: TokenLogprob[] = [];
        for (let c = 0; c < Math.max(0, r.nProbs); c++) {
            const id = res.topIds[j * res.topN + c] as number;
            if (id >= 0) top.push({ id, logprob: res.topLogprobs[j * res.topN + c] as number });
        }
        return { tok: res.sampled[j] as number, logprob: res.logprob[j] as number, top };
    });
}
