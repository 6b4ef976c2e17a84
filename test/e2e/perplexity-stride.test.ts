// `ikl perplexity --ppl-stride`: the reference's strided perplexity (perplexity_v2) on llama-tiny F16, per chunk
// within 0.1 % of ik_llama.cpp's llama-perplexity with flash attention on and off (the padded context, hence the
// chunk count, differs between the two: fixtures/golden/llama-tiny-ppl.json `ppl_stride64_f16_fa_*`).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { fixtureModel, ikl, ROOT } from "../helpers/paths.js";

const golden = JSON.parse(readFileSync(join(ROOT, "fixtures", "golden", "llama-tiny-ppl.json"), "utf8")) as Record<string, number[]>;
const TEXT = join(ROOT, "fixtures", "text", "declaration.txt");
const CHUNK_RE = /\[(\d+)\](\d+\.\d+),/g;

describe("ikl perplexity --ppl-stride", () => {
    let model = "";
    beforeAll(async () => {
        model = await fixtureModel("llama-tiny");
    }, 120_000);

    for (const fa of ["on", "off"]) {
        it(`matches llama-perplexity --ppl-stride 64 per chunk (-fa ${fa})`, () => {
            const r = ikl(["perplexity", "-m", model, "-f", TEXT, "-c", "128", "-b", "128", "--ppl-stride", "64", "-t", "2", "-fa", fa]);
            expect(r.code, r.stderr).toBe(0);
            const want = golden[`ppl_stride64_f16_fa_${fa}`]!;
            const got = [...r.stdout.matchAll(CHUNK_RE)].map((m) => Number(m[2]));
            expect(got).toHaveLength(want.length);
            got.forEach((v, i) => expect(Math.abs(v / want[i]! - 1), `chunk ${i + 1}`).toBeLessThan(1e-3));
            expect(r.stdout).not.toMatch(/Final estimate/);
            expect(r.stderr).toMatch(/adjusting context size from 128 to 160/);
        }, 120_000);
    }

    it("per-chunk lines with --ppl-output-type 1, JSON with -o json, and clear errors", () => {
        const t1 = ikl(["perplexity", "-m", model, "-f", TEXT, "-c", "128", "-b", "128", "--ppl-stride", "64", "-t", "2", "--chunks", "2", "--ppl-output-type", "1", "-q"]);
        expect(t1.code).toBe(0);
        expect(t1.stdout).toMatch(/^ {7}0 {2}\d+\.\d{4}\n {6}64 {2}\d+\.\d{4}\n\n$/);
        const j = ikl(["perplexity", "-m", model, "-f", TEXT, "-c", "128", "-b", "128", "--ppl-stride", "64", "-t", "2", "--chunks", "2", "-o", "json", "-q"]);
        const doc = JSON.parse(j.stdout) as { n_chunk: number; ppl: number; chunks: number[] };
        expect(doc.n_chunk).toBe(2);
        expect(doc.ppl).toBe(doc.chunks[1]);
        const big = ikl(["perplexity", "-m", model, "-f", TEXT, "-c", "128", "-b", "128", "--ppl-stride", "4096", "-t", "2"]);
        expect(big.code).toBe(1);
        expect(big.stderr).toMatch(/^error: --ppl-stride 4096 must be smaller than the context \(2304\)$/m);
        const short = ikl(["perplexity", "-m", model, "-f", TEXT, "-c", "2048", "-b", "2048", "--ppl-stride", "64", "-t", "2"]);
        expect(short.code).toBe(1);
        expect(short.stderr).toMatch(/^error: you need at least \d+ tokens .* tokenizes to only \d+$/m);
        const kld = ikl(["perplexity", "-m", model, "-f", TEXT, "--ppl-stride", "64", "--kl-divergence-base", "x.kld"]);
        expect(kld.code).not.toBe(0);
        expect(kld.stderr).toMatch(/cannot be combined/);
    }, 120_000);
});
