// perplexity chunk plan, PPL ± uncertainty against hand-computed values, the progress/final line formats checked
// against the reference's captured stdout, KLD statistics, and the base-file reader/writer on a byte prefix of a
// base file written by the reference (llama-tiny, -c 128, --chunks 2).
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
    baseFileSize, decodeLogProbs, quantizeLogits, readBaseHeader, readBaseRecord, recordsPresent, recordSlots, writeBaseFile
} from "../../src/bench/kld-file.js";
import { KLD_CHUNK_HEADER, KldAccumulator, kldToken, median, percentile } from "../../src/bench/kld.js";
import { etaLine, finalLines, formatPerplexityRun, NllAccumulator, perplexityPlan, pplEstimate, tokenNll } from "../../src/bench/perplexity.js";

const golden = (name: string): Buffer => readFileSync(new URL(`golden/ref/${name}`, import.meta.url));

describe("perplexity chunk plan", () => {
    it("-c 512 -b 2048: 4 chunks per call, 255 scored per chunk", () => {
        const p = perplexityPlan({ nTokens: 10000, nCtx: 512, nBatch: 2048, nChunks: -1, addBos: true });
        expect([p.nChunk, p.nSeq, p.kvSize, p.nBatch, p.numBatches, p.first, p.scoredPerChunk]).toEqual([19, 4, 2048, 2048, 1, 256, 255]);
        expect(p.groups.map((g) => g.nSeq)).toEqual([4, 4, 4, 4, 3]);
        expect(p.groups[4]!.batches[0]!.seqStarts).toEqual([16 * 512, 17 * 512, 18 * 512]);
        expect(p.groups[0]!.batches[0]!.nOutputs).toBe(4 * 256);
    });
    it("-b < -c splits each chunk; --chunks limits", () => {
        const p = perplexityPlan({ nTokens: 1000, nCtx: 128, nBatch: 48, nChunks: 2, addBos: true });
        expect([p.nChunk, p.nSeq, p.nBatch, p.numBatches]).toEqual([2, 1, 48, 3]);
        expect(p.groups[1]!.batches.map((b) => [b.pos, b.size, b.seqStarts[0], b.nOutputs])).toEqual([[0, 48, 128, 0], [48, 48, 176, 32], [96, 32, 224, 32]]);
    });
    it("needs 2·n_ctx tokens", () => {
        expect(() => perplexityPlan({ nTokens: 255, nCtx: 128, nBatch: 2048, nChunks: -1, addBos: true })).toThrow(/at least 256 tokens/);
    });
});

describe("perplexity statistics and lines", () => {
    it("PPL = exp(mean), ± PPL·sqrt((Σx²/N − mean²)/(N−1))", () => {
        const acc = new NllAccumulator();
        for (const v of [1, 2, 3, 4]) acc.add(v);
        const e = pplEstimate(acc);
        expect(e.ppl).toBeCloseTo(Math.exp(2.5), 12);
        expect(e.uncertainty!).toBeCloseTo(Math.exp(2.5) * Math.sqrt(1.25 / 3), 12);
        expect(formatPerplexityRun(8, [[1, 2], [3, 4]])).toBe(
            `[1]4.4817,[2]12.1825,\nFinal estimate: PPL over 2 chunks for n_ctx=8 = 12.1825 +/- ${(Math.exp(2.5) * Math.sqrt(1.25 / 3)).toFixed(5)}\n`);
        const flat = new NllAccumulator();
        flat.add(2);
        flat.add(2);
        expect(finalLines(1, 8, flat)).toBe("\nUnexpected negative standard deviation of log(prob)\n");
    });
    it("the reference's stdout has exactly this shape", () => {
        const ref = golden("ppl-c128.txt").toString();
        const m = /^((?:\[\d+\]\d+\.\d{4},)+)\nFinal estimate: PPL over (\d+) chunks for n_ctx=(\d+) = (\d+\.\d{4}) \+\/- (\d+\.\d{5})\n$/.exec(ref);
        expect(m).not.toBeNull();
        expect(m![2]).toBe("6");
        const type1 = golden("ppl-c128-type1.txt").toString().split("\n");
        const acc = new NllAccumulator();
        acc.add(13.5);
        acc.add(13.7);
        const mine = formatPerplexityRun(128, [[13.5, 13.7]], 1).split("\n")[0]!;
        expect(mine).toMatch(/^       0  \d+\.\d{4}  13\.600000  0\.100000$/);
        expect(type1[0]).toMatch(/^       0  \d+\.\d{4}  \d+\.\d{6}  \d+\.\d{6}$/);
    });
    it("token NLL from logits", () => {
        const l = Float32Array.from([1, 2, 3]);
        expect(tokenNll(l, 2)).toBeCloseTo(-Math.log(Math.exp(3) / (Math.exp(1) + Math.exp(2) + Math.exp(3))), 6);
        expect(etaLine("perplexity", 2.47, 564, 4)).toBe("perplexity: 2.47 seconds per pass - ETA 5.80 minutes\n");
        expect(etaLine("perplexity", 30, 564, 4)).toBe("perplexity: 30.00 seconds per pass - ETA 1 hours 10.50 minutes\n");
    });
});

