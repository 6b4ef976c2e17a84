// sweep-bench plan and formatting vs the reference: JSONL rows are rebuilt from integer microseconds recovered from
// the captured reference JSONL and must match byte for byte; the captured markdown table must be reproducible by
// some integer timing per row (the table rounds T to 1 ms, so the exact µs is searched for).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { sprintf } from "../../src/ui/printf.js";
import {
    parseSweepJsonl, parseSweepTable, sweepJsonlRow, sweepPlan, sweepTableHeader, sweepTableRow, type SweepHeader
} from "../../src/bench/sweep.js";

const golden = (name: string): string => readFileSync(new URL(`golden/ref/${name}`, import.meta.url), "utf8");
const HDR: SweepHeader = { nKvMax: 512, nBatch: 2048, nUbatch: 128, flashAttn: 1, nGpuLayers: -1, nThreads: 2, nThreadsBatch: 2 };

describe("sweep-bench plan", () => {
    const base = { nKvMax: 512, nBatch: 2048, nUbatch: 128, nPredict: 0, nrep: 1, stride: 1, warmup: true, warmupBatch: false };
    it("rows at 0, ub, 2ub … below n_ctx; tg = ub/4", () => {
        const p = sweepPlan(base);
        expect(p.pp).toBe(128);
        expect(p.tg).toBe(32);
        expect(p.rows.map((r) => r.nKv)).toEqual([0, 128, 256, 384]);
        expect(p.warmup).toEqual([{ op: "decode", pos: 0, n: 1, logits: "none", random: false }, { op: "drop", from: 0, clear: true }]);
    });
    it("each row: drop ≥ n_kv, tg single decodes, drop ≥ n_kv, pp in -b chunks kept in the cache", () => {
        const p = sweepPlan({ ...base, nBatch: 64, nPredict: 2 });
        const ops = p.rows[1]!.ops;
        expect(ops).toEqual([
            { op: "timer", what: "tg-start" },
            { op: "drop", from: 128 },
            { op: "decode", pos: 128, n: 1, logits: "all", random: true },
            { op: "decode", pos: 129, n: 1, logits: "all", random: true },
            { op: "timer", what: "tg-end" },
            { op: "timer", what: "pp-start" },
            { op: "drop", from: 128 },
            { op: "decode", pos: 128, n: 64, logits: "none", random: true },
            { op: "decode", pos: 192, n: 64, logits: "last", random: true },
            { op: "timer", what: "pp-end" }
        ]);
    });
    it("nrep applies to the first row only; stride skips measurement but still fills the cache", () => {
        const p = sweepPlan({ ...base, nrep: 3, stride: 2 });
        expect(p.rows.map((r) => [r.measure, r.nrep])).toEqual([[true, 3], [false, 1], [true, 1], [false, 1]]);
        expect(p.rows[1]!.ops).toEqual([{ op: "decode", pos: 128, n: 128, logits: "last", random: true }]);
        expect(p.rows[0]!.ops.filter((o) => o.op === "drop")).toHaveLength(6);
    });
    it("-n overrides tg; warm-up batch", () => {
        const p = sweepPlan({ ...base, nPredict: 16, warmupBatch: true });
        expect(p.tg).toBe(16);
        expect(p.warmup.map((o) => o.op)).toEqual(["decode", "drop", "decode", "drop"]);
    });
});

describe("sweep-bench output vs reference", () => {
    it("JSONL rows byte-identical from integer µs", () => {
        const lines = golden("sweep.jsonl").trimEnd().split("\n");
        const pts = parseSweepJsonl(golden("sweep.jsonl"));
        expect(pts).toHaveLength(4);
        pts.forEach((pt, i) => {
            const m = { pp: pt.pp, tg: pt.tg, nKv: pt.nKv, tPpUs: Math.round(pt.tPp * 1e6), tTgUs: Math.round(pt.tTg * 1e6), nrep: 1 };
            expect(sweepJsonlRow(HDR, m)).toBe(`${lines[i]}\n`);
        });
    });
    it("markdown header and every row reproducible", () => {
        const ref = golden("sweep.md");
        const rows = parseSweepTable(ref);
        expect(rows).toHaveLength(4);
        let out = sweepTableHeader(HDR).slice(1);
        for (const r of rows) {
            // the row's text after N_KV; the PP and TG halves depend on one timing each, searched independently
            const refLine = ref.split("\n").find((l) => l.startsWith(sprintf("|%6d | %6d | %6d |", r.pp, r.tg, r.nKv)))!;
            const search = (n: number, speed: number, cell: (m: { tPpUs: number; tTgUs: number }) => string): number | undefined => {
                const mid = Math.round((n / speed) * 1e6);
                for (let u = mid - 60; u <= mid + 60; u++) if (refLine.includes(cell({ tPpUs: u, tTgUs: u }))) return u;
                return undefined;
            };
            const cells = (m: { tPpUs: number; tTgUs: number }): string[] =>
                sweepTableRow({ pp: r.pp, tg: r.tg, nKv: r.nKv, nrep: 1, ...m }).split("|").map((c) => c.trim());
            const a = search(r.pp, r.speedPp, (m) => `| ${cells(m)[4]!.padStart(8)} | ${cells(m)[5]!.padStart(8)} |`);
            const b = search(r.tg, r.speedTg, (m) => `| ${cells(m)[6]!.padStart(8)} | ${cells(m)[7]!.padStart(8)} |`);
            expect(a, `PP timing for n_kv=${r.nKv}`).toBeDefined();
            expect(b, `TG timing for n_kv=${r.nKv}`).toBeDefined();
            out += sweepTableRow({ pp: r.pp, tg: r.tg, nKv: r.nKv, tPpUs: a!, tTgUs: b!, nrep: 1 });
        }
        expect(out).toBe(ref);
    });
    it("memory columns", () => {
        const m = { pp: 512, tg: 128, nKv: 0, tPpUs: 1100000, tTgUs: 2311000, nrep: 1, rssHwmMib: 1234.56 };
        expect(sweepTableRow(m, true)).toBe("|   512 |    128 |      0 |    1.100 |   465.45 |    2.311 |    55.39 |     1234.6 |        n/a |\n");
        expect(sweepJsonlRow(HDR, m, true)).toContain('"rss_hwm_mib": 1234.560, "vram_delta_mib": null }\n');
        expect(sweepTableHeader(HDR, true)).toContain("|-------|--------|--------|----------|----------|----------|----------|------------|------------|\n");
    });
});
