// llama-bench printers vs outputs captured from the reference binary on llama-tiny (test/unit/golden/ref/): the
// numbers of each run are parsed from its json (written to stderr by `-oe json` in the same run as the md/csv on
// stdout) and fed back through our printers, which must reproduce the reference bytes exactly.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { benchDefaults, expandInstances, type BenchParams } from "../../src/bench/params.js";
import { avgNs, formatCsv, formatJson, formatJsonl, formatMarkdown, stdevNs } from "../../src/bench/report.js";
import { parseBenchJson } from "../../src/bench/report-parse.js";
import { fmtF, fmtG, sprintf } from "../../src/ui/printf.js";

const golden = (name: string): string => readFileSync(new URL(`golden/ref/${name}`, import.meta.url), "utf8");
const MODEL = "/work/main/.cache/test-models/llama-tiny-f16.gguf";

function params(over: Partial<BenchParams>): BenchParams {
    return { ...benchDefaults(16), model: [MODEL], ...over };
}

// the command line of each captured run (see golden/ref/README.md)
const RUNS: Record<string, BenchParams> = {
    "1": params({ nPrompt: [64], nGen: [16], reps: 2, nThreads: [[2, 2]] }),
    "2": params({ nPrompt: [32], nGen: [8], reps: 2, nThreads: [[1, 1], [2, 2]], flashAttn: [false, true] }),
    "3": params({
        nPrompt: [32], nGen: [8], nPg: [[16, 8]], nGp: [[32, 8]], reps: 3, nThreads: [[2, 2]], nBatch: [256], nUbatch: [128],
        typeK: ["q8_0"], mlaAttn: [1, 2]
    }),
    "4": params({ nPrompt: [16], nGen: [0], reps: 1, nThreads: [[2, 2]] }),
    "5": params({ nPrompt: [32], nGen: [8], nPg: [[16, 8]], reps: 3, nThreads: [[2, 2]] })
};

describe("printf", () => {
    it("rounds on the exact binary value, ties to even", () => {
        expect(fmtF(0.125, 2)).toBe("0.12");
        expect(fmtF(0.375, 2)).toBe("0.38");
        expect(fmtF(2.675, 2)).toBe("2.67"); // 2.67499999…
        expect(fmtF(-0.001, 2)).toBe("-0.00");
        expect(fmtF(1e21, 1)).toBe("1000000000000000000000.0");
        expect(fmtF(NaN, 2)).toBe("-nan");
    });
    it("%g like C++ ostream", () => {
        expect(fmtG(235.364727)).toBe("235.365");
        expect(fmtG(54.4293)).toBe("54.4293");
        expect(fmtG(0.2)).toBe("0.2");
        expect(fmtG(0)).toBe("0");
        expect(fmtG(1234567)).toBe("1.23457e+06");
        expect(fmtG(0.00001234)).toBe("1.234e-05");
        expect(fmtG(999999.5)).toBe("1e+06");
    });
    it("widths count bytes", () => {
        expect(sprintf("|%*s|", 17, "1.00 ± 2.00")).toBe("|     1.00 ± 2.00|");
        expect(sprintf("%-6s|%6.3f|%4d|%u", "ab", 3.14159, 7, 9)).toBe("ab    | 3.142|   7|9");
    });
});

describe("llama-bench statistics", () => {
    it("integer mean and stddev as uint64 arithmetic", () => {
        expect(avgNs([271924362, 271912439])).toBe(271918400n);
        // the true sample stddev is 8430; the reference truncates Σx²/(n−1) and mean²·n/(n−1) separately and prints 24797
        expect(stdevNs([271924362, 271912439])).toBe(24797n);
        expect(stdevNs([5])).toBe(0n);
    });
});

describe("llama-bench printers reproduce the reference bytes", () => {
    for (const id of ["1", "2", "3", "4"]) {
        it(`markdown run ${id}`, () => {
            const { build, results } = parseBenchJson(golden(`bench-${id}.json`));
            const p = RUNS[id]!;
            expect(formatMarkdown(p, benchDefaults(16), results, build)).toBe(golden(`bench-${id}.md`));
        });
        it(`json run ${id}`, () => {
            const { build, results } = parseBenchJson(golden(`bench-${id}.json`));
            expect(formatJson(results, build)).toBe(golden(`bench-${id}.json`));
        });
    }
    it("csv run 5", () => {
        const { build, results } = parseBenchJson(golden("bench-5.json"));
        expect(formatCsv(results, build)).toBe(golden("bench-5.csv"));
    });
    it("jsonl: one json object per test, same fields", () => {
        const { build, results } = parseBenchJson(golden("bench-5.json"));
        const lines = formatJsonl(results, build).trimEnd().split("\n");
        expect(lines).toHaveLength(results.length);
        const ref = JSON.parse(golden("bench-5.json")) as Record<string, unknown>[];
        lines.forEach((l, i) => expect(JSON.parse(l)).toEqual(ref[i]));
    });
});

describe("parameter cross product", () => {
    it("orders tests like get_cmd_params_instances", () => {
        const insts = expandInstances(params({ nPrompt: [512], nGen: [128], nThreads: [[1, 1], [2, 2]], flashAttn: [false, true], mlaAttn: [1, 3] }));
        const key = insts.map((i) => `fa${+i.flashAttn}/mla${i.mlaAttn}/t${i.nThreads[0]}/${i.kind}`);
        expect(key.slice(0, 6)).toEqual(["fa0/mla1/t1/pp", "fa0/mla1/t1/tg", "fa0/mla1/t2/pp", "fa0/mla1/t2/tg", "fa0/mla3/t1/pp", "fa0/mla3/t1/tg"]);
        expect(insts).toHaveLength(16);
        expect(key[8]).toBe("fa1/mla1/t1/pp");
    });
    it("matches the row order of captured run 2 and 3", () => {
        for (const id of ["2", "3"]) {
            const { results } = parseBenchJson(golden(`bench-${id}.json`));
            const insts = expandInstances(RUNS[id]!);
            expect(insts.map((i) => [i.kind, i.nThreads[0], i.flashAttn, i.mlaAttn, i.nPrompt, i.nGen])).toEqual(
                results.map((r) => [r.inst.kind, r.inst.nThreads[0], r.inst.flashAttn, r.inst.mlaAttn, r.inst.nPrompt, r.inst.nGen])
            );
        }
    });
    it("skips zero sizes and orders pp, tg, pg, gp", () => {
        const insts = expandInstances(params({ nPrompt: [0, 64], nGen: [0], nPg: [[16, 8]], nGp: [[4096, 64]] }));
        expect(insts.map((i) => i.kind)).toEqual(["pp", "pg", "gp"]);
    });
});