describe("KL divergence", () => {
    it("percentiles interpolate at fraction·(N−1); median of an even count", () => {
        const v = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        expect(percentile(v, 0.5)).toBeCloseTo(4.5, 6);
        expect(percentile(v, 0.95)).toBeCloseTo(8.55, 5);
        expect(percentile(v, 0)).toBe(0);
        expect(median(v)).toBe(4.5);
        expect(median(Float32Array.from([1, 5, 9]))).toBe(5);
    });
    it("identical model vs its own base: KLD ≈ 0, same top 100%, reference line layout", () => {
        const acc = new KldAccumulator();
        const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i * 1.7) * 4);
        const toks: number[] = [];
        for (let k = 0; k < 120; k++) {
            const l = logits.map((x, i) => x + Math.cos(i * k) * 0.5);
            const tok = k % 50;
            const { record } = quantizeLogits(l, tok);
            acc.add(kldToken(l, record, tok));
            toks.push(tok);
        }
        expect(Math.abs(acc.sumKld / acc.count)).toBeLessThan(1e-4);
        expect(acc.nSameTop).toBe(120);
        const line = acc.chunkLine(1);
        expect(line).toMatch(/^   1    {1,}\d+\.\d{4} ± {1,}\d+\.\d{4} {4}.{10} ± .{10} {4}.{10} ± .{10} {4}.{6} ± .{6} % {4}100\.000 ± {2}0\.000 %\n$/);
        const report = acc.finalReport();
        const ref = golden("kld-c128.txt").toString();
        const labels = (s: string): string[] => s.split("\n").map((l) => l.replace(/[-\d.nan]+/g, "#").replace(/ +/g, " "));
        expect(labels(report)).toEqual(labels(ref.slice(ref.indexOf("====== Perplexity"))));
        expect(ref.startsWith(KLD_CHUNK_HEADER)).toBe(true);
    });
});

describe("KL-divergence base file", () => {
    const buf = gunzipSync(golden("kld-base-c128-head.bin.gz"));
    const h = readBaseHeader(buf);
    it("header of the reference's file", () => {
        expect([h.nCtx, h.nVocab, h.nChunk]).toEqual([128, 32000, 2]);
        expect(h.tokens).toHaveLength(256);
        expect(h.tokens[0]).toBe(1); // BOS from tokenization
        expect(recordSlots(32000)).toBe(32004);
        expect(baseFileSize(128, 32000, 2)).toBe(8066052); // the size of the full reference file
        expect(recordsPresent(buf, h)).toBe(2);
    });
    it("records decode to normalised log-probs", () => {
        for (let i = 0; i < 2; i++) {
            const r = readBaseRecord(buf, h, i);
            const lp = decodeLogProbs(r);
            let s = 0;
            let max = -Infinity;
            for (const x of lp) {
                s += Math.exp(x);
                max = Math.max(max, x);
            }
            expect(s).toBeGreaterThan(0.99);
            expect(s).toBeLessThan(1.01);
            expect(max).toBeLessThanOrEqual(0);
            expect(r.scale).toBeCloseTo((max - r.minLogProb) / 65535, 5);
        }
        expect(() => readBaseRecord(buf, h, 2)).toThrow(/record 2/);
    });
    it("writer reproduces the reference bytes; requantising decoded log-probs is stable", () => {
        const recs = [0, 1].map((i) => readBaseRecord(buf, h, i));
        expect(writeBaseFile(h, recs).equals(buf)).toBe(true);
        const again = recs.map((r) => quantizeLogits(decodeLogProbs(r), 0).record);
        again.forEach((r, i) => {
            expect(r.scale).toBeCloseTo(recs[i]!.scale, 6);
            let maxDiff = 0;
            for (let k = 0; k < r.q.length; k++) maxDiff = Math.max(maxDiff, Math.abs(r.q[k]! - recs[i]!.q[k]!));
            expect(maxDiff).toBeLessThanOrEqual(1);
        });
        expect(() => readBaseHeader(Buffer.from("not a logits file"))).toThrow(/log-probabilities/);
    });
});
