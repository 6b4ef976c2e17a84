// `ikl gguf-dump` end to end on generated fixture models, a split model and a file quantized by the reference
// (ik_llama.cpp's llama-quantize): tensor names, types, shapes, byte sizes and offsets must agree with an
// independent reader (gguf-py), and every ik-only type must be named correctly.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dump, expectSameAsGgufPy, expectSameAsGgufPyParts, type DumpTensor } from "../helpers/gguf-py.js";
import { fixtureModel, ikl, python, ROOT } from "../helpers/paths.js";

describe("ikl gguf-dump", () => {
    let tmp = "";
    beforeAll(() => {
        tmp = mkdtempSync(join(tmpdir(), "ikl-dump-"));
    });
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));

    it("llama-tiny: tables agree with gguf-py", async () => {
        const d = expectSameAsGgufPy(await fixtureModel("llama-tiny"));
        expect(d.schema).toBe(1);
        expect(d.summary.n_params).toBe(d.tensors.reduce((s, t) => s + t.n_elements, 0));
        expect(d.tensors.map((t) => t.name)).toContain("blk.3.ffn_down.weight");
        expect(d.compat.mainline.ok).toBe(true);
    }, 60_000);

    it("ds-tiny in both MLA forms and ds-tiny-27l agree with gguf-py", async () => {
        const kvb = expectSameAsGgufPy(await fixtureModel("ds-tiny"));
        expect(kvb.summary.attention?.mla_form).toBe("attn_kv_b");
        const split = expectSameAsGgufPy(await fixtureModel("ds-tiny", { mlaForm: "split" }));
        expect(split.tensors.some((t) => t.name === "blk.0.attn_k_b.weight")).toBe(true);
        expect(split.tensors.some((t) => t.name.endsWith("attn_kv_b.weight"))).toBe(false);
        expect(split.summary.attention?.mla_form).not.toBe("attn_kv_b");
        const l27 = expectSameAsGgufPy(await fixtureModel("ds-tiny-27l"));
        expect(l27.summary["block_count"]).toBe(27);
    }, 120_000);

    it("prints the human card, the filtered tensor table and the verdict", async () => {
        const r = ikl(["gguf-dump", await fixtureModel("ds-tiny"), "--filter", "blk\\.1\\.ffn_.*_exps"]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/architecture\s+deepseek2/);
        expect(r.stdout).toMatch(/kv_lora_rank 128/);
        expect(r.stdout).toMatch(/experts 8, used 2, shared 1/);
        const tensorLines = r.stdout.split("\n").filter((l) => /blk\.\d+\.\w+\.weight/.test(l));
        expect(tensorLines.length).toBe(3);
        expect(tensorLines.every((l) => l.includes("blk.1.ffn_"))).toBe(true);
        expect(r.stdout).toMatch(/mainline llama\.cpp: yes/);
    }, 60_000);

    it("opens a split model through its first part", async () => {
        const whole = dump(await fixtureModel("ds-tiny"));
        const prefix = join(tmp, "ds-tiny-split");
        python("split_gguf.py", [await fixtureModel("ds-tiny"), prefix, "3"]);
        const first = `${prefix}-00001-of-00003.gguf`;
        const split = expectSameAsGgufPyParts(first, 3);
        expect(split.files.length).toBe(3);
        expect(split.summary.split_count).toBe(3);
        const strip = (t: DumpTensor): unknown => ({ name: t.name, type: t.type, shape: t.shape, bytes: t.bytes });
        expect(split.tensors.map(strip)).toEqual(whole.tensors.map(strip));
        expect(new Set(split.tensors.map((t) => t.file))).toEqual(new Set([0, 1, 2]));

        const second = ikl(["gguf-dump", `${prefix}-00002-of-00003.gguf`]);
        expect(second.code).toBe(1);
        expect(second.stderr).toMatch(/^error: .*part 2 of 3.*first part/);
        rmSync(`${prefix}-00003-of-00003.gguf`);
        const missing = ikl(["gguf-dump", first]);
        expect(missing.code).toBe(1);
        expect(missing.stderr).toMatch(/^error: split model part 3 of 3 is missing: .*-00003-of-00003\.gguf/);
        expect(missing.stderr.trim().split("\n").length).toBe(1);
    }, 120_000);

    it("names every IQK and row-interleaved type of a file written by the reference quantizer", () => {
        const path = join(ROOT, "fixtures", "models", "ref-iqk-mix.gguf");
        expect(existsSync(path)).toBe(true);
        const d = dump(path);
        const types = Object.fromEntries(d.tensors.map((t) => [t.name, t.type]));
        // The recipe given to ik_llama.cpp's llama-quantize (fixtures/README.md); unlisted tensors got iq4_k/iq5_k.
        expect(types).toMatchObject({
            "blk.0.attn_q.weight": "iq4_k_r4",
            "blk.0.attn_k.weight": "q8_0_r8",
            "blk.0.attn_v.weight": "iq4_ks",
            "blk.0.attn_output.weight": "iq2_k",
            "blk.0.ffn_gate.weight": "iq3_k",
            "blk.0.ffn_up.weight": "iq5_ks",
            "blk.0.ffn_down.weight": "iq6_k",
            "blk.1.attn_q.weight": "q4_0_r8",
            "blk.1.attn_k.weight": "iq2_ks",
            "blk.1.attn_v.weight": "iq4_kss",
            "blk.1.attn_output.weight": "iq3_ks",
            "blk.1.ffn_gate.weight": "iq2_kl",
            "blk.1.ffn_up.weight": "iq4_kt",
            "blk.1.ffn_down.weight": "q6_k_r4",
            "blk.2.attn_q.weight": "iq4_xs_r8",
            "blk.2.attn_k.weight": "q4_k_r4",
            "blk.2.ffn_down.weight": "iq3_kt",
            "blk.2.ffn_gate.weight": "iq5_k",
            "blk.3.ffn_up.weight": "iq4_ks_r4",
            "blk.3.ffn_gate.weight": "bf16_r16",
            "blk.3.ffn_down.weight": "iq2_k_r4",
            "blk.3.attn_q.weight": "q6_0",
            "blk.3.attn_k.weight": "iq5_ks_r4",
            "blk.3.attn_v.weight": "q8_k_r8",
            "blk.3.attn_output.weight": "iq3_k_r4"
        });
        expect(d.compat.mainline.ok).toBe(false);
        expect(d.compat.mainline.ik_only_types).toContain("iq4_k_r4");
        const human = ikl(["gguf-dump", path, "--no-tensors"]);
        expect(human.stdout).toMatch(/CPU-only \(no CUDA kernel in the reference\): .*q4_0_r8/);
        expect(human.stdout).not.toMatch(/CPU-only[^\n]*iq4_k_r4/);
    });

    it("fails cleanly on missing and non-GGUF files", () => {
        const r = ikl(["gguf-dump", "/nonexistent.gguf"]);
        expect(r.code).toBe(1);
        expect(r.stderr.trim()).toBe("error: /nonexistent.gguf: no such file");
        const t = ikl(["gguf-dump", join(ROOT, "package.json")]);
        expect(t.code).toBe(1);
        expect(t.stderr).toMatch(/^error: .*not a GGUF file/);
    });
});
