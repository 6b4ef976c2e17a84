// ctx.decodeRows (native/node/src/sample.rs, the server's batched step) through the addon on llama-tiny: per-row
// samplers agree with decode()'s logits (greedy argmax, log-softmax logprobs, top tokens), rows without a sampler
// return their logits, and bad arguments reject with IKL_E_INVALID / IKL_E_BUSY instead of crashing.
import { beforeAll, describe, expect, it } from "vitest";
import { addon, fixtureModel } from "../helpers/paths.js";

/* eslint-disable @typescript-eslint/no-explicit-any */
let a: any;
let ctx: any;
let nVocab: number;

const hasRows = (): boolean => typeof (addon().Context.prototype as Record<string, unknown>)["decodeRows"] === "function";

// two sequences, 5 prompt tokens each; out-rows at the last token of each
const batch = (): { tokens: Uint32Array; pos: Int32Array; seq: Int32Array; outRows: Int32Array } => ({
    tokens: Uint32Array.from([10, 11, 12, 13, 14, 20, 21, 22, 23, 24]),
    pos: Int32Array.from([0, 1, 2, 3, 4, 0, 1, 2, 3, 4]),
    seq: Int32Array.from([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]),
    outRows: Int32Array.from([4, 9])
});

function argmax(v: Float32Array): number {
    let b = 0;
    for (let i = 1; i < v.length; i++) if ((v[i] as number) > (v[b] as number)) b = i;
    return b;
}

function logSoftmax(v: Float32Array, i: number): number {
    let max = -Infinity;
    for (const x of v) max = Math.max(max, x);
    let sum = 0;
    for (const x of v) sum += Math.exp(x - max);
    return (v[i] as number) - max - Math.log(sum);
}

beforeAll(async () => {
    a = addon();
    const model = await a.Model.open(await fixtureModel("llama-tiny"), { threads: 1 });
    ctx = await a.Context.create(model, { nCtx: 256, nBatch: 64, nUbatch: 64, threads: 1 });
}, 120_000);

describe.runIf(hasRows())("decodeRows", () => {
    it("samples each row like decode's logits say; rows without a sampler get their logits", async () => {
        ctx.kvClear();
        const ref = await ctx.decode({ ...batch(), wantLogits: true });
        nVocab = ref.logits.length / 2;
        const rows = [ref.logits.subarray(0, nVocab), ref.logits.subarray(nVocab)];
        ctx.kvClear();
        const greedy = a.Sampler.create({ temp: 0 });
        const r = await ctx.decodeRows(batch(), [greedy, null], [{ nProbs: 3 }, { wantLogits: true }]);
        expect(r.sampled[0]).toBe(argmax(rows[0]));
        expect(r.sampled[1]).toBe(-1);
        expect(r.logprob[0]).toBeCloseTo(logSoftmax(rows[0], r.sampled[0]), 4);
        expect(Number.isNaN(r.logprob[1])).toBe(true);
        expect(r.topN).toBe(3);
        expect(r.topIds[0]).toBe(r.sampled[0]);
        for (let c = 0; c < 3; c++) expect(r.topLogprobs[c]).toBeCloseTo(logSoftmax(rows[0], r.topIds[c]), 4);
        expect(r.logits).toHaveLength(nVocab);
        expect(Array.from(r.logits.subarray(0, 64))).toEqual(Array.from(rows[1].subarray(0, 64)));
        // a bias that bans the greedy token moves the choice to the runner-up
        ctx.kvClear();
        const banned = await ctx.decodeRows(batch(), [a.Sampler.create({ temp: 0 }), a.Sampler.create({ temp: 0 })], [
            { biasIds: Uint32Array.from([r.sampled[0]]), biasValues: Float32Array.from([-Infinity]) },
            {}
        ]);
        expect(banned.sampled[0]).toBe(r.topIds[1]);
        expect(banned.sampled[1]).toBe(argmax(rows[1]));
        expect(banned.logits).toBeUndefined();
    });

    it("rejects bad arguments with coded errors", async () => {
        const s = a.Sampler.create({ temp: 0 });
        const t = a.Sampler.create({ temp: 0 });
        ctx.kvClear();
        await expect(ctx.decodeRows(batch(), [s], [{}])).rejects.toMatchObject({ code: "IKL_E_INVALID" });
        await expect(ctx.decodeRows(batch(), [s, t], [{ biasIds: Uint32Array.from([1, 2]), biasValues: Float32Array.from([1]) }, {}])).rejects.toMatchObject({ code: "IKL_E_INVALID" });
        await expect(ctx.decodeRows(batch(), [s, t], [{ nProbs: 1000 }, {}])).rejects.toMatchObject({ code: "IKL_E_INVALID" });
        await expect(ctx.decodeRows(batch(), [s, t], [{ biasIds: Uint32Array.from([1]), biasValues: Float32Array.from([NaN]) }, {}])).rejects.toMatchObject({ code: "IKL_E_INVALID" });
        // one sampler for two rows would lock itself twice: refused up front, and the context stays usable
        await expect(ctx.decodeRows(batch(), [s, s], [{}, {}])).rejects.toMatchObject({ code: "IKL_E_INVALID", message: expect.stringMatching(/already samples another row/) });
        // two calls back to back (arguments built first): the second finds the first (a full 64-token batch, so
        // it cannot finish in between) in flight
        ctx.kvClear();
        const n = 64;
        const long = { tokens: Uint32Array.from({ length: n }, (_, i) => 100 + i), pos: Int32Array.from({ length: n }, (_, i) => i), seq: new Int32Array(n), outRows: Int32Array.from([n - 1]) };
        const [b2, ss, rs] = [batch(), [s], [{}]];
        const calls = [ctx.decodeRows(long, ss, rs), ctx.decodeRows(b2, ss, rs)];
        await expect(calls[1]).rejects.toMatchObject({ code: "IKL_E_BUSY" });
        expect((await calls[0]).sampled).toHaveLength(1);
    });
});
