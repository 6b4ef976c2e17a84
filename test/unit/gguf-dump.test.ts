// gguf-dump analysis and rendering on a hand-made GgufInspect (no addon): summary numbers, groups, compat verdict,
// truncation, --filter, --no-tensors and the JSON document shape.
import { describe, expect, it } from "vitest";
import { analyzeGguf, mlaForm, tensorGroup } from "../../src/commands/gguf-dump/analyze.js";
import { formatMetaValue, renderHuman, renderJson, type DumpView } from "../../src/commands/gguf-dump/render.js";
import { LONG_TEMPLATE, SAMPLE, SAMPLE_QTYPES } from "./gguf-sample.js";

const report = analyzeGguf(SAMPLE, SAMPLE_QTYPES);
const view = (v: Partial<DumpView> = {}): DumpView => ({ full: false, tensors: true, filter: undefined, plain: true, ...v });

describe("gguf-dump summary", () => {
    it("counts parameters, bytes and bits per weight over all tensors", () => {
        const params = SAMPLE.tensors.reduce((s, t) => s + t.nElements, 0);
        const bytes = SAMPLE.tensors.reduce((s, t) => s + t.bytes, 0);
        expect(report.summary.n_params).toBe(params);
        expect(report.summary.bits_per_weight).toBeCloseTo((bytes * 8) / params, 10);
        expect(report.summary.file_type).toEqual({ id: 145, enum_name: "MOSTLY_IQ4_KS", description: "IQ4_KS - 4.25 bpw" });
    });
    it("builds a type histogram sorted by bytes", () => {
        const first = report.summary.types[0];
        expect(first?.type).toBe("q8_0");
        expect(first?.tensors).toBe(7);
        expect(report.summary.types.reduce((s, t) => s + t.fraction, 0)).toBeCloseTo(1, 10);
    });
    it("reports MLA and MoE facts", () => {
        expect(report.summary.attention?.q_lora_rank).toBeNull();
        expect(report.summary.attention?.mla_form).toBe("attn_kv_b+split_2d");
        expect(report.summary.moe).toMatchObject({ expert_count: 4, gating_func: "sigmoid", exp_probs_b: true, leading_dense_block_count: 1 });
        expect(report.summary.tokenizer).toMatchObject({ vocab_size: 1000, chat_template: { present: true, length: LONG_TEMPLATE.length } });
    });
    it("groups tensors the way -ot rules think", () => {
        expect(tensorGroup("blk.3.ffn_up_exps.weight")).toBe("exps");
        expect(tensorGroup("blk.3.ffn_down_shexp.weight")).toBe("shexp");
        expect(tensorGroup("blk.3.attn_kv_b.weight")).toBe("attn");
        expect(tensorGroup("blk.3.attn_norm.weight")).toBe("norm");
        expect(tensorGroup("blk.0.ffn_gate.weight")).toBe("ffn");
        expect(tensorGroup("token_embd.weight")).toBe("embd");
        expect(tensorGroup("output.weight")).toBe("output");
        expect(report.groups.map((g) => g.group)).toEqual(["embd", "attn", "ffn", "router", "shexp", "exps", "norm", "output"]);
    });
    it("detects the MLA tensor forms", () => {
        const mk = (name: string, ne: number[]) => ({ index: 0, name, type: "q8_0", typeId: 8, ne, nElements: 1, bytes: 1, offset: 0, file: 0 });
        expect(mlaForm([mk("blk.0.attn_k_b.weight", [1, 2, 3])])).toBe("split_3d");
        expect(mlaForm([mk("blk.0.attn_kv_b.weight", [1, 2])])).toBe("attn_kv_b");
        expect(mlaForm([])).toBe("none");
    });
});

describe("gguf-dump compat", () => {
    it("lists ik-only types, the 2-D MLA layout and CPU-only interleaved types", () => {
        const c = report.compat;
        expect(c.ik_llama.ok).toBe(true);
        expect(c.mainline.ok).toBe(false);
        expect(c.mainline.ik_only_types).toEqual(["iq4_ks", "q4_k_r4"]);
        expect(c.mainline.reasons.join(" ")).toContain("2-D");
        expect(c.cuda_unsupported).toEqual([{ type: "q4_k_r4", tensors: 1, reason: "row-interleaved x4, no CUDA kernel" }]);
        expect(c.f16_tensors).toBe(1);
    });
    it("flags types missing from the registry", () => {
        const c = analyzeGguf(SAMPLE, SAMPLE_QTYPES.filter((q) => q.id !== 145)).compat;
        expect(c.ik_llama).toEqual({ ok: false, unknown_types: ["iq4_ks"] });
    });
});

describe("gguf-dump rendering", () => {
    it("truncates arrays and long strings unless --full", () => {
        const tokens = SAMPLE.metadata.find((e) => e.key === "tokenizer.ggml.tokens");
        const tmpl = SAMPLE.metadata.find((e) => e.key === "tokenizer.chat_template");
        if (tokens === undefined || tmpl === undefined) throw new Error("sample broken");
        expect(formatMetaValue(tokens, false)).toBe('["a", "b", "c", "d", "e", "f", "g", "h", … (1000 total)]');
        expect(formatMetaValue(tmpl, false)).toContain(`… (${LONG_TEMPLATE.length} chars)`);
        expect(formatMetaValue(tmpl, true)).toBe(JSON.stringify(LONG_TEMPLATE));
    });
    it("prints summary, metadata, tensors, groups and verdict", () => {
        const text = renderHuman(report, view());
        for (const s of ["deepseek2", "IQ4_KS - 4.25 bpw", "ARRAY[STRING]", "blk.1.ffn_up_exps.weight", "Bytes by -ot group", "mainline llama.cpp: no"]) {
            expect(text).toContain(s);
        }
    });
    it("filters tensors with --filter and hides them with --no-tensors", () => {
        const text = renderHuman(report, view({ filter: /_exps/ }));
        expect(text).toContain("Tensors matching /_exps/ (2 of 15)");
        expect(text).not.toContain("blk.0.attn_q.weight");
        expect(renderHuman(report, view({ tensors: false }))).not.toContain("blk.0.attn_q.weight");
    });
    it("emits the documented JSON shape", () => {
        const doc = JSON.parse(JSON.stringify(renderJson(report, view({ filter: /^output/ })))) as Record<string, unknown>;
        expect(Object.keys(doc)).toEqual(["schema", "path", "files", "summary", "metadata", "tensors", "compat"]);
        expect(doc["schema"]).toBe(1);
        const tensors = doc["tensors"] as Record<string, unknown>[];
        expect(tensors.map((t) => t["name"])).toEqual(["output_norm.weight", "output.weight"]);
        expect(Object.keys(tensors[0] ?? {})).toEqual(["index", "name", "type", "type_id", "shape", "n_elements", "bytes", "offset", "file"]);
        const meta = doc["metadata"] as Record<string, unknown>[];
        expect(meta.find((m) => m["key"] === "tokenizer.ggml.tokens")).toMatchObject({ type: "ARRAY[STRING]", length: 1000, truncated: true });
        expect(renderJson(report, view({ tensors: false }))).toMatchObject({ tensors: [] });
    });
});
