// Model / Context / Sampler through the raw addon on the llama-tiny fixture: tokenizer round trip, deterministic
// greedy decode with sampling fused in Rust, logits copied only on request, one call in flight (IKL_E_BUSY),
// cancellation, and coded errors for bad paths and parameters.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { addon, fixtureModel, python } from "../helpers/paths.js";

const iota = (n: number, from = 0): Int32Array => Int32Array.from({ length: n }, (_, i) => from + i);

describe("native engine", () => {
    const a = addon();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let model: any;
    beforeAll(async () => {
        model = await a.Model.open(await fixtureModel("llama-tiny"), { useMmap: true });
    }, 120_000);

    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    async function greedy(ctx: any, prompt: Uint32Array, n: number): Promise<number[]> {
        const s = a.Sampler.create({ temp: 0 });
        let r = await ctx.decode({ tokens: prompt, pos: iota(prompt.length), seq: new Int32Array(prompt.length), outRows: Int32Array.of(prompt.length - 1) }, s);
        const out = [r.sampled[0]];
        for (let i = 1; i < n; i++) {
            r = await ctx.decode({ tokens: Uint32Array.of(out.at(-1)), pos: Int32Array.of(prompt.length + i - 1), seq: Int32Array.of(0), outRows: Int32Array.of(0) }, s);
            out.push(r.sampled[0]);
        }
        return out;
    }

    it("describes the model", () => {
        const m = model.meta();
        expect(m).toMatchObject({ arch: "llama", nVocab: 32000, nCtxTrain: 4096, nEmbd: 256, nLayer: 4, bos: 1, eos: 2, addBos: true, vocabType: "spm" });
        expect(m.types).toEqual({ f16: 30, f32: 9 });
        expect(m.eog).toContain(2);
        expect(typeof m.chatTemplate).toBe("string");
        expect(m.sizeBytes).toBeGreaterThan(m.nParams * 2 - 1);
    });

    it("tokenizes and detokenizes as bytes", () => {
        const ids = model.tokenize("Once upon a time", true, true);
        expect(ids).toBeInstanceOf(Uint32Array);
        expect(Array.from(ids)).toEqual([1, 5713, 3714, 264, 727]);
        expect(Buffer.from(model.detokenize(ids, true)).toString()).toBe(" Once upon a time"); // BOS removed, SPM space kept (llama_detokenize)
        const piece = model.tokenToPiece(5713);
        expect(piece).toBeInstanceOf(Uint8Array);
        expect(Buffer.from(piece).toString()).toBe(" Once");
        const multi = model.tokenize("héllo 普通", false, false);
        expect(Buffer.from(model.detokenize(multi)).toString()).toBe("héllo 普通");
    });

    it("greedy decode is deterministic and matches the reference", async () => {
        const prompt = model.tokenize("Once upon a time", true, true);
        const c1 = await a.Context.create(model, { nCtx: 256, nBatch: 64, nUbatch: 2, threads: 2 });
        const c2 = await a.Context.create(model, { nCtx: 256, threads: 1 });
        const t1 = await greedy(c1, prompt, 16);
        expect(await greedy(c2, prompt, 16)).toEqual(t1);
        expect(t1).toEqual([30700, 3392, 10739, 9809, 25962, 5702, 2976, 2811, 24749, 27477, 15547, 9187, 16587, 30571, 1661, 9604]);
        expect(c1.nCtx).toBe(256);
    }, 60_000);

    it("copies logits only when asked and reports Rust timings", async () => {
        const ctx = await a.Context.create(model, { nCtx: 64, threads: 2 });
        const tokens = Uint32Array.of(1, 5713, 3714);
        const r1 = await ctx.decode({ tokens, pos: iota(3), seq: new Int32Array(3), outRows: Int32Array.of(1, 2) });
        expect(r1.logits).toBeUndefined();
        expect(Array.from(r1.sampled)).toEqual([-1, -1]);
        expect(r1.computeUs).toBeGreaterThan(0);
        expect(r1.nUbatch).toBe(1);
        ctx.kvClear();
        const r2 = await ctx.decode({ tokens, pos: iota(3), seq: new Int32Array(3), outRows: Int32Array.of(1, 2), wantLogits: true }, a.Sampler.create({ temp: 0 }));
        expect(r2.logits).toBeInstanceOf(Float32Array);
        expect(r2.logits.length).toBe(2 * 32000);
        const row = r2.logits.subarray(32000);
        expect(r2.sampled[1]).toBe(row.indexOf(Math.max(...row)));
        expect(ctx.kvRemove(0, 1, -1)).toBe(true);
        const lp = await ctx.score({ tokens: Uint32Array.of(5713, 3714), pos: iota(2, 1), seq: new Int32Array(2) }, Int32Array.of(3714, -1));
        expect(lp).toBeInstanceOf(Float64Array);
        expect(lp[0]).toBeLessThan(0);
        expect(Number.isNaN(lp[1])).toBe(true);
    }, 60_000);

    it("allows one call in flight and cancels between ubatches", async () => {
        const ctx = await a.Context.create(model, { nCtx: 512, nBatch: 256, nUbatch: 8, threads: 1 });
        const batch = (p0: number) => ({ tokens: new Uint32Array(256).fill(100), pos: iota(256, p0), seq: new Int32Array(256), outRows: Int32Array.of(255) });
        const p1 = ctx.decode(batch(0));
        await expect(ctx.decode(batch(256))).rejects.toMatchObject({ code: "IKL_E_BUSY" });
        expect(() => ctx.kvClear()).toThrow(expect.objectContaining({ code: "IKL_E_BUSY" }));
        await p1;
        const p3 = ctx.decode(batch(256));
        ctx.abort();
        await expect(p3).rejects.toMatchObject({ code: "IKL_E_CANCELLED" });
        ctx.kvClear();
        await expect(ctx.decode({ ...batch(0), outRows: Int32Array.of(0) })).resolves.toBeDefined();
    }, 60_000);

    it("rejects bad paths and parameters with coded errors", async () => {
        await expect(a.Model.open("/nonexistent/model.gguf")).rejects.toMatchObject({ code: "IKL_E_IO" });
        await expect(a.Model.open("/etc/hostname")).rejects.toMatchObject({ code: "IKL_E_GGUF" });
        const mamba = join(mkdtempSync(join(tmpdir(), "ikl-arch-")), "mamba.gguf");
        python("make_fuzz_seed.py", [mamba, "mamba"]);
        await expect(a.Model.open(mamba)).rejects.toMatchObject({ code: "IKL_E_UNSUPPORTED", message: expect.stringMatching(/architecture 'mamba'/) });
        await expect(a.Context.create(model, { typeK: "nope" })).rejects.toMatchObject({ code: "IKL_E_INVALID" });
        await expect(a.Context.create(model, { flashAttn: "maybe" })).rejects.toMatchObject({ code: "IKL_E_INVALID" });
        await expect(a.Context.create(model, { nCtx: 2 ** 31 })).rejects.toMatchObject({ code: "IKL_E_OOM", message: expect.stringMatching(/ctx-size/) });
        expect(() => a.Sampler.create({ topP: 2 })).toThrow(expect.objectContaining({ code: "IKL_E_INVALID" }));
        expect(() => a.Sampler.create({ seed: 1.5 })).toThrow(expect.objectContaining({ code: "IKL_E_INVALID" }));
        const ctx = await a.Context.create(model, { nCtx: 16, threads: 1 });
        await expect(ctx.decode({ tokens: Uint32Array.of(1), pos: Int32Array.of(0, 1), seq: Int32Array.of(0), outRows: Int32Array.of(0) }))
            .rejects.toMatchObject({ code: "IKL_E_INVALID" });
        const m2 = await a.Model.open(await fixtureModel("llama-tiny"));
        m2.close();
        expect(() => m2.tokenize("x", true, true)).toThrow(expect.objectContaining({ code: "IKL_E_INVALID" }));
    }, 60_000);
});
