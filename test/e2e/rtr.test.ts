// `-rtr` / `--run-time-repack` end to end on llama-tiny quantized to IQK and K types: the CPU weights are
// repacked into their row-interleaved form at load (IQ4_K → IQ4_K_R4, IQ4_KS → IQ4_KS_R4, Q4_K → Q4_K_R4, …) and
// every result is identical to the run without it (the interleaved kernels return the base kernels' numbers
// bit for bit). Q4_0 is left out here: its base takes the large-batch Q8_0_R8 path for ≥ 32 rows, which its
// `_R8` form does not (as in the reference), so only small batches are bit-identical (native tests cover it).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addon, fixtureModel, ikl, ROOT } from "../helpers/paths.js";

const TEXT = join(ROOT, "fixtures", "text", "declaration.txt");

interface TensorRow {
    name: string;
    ne: number[];
    type: string;
}

/** Per-role types covering the repackable families; the rest kept (token_embd is never repacked). */
const ROLE_TYPES: [RegExp, string][] = [
    [/\.attn_q\./, "iq4_k"],
    [/\.attn_k\./, "iq2_k"],
    [/\.attn_v\./, "iq3_k"],
    [/\.attn_output\./, "iq5_k"],
    [/blk\.0\.ffn_gate\./, "iq4_ks"],
    [/blk\.1\.ffn_gate\./, "q5_k"],
    [/\.ffn_up\./, "q4_k"],
    [/\.ffn_down\./, "q6_k"],
];
const REPACKED = new Set(ROLE_TYPES.map(([, t]) => t));

function typeFor(t: TensorRow): string {
    if (t.ne.length < 2 || t.ne[0]! % 256 !== 0 || t.name === "token_embd.weight") return t.type;
    return ROLE_TYPES.find(([re]) => re.test(t.name))?.[1] ?? t.type;
}

describe("ikl -rtr (run-time repacking)", () => {
    let dir = "";
    let model = "";
    let nRepackable = 0;
    beforeAll(async () => {
        const src = await fixtureModel("llama-tiny");
        dir = mkdtempSync(join(tmpdir(), "ikl-rtr-"));
        model = join(dir, "llama-tiny-mix.gguf");
        const info = (await addon().inspectGguf(src, 16)) as { tensors: TensorRow[] };
        const types = info.tensors.map(typeFor);
        nRepackable = types.filter((t) => REPACKED.has(t)).length;
        await new (addon().QuantizeJob)().run({ src, dst: model, types, threads: 2, ftype: 1 });
    }, 180_000);
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("gives the same perplexity, chunk by chunk, as without repacking", () => {
        // -ub 16: below every large-batch conversion threshold (Q6_K converts to Q8_0_R8 from 64 rows, its _R4 form
        // does not, as in the reference), so the repacked and plain runs take the same arithmetic
        const args = ["perplexity", "-m", model, "-f", TEXT, "-c", "128", "-b", "128", "-ub", "16", "-t", "2", "--chunks", "3", "-q"];
        const plain = ikl(args);
        const rtr = ikl([...args, "-rtr"]);
        expect(plain.code).toBe(0);
        expect(rtr.code).toBe(0);
        expect(plain.stdout).toMatch(/Final estimate: PPL over 3 chunks/);
        expect(rtr.stdout).toBe(plain.stdout);
    }, 180_000);

    it("run: same greedy text, and says how many tensors it repacked", () => {
        const args = ["run", "-m", model, "-p", "We hold these truths", "-n", "12", "--temp", "0", "-t", "2"];
        const plain = ikl(args);
        const rtr = ikl([...args, "--run-time-repack"]);
        expect(rtr.code).toBe(0);
        expect(rtr.stdout).toBe(plain.stdout);
        const m = /run-time repack: (\d+) tensors repacked/.exec(rtr.stderr);
        expect(m).not.toBeNull();
        // with AVX2 every weight of these types has an interleaved kernel; without, none is repacked
        expect([0, nRepackable]).toContain(Number(m![1]));
        expect(plain.stderr).not.toMatch(/run-time repack/);
    }, 180_000);

    it("bench -rtr 1 records repack in the report; sweep-bench accepts -rtr", () => {
        const b = ikl(["bench", "-m", model, "-p", "16", "-n", "0", "-r", "1", "-w", "0", "-t", "2", "-rtr", "1", "-o", "json"]);
        expect(b.code).toBe(0);
        const rows = JSON.parse(b.stdout) as { repack: boolean; n_prompt: number }[];
        expect(rows[0]?.repack).toBe(true);
        const s = ikl(["sweep-bench", "-m", model, "-c", "256", "-ub", "128", "-t", "2", "-rtr", "-o", "jsonl"]);
        expect(s.code).toBe(0);
        expect(s.stdout.trim().split("\n").length).toBeGreaterThan(0);
    }, 180_000);
});
