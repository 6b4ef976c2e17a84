// planQuantization against the reference: golden/quantize/reference.json holds, for three fixture models
// (llama-tiny, ds-tiny-27l, ds-mini), the tensor list, the GGUF hparams and the per-tensor type that ik_llama.cpp
// `llama-quantize --dry-run` chose for each preset / option set (or the error it stopped with). Regenerate with
// golden/quantize/gen.py. qtypes.json is the native registry (dist/ikl.node qtypes()) so no addon is needed here.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { QTypeInfo } from "../../src/engine/native.js";
import { planQuantization } from "../../src/engine/recipes.js";
import type { PlanModelMeta, PlanOptions } from "../../src/engine/recipes.js";

const here = join(dirname(fileURLToPath(import.meta.url)), "golden", "quantize");
const QTYPES = JSON.parse(readFileSync(join(here, "qtypes.json"), "utf8")) as QTypeInfo[];

interface GoldenModel {
    kv: Record<string, string>;
    tensors: { name: string; ne: number[]; type: string }[];
    results: Record<string, string[] | { error: string }>;
}
const GOLDEN = JSON.parse(readFileSync(join(here, "reference.json"), "utf8")) as Record<string, GoldenModel>;
const golden = (m: string): GoldenModel => {
    const g = GOLDEN[m];
    if (g === undefined) throw new Error(`no golden for ${m}`);
    return g;
};

const DS_RULES = "attn=q8_0,shexp=q8_0,ffn_down_exps=iq4_k,ffn_(up|gate)_exps=iq3_k";
// The option sets of gen.py's CUSTOM table, by label prefix.
const EXTRA: Record<string, Partial<PlanOptions>> = {
    "custom-ds": { customQ: DS_RULES },
    pure: { pure: true },
    otype: { outputTensorType: "q8_0", tokenEmbeddingType: "iq4_k_r4" },
    "leave-output": { leaveOutputTensor: true },
    "attn-v": { attnVType: "q8_0", ffnDownType: "iq4_k", attnOutputType: "q5_0" },
    "gate-inp": { ffnGateInpType: "q8_0" }
};

function metaOf(kv: Record<string, string>): PlanModelMeta {
    const arch = kv["general.architecture"] ?? "";
    const num = (k: string): number => Number(kv[`${arch}.${k}`] ?? 0);
    return {
        arch,
        n_layer: num("block_count"),
        n_expert: num("expert_count"),
        n_head: num("attention.head_count"),
        n_head_kv: num("attention.head_count_kv"),
        n_vocab: num("vocab_size")
    };
}

function optionsOf(label: string): PlanOptions {
    const i = label.indexOf(":");
    const prefix = i < 0 ? "" : label.slice(0, i);
    return { ftype: label.slice(i + 1), ...(EXTRA[prefix] ?? {}) };
}

const tensorsOf = (m: GoldenModel) => m.tensors.map((t) => ({ name: t.name, shape: t.ne, type: t.type }));

describe("planQuantization reproduces llama-quantize --dry-run", () => {
    let total = 0;
    for (const [model, g] of Object.entries(GOLDEN)) {
        for (const [label, expected] of Object.entries(g.results)) {
            it(`${model} ${label}`, () => {
                const run = () => planQuantization(tensorsOf(g), metaOf(g.kv), optionsOf(label), QTYPES);
                if (!Array.isArray(expected)) {
                    expect(run).toThrow(expected.error);
                    return;
                }
                const plan = run();
                const got = Object.fromEntries(plan.tensors.map((t) => [t.name, t.to]));
                const want = Object.fromEntries(g.tensors.map((t, i) => [t.name, expected[i]]));
                expect(got).toEqual(want);
                total += plan.tensors.length;
            });
        }
    }
    it("covers every preset requested by the brief", () => {
        const labels = Object.keys(golden("ds-mini").results);
        for (const p of ["Q4_0", "Q8_0", "Q4_K_M", "Q4_K_S", "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K", "IQ4_XS", "IQ4_NL", "IQ4_K",
            "IQ3_K", "IQ2_K", "IQ4_KS", "IQ4_K_R4", "Q4_0_R8", "custom-ds:Q4_K_M"]) expect(labels).toContain(p);
        expect(total).toBeGreaterThanOrEqual(0);
    });
});

