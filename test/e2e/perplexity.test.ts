// `ikl perplexity` end to end on the llama-tiny F16 fixture: per-chunk running PPL and the final estimate agree with
// ik_llama.cpp's llama-perplexity (fixtures/golden/llama-tiny-ppl.json) within 0.1 %, stdout parses with the regexes
// people use on the reference's output, and KL-divergence base files round-trip (ours ↔ ours, and the reference's
// when /work/ref's binary is present).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixtureModel, ikl, ROOT } from "../helpers/paths.js";
import { spawnSync } from "node:child_process";

const golden = JSON.parse(readFileSync(join(ROOT, "fixtures", "golden", "llama-tiny-ppl.json"), "utf8")) as { ppl_f16: number[] };
const TEXT = join(ROOT, "fixtures", "text", "declaration.txt");
const REF = process.env["IKL_REF_PERPLEXITY"] ?? "/work/ref/ik/build/bin/llama-perplexity";
// the reference's output as scripts parse it
const CHUNK_RE = /\[(\d+)\](\d+\.\d+),/g;
const FINAL_RE = /^Final estimate: PPL over (\d+) chunks for n_ctx=(\d+) = (\d+\.\d+) \+\/- (\d+\.\d+)$/m;
const KLD_RE = /^Mean {4}KLD: +(-?\d+\.\d+) ± +(\d+\.\d+)$/m;
const TOP_RE = /^Same top p: +(\d+\.\d+) ± +(\d+\.\d+) %$/m;

describe("ikl perplexity", () => {
    let model = "";
    let dir = "";
    beforeAll(async () => {
        model = await fixtureModel("llama-tiny");
        dir = mkdtempSync(join(tmpdir(), "ikl-ppl-"));
    }, 120_000);
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("matches llama-perplexity per chunk and in the final estimate", () => {
        const r = ikl(["perplexity", "-m", model, "-f", TEXT, "-c", "128", "-b", "128", "-t", "2"]);
        expect(r.code).toBe(0);
        const chunks = [...r.stdout.matchAll(CHUNK_RE)].map((m) => Number(m[2]));
        expect(chunks).toHaveLength(golden.ppl_f16.length);
        chunks.forEach((v, i) => expect(Math.abs(v / golden.ppl_f16[i]! - 1)).toBeLessThan(1e-3));
        const fin = FINAL_RE.exec(r.stdout);
        expect(fin?.slice(1, 3)).toEqual(["6", "128"]);
        expect(Math.abs(Number(fin![3]) / golden.ppl_f16[5]! - 1)).toBeLessThan(1e-3);
        expect(r.stdout.split("\n")).toHaveLength(3); // progress line, final line, trailing newline: nothing else
        expect(r.stderr).toMatch(/perplexity: calculating perplexity over 6 chunks, n_ctx=128, batch_size=128, n_seq=1/);
        expect(r.stderr).toMatch(/perplexity: [\d.]+ seconds per pass - ETA [\d.]+ minutes/);
    }, 120_000);

    it("runs several chunks per call (-b 256) and prints JSON with -o json", () => {
        const r = ikl(["perplexity", "-m", model, "-f", TEXT, "-c", "128", "-b", "256", "-t", "2", "--chunks", "2", "--json", "-q"]);
        expect(r.code).toBe(0);
        expect(r.stderr).toBe("");
        const j = JSON.parse(r.stdout) as { n_chunk: number; ppl: number; chunks: number[] };
        expect(j.n_chunk).toBe(2);
        j.chunks.forEach((v, i) => expect(Math.abs(v / golden.ppl_f16[i]! - 1)).toBeLessThan(1e-3));
    }, 120_000);

    it("writes a base file and reads it back: KLD 0, same top 100 %", () => {
        const base = join(dir, "ours.kld");
        const w = ikl(["perplexity", "-m", model, "-f", TEXT, "-c", "128", "-t", "2", "--chunks", "2", "--kl-divergence-base", base]);
        expect(w.code).toBe(0);
        expect(FINAL_RE.exec(w.stdout)?.[1]).toBe("2");
        const r = ikl(["perplexity", "-m", model, "-c", "128", "-t", "2", "--kl-divergence-base", base, "--kl-divergence"]);
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(/^\nchunk {13}PPL {15}ln\(PPL\(Q\)\/PPL\(base\)\) {10}KL Divergence/);
        expect(Math.abs(Number(KLD_RE.exec(r.stdout)?.[1]))).toBeLessThan(1e-4);
        expect(TOP_RE.exec(r.stdout)?.[1]).toBe("100.000");
    }, 120_000);

    it.skipIf(!existsSync(REF))("reads a base file written by llama-perplexity", () => {
        const base = join(dir, "ref.kld");
        const w = spawnSync(REF, ["-m", model, "-f", TEXT, "-c", "128", "-t", "2", "--chunks", "2", "--kl-divergence-base", base], { encoding: "utf8" });
        expect(w.status).toBe(0);
        const r = ikl(["perplexity", "-m", model, "-c", "128", "-t", "2", "--kl-divergence-base", base, "--kl-divergence"]);
        expect(r.code).toBe(0);
        expect(Math.abs(Number(KLD_RE.exec(r.stdout)?.[1]))).toBeLessThan(1e-4);
        expect(TOP_RE.exec(r.stdout)?.[1]).toBe("100.000");
    }, 120_000);

    it.skipIf(!existsSync(REF))("writes a base file that llama-perplexity reads", () => {
        const base = join(dir, "ours-for-ref.kld");
        expect(ikl(["perplexity", "-m", model, "-f", TEXT, "-c", "128", "-t", "2", "--chunks", "2", "--kl-divergence-base", base]).code).toBe(0);
        const r = spawnSync(REF, ["-m", model, "-c", "128", "-t", "2", "--kl-divergence-base", base, "--kl-divergence"], { encoding: "utf8" });
        expect(r.status).toBe(0);
        const out = `${r.stdout}${r.stderr}`;
        expect(Math.abs(Number(/Mean +KLD: +(-?[\d.]+)/.exec(out)?.[1]))).toBeLessThan(1e-4);
        expect(/Same top p: +([\d.]+)/.exec(out)?.[1]).toBe("100.000");
    }, 120_000);

    it("refuses too little text and unsupported flags", () => {
        const r = ikl(["perplexity", "-m", model, "-f", TEXT, "-c", "512", "-t", "2"]);
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/you need at least 1024 tokens/);
        expect(ikl(["perplexity", "-m", model, "-f", TEXT, "-ngl", "99"]).stderr).toMatch(/-ngl 99 places tensors on CUDA, but CUDA is not available/);
    }, 60_000);
});
