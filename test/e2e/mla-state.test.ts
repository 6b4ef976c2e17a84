// The server-facing engine API on the addon's Context, on ds-tiny in MLA mode 3 (latent cache) and mode 0:
// seqStateSave → fresh context → seqStateLoad → continue gives the uninterrupted greedy tokens; a state of
// another cache layout is refused with IKL_E_INVALID; kvShift moves positions (cells reported) and the context
// keeps decoding; the KV facts (mla, bytes per token, the reference's size line) are exposed.
import { beforeAll, describe, expect, it } from "vitest";
import { addon, fixtureModel } from "../helpers/paths.js";

const iota = (n: number, from = 0): Int32Array => Int32Array.from({ length: n }, (_, i) => from + i);

describe("Context seqState / kvShift (addon)", () => {
    const a = addon();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let model: any;
    beforeAll(async () => {
        model = await a.Model.open(await fixtureModel("ds-tiny"), { useMmap: true });
    }, 180_000);

    const prompt = Uint32Array.from({ length: 10 }, (_, i) => 1 + ((i * 7919) % 31999));

    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    async function next(ctx: any, tokens: Uint32Array, pos0: number, seq: number): Promise<number> {
        const s = a.Sampler.create({ temp: 0 });
        const r = await ctx.decode({ tokens, pos: iota(tokens.length, pos0), seq: new Int32Array(tokens.length).fill(seq), outRows: Int32Array.of(tokens.length - 1) }, s);
        return r.sampled[0] as number;
    }

    for (const mla of [3, 0]) {
        it(`save, load into a fresh context, continue (-mla ${mla})`, async () => {
            const opts = { nCtx: 64, nBatch: 32, nUbatch: 32, threads: 2, mla, flashAttn: "on" as const };
            const c1 = await a.Context.create(model, opts);
            expect(c1.mla).toBe(mla);
            expect(c1.kvSizeLine).toMatch(mla > 0 ? /c\^KV \(f16\).*kv\^T: not used/ : /K \(f16\).*V \(f16\)/);
            expect(c1.kvTotalBytes).toBe(64 * c1.kvBytesPerToken);
            const first = await next(c1, prompt, 0, 0);
            const state: Buffer = c1.seqStateSave(0);
            let t = first;
            const want: number[] = [];
            for (let i = 0; i < 4; i++) want.push((t = await next(c1, Uint32Array.of(t), prompt.length + i, 0)));
            const c2 = await a.Context.create(model, opts);
            expect(c2.seqStateLoad(1, state)).toBe(prompt.length);
            const got: number[] = [];
            let u = first;
            for (let i = 0; i < 4; i++) got.push((u = await next(c2, Uint32Array.of(u), prompt.length + i, 1)));
            expect(got).toEqual(want);
            const other = await a.Context.create(model, { ...opts, mla: mla === 3 ? 1 : 3, flashAttn: "off" as const });
            expect(() => other.seqStateLoad(0, state)).toThrow(expect.objectContaining({ code: "IKL_E_INVALID" }));
            expect(c2.kvShift(1, 0, -1, 5)).toBe(prompt.length + 4);
            expect(await next(c2, Uint32Array.of(7), prompt.length + 9, 1)).toBeGreaterThanOrEqual(0);
        }, 120_000);
    }
});