describe("planQuantization details", () => {
    const g = golden("ds-tiny-27l");
    const meta = metaOf(g.kv);
    const tensors = tensorsOf(g);

    it("explains each decision", () => {
        const plan = planQuantization(tensors, meta, { ftype: "q4_k_m", customQ: DS_RULES }, QTYPES);
        const by = new Map(plan.tensors.map((t) => [t.name, t]));
        expect(by.get("blk.1.ffn_down_exps.weight")?.rule).toBe("custom-q #3 'ffn_down_exps=iq4_k'; fallback: 128 % 256 ≠ 0 → q5_0");
        expect(by.get("blk.0.attn_norm.weight")?.rule).toBe("not quantized (1-D)");
        expect(by.get("blk.1.ffn_gate_inp.weight")?.rule).toContain("router");
        expect(by.get("blk.0.attn_kv_b.weight")?.rule).toContain("custom-q #1");
        const plain = planQuantization(tensors, meta, { ftype: "Q4_K_M" }, QTYPES);
        const kvb = plain.tensors.find((t) => t.name === "blk.0.attn_kv_b.weight");
        expect(kvb?.to).toBe("q8_0");
        expect(kvb?.rule).toContain("n_expert ≥ 4");
        const down = plain.tensors.find((t) => t.name === "blk.0.ffn_down.weight");
        expect(down?.rule).toMatch(/fallback: 512 % 256|use_more_bits/);
        expect(plan.ftype).toBe("Q4_K_M");
        expect(plan.totalBytes).toBe(plan.tensors.reduce((a, t) => a + t.bytes, 0));
        expect(plan.bpw).toBeGreaterThan(4);
        expect(plan.bpw).toBeLessThan(16);
    });

    it("states the row-length fallback as the reason", () => {
        const plan = planQuantization([{ name: "blk.0.ffn_down.weight", shape: [2880, 256], type: "f16" }],
            { arch: "llama", n_layer: 1, n_head: 8, n_head_kv: 8 }, { ftype: "IQ4_K" }, QTYPES);
        expect(plan.tensors[0]?.to).toBe("q5_0");
        expect(plan.tensors[0]?.rule).toContain("fallback: 2880 % 256 ≠ 0 → q5_0");
        expect(plan.warnings.length).toBe(1);
    });

    it("sizes tensors from the registry", () => {
        const plan = planQuantization([{ name: "blk.0.attn_q.weight", shape: [256, 8], type: "f16" }],
            { arch: "llama", n_layer: 1, n_head: 8, n_head_kv: 8 }, { ftype: "Q4_0", pure: true }, QTYPES);
        expect(plan.tensors[0]?.bytes).toBe(8 * 8 * 18);
        expect(plan.bpw).toBe(4.5);
    });

    it("accepts numeric ids and aliases, rejects unknown names with the valid list", () => {
        expect(planQuantization(tensors, meta, { ftype: "15" }, QTYPES).ftype).toBe("Q4_K_M");
        expect(planQuantization(tensors, meta, { ftype: "q4_k" }, QTYPES).ftype).toBe("Q4_K_M");
        expect(() => planQuantization(tensors, meta, { ftype: "Q4_K_XL" }, QTYPES)).toThrow(/unknown quantization type 'Q4_K_XL'/);
        try {
            planQuantization(tensors, meta, { ftype: "Q4_K_XL" }, QTYPES);
        } catch (e) {
            expect((e as { hint?: string }).hint).toContain("IQ4_K_R4");
        }
        expect(() => planQuantization(tensors, meta, { ftype: "Q4_K_M", customQ: "exps=q9_9" }, QTYPES)).toThrow(/q9_9.*rule #1/);
    });

    it("names the rule with an invalid regex", () => {
        expect(() => planQuantization(tensors, meta, { ftype: "Q4_K_M", customQ: "attn=q8_0,ffn_(up=iq4_k" }, QTYPES))
            .toThrow(/rule #2 'ffn_\(up=iq4_k'/);
    });

    it("refuses to requantize without allowRequantize", () => {
        const q = tensors.map((t) => (t.name === "blk.3.attn_q.weight" ? { ...t, type: "q8_0" } : t));
        expect(() => planQuantization(q, meta, { ftype: "Q4_K_M" }, QTYPES)).toThrow(/requantizing from type q8_0.*blk\.3\.attn_q\.weight/);
        const plan = planQuantization(q, meta, { ftype: "Q4_K_M", allowRequantize: true }, QTYPES);
        expect(plan.tensors.find((t) => t.name === "blk.3.attn_q.weight")?.from).toBe("q8_0");
    });

    it("applies the imatrix rules", () => {
        expect(() => planQuantization(tensors, meta, { ftype: "IQ2_XXS", imatrixPresent: true }, QTYPES)).not.toThrow();
        expect(() => planQuantization(tensors, meta, { ftype: "IQ2_XXS", imatrixPresent: true, excludeWeights: ["ffn_up_exps"] }, QTYPES))
            .toThrow(/Missing importance matrix for tensor blk\.1\.ffn_up_exps\.weight/);
        expect(() => planQuantization(tensors, meta, { ftype: "IQ1_S", ignoreImatrixRules: true }, QTYPES)).not.toThrow();
        const withIm = planQuantization(tensors, meta, { ftype: "IQ4_XS", imatrixPresent: true }, QTYPES);
        const without = planQuantization(tensors, meta, { ftype: "IQ4_XS" }, QTYPES);
        const d = (p: typeof withIm) => p.tensors.find((t) => t.name === "blk.0.ffn_down.weight")?.to;
        expect([d(withIm), d(without)]).toEqual(["iq4_xs", "q5_K"]);
    });

    it("never row-interleaves token_embd and de-interleaves when rows do not divide", () => {
        const plan = planQuantization(tensors, meta, { ftype: "IQ4_K_R4" }, QTYPES);
        expect(plan.tensors.find((t) => t.name === "token_embd.weight")?.to).toBe("iq4_k");
        const odd = planQuantization([{ name: "blk.0.attn_q.weight", shape: [256, 6], type: "f16" }],
            { arch: "llama", n_layer: 1, n_head: 8, n_head_kv: 8 }, { ftype: "Q4_0_R8" }, QTYPES);
        expect(odd.tensors[0]?.to).toBe("q4_0");
        expect(odd.tensors[0]?.rule).toContain("6 rows % 8 ≠ 0 → q4_0");
    });
});
