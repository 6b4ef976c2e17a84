// DeepSeek2 perplexity through `ikl perplexity` against ik_llama.cpp 8337e4cd (-mla 0, -c 128 -b 128, declaration.txt).
// Normal run: the ds-tiny-27l F16 fixture (2 chunks, -fa off and on) against fixtures/golden/ds-tiny-27l-ppl.json,
// and the MoE flags end to end on the 4-layer ds-tiny: -no-fmoe gives the same numbers, -ser Kmin=n_used is a
// no-op while -ser 1,1 changes the result, -ger is accepted (a no-op without group keys), a bad -ser is refused.
// Opt-in (IKL_MODELS_DIR holding ds-tiny-27l / ds-mini / ds-mini-128h as <name>-<f16|q8_0|q4_0|iq4_xs>.gguf, the
// quantized files made by the reference's llama-quantize with its default mix): every file against
// fixtures/golden/ds-moe-quant-ppl.json within its recorded tolerance (0.3 %, or a documented wider bound).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { CLI, fixtureModel, ROOT } from "../helpers/paths.js";

const TEXT = join(ROOT, "fixtures", "text", "declaration.txt");
const CHUNK_RE = /\[(\d+)\](\d+\.\d+),/g;
const FINAL_RE = /^Final estimate: PPL over (\d+) chunks for n_ctx=128 = (\d+\.\d+)/m;

interface Ppl {
    code: number | null;
    chunks: number[];
    final: number;
    stderr: string;
}

/** `ikl perplexity -c 128 -b 128 -t 2 -mla 0` with extra flags (a long timeout: the machine may be shared). */
function ppl(model: string, extra: string[]): Ppl {
    const r = spawnSync(process.execPath, [CLI, "perplexity", "-m", model, "-f", TEXT, "-c", "128", "-b", "128", "-t", "2", "-mla", "0", "-q", ...extra], {
        encoding: "utf8",
        env: { ...process.env, NO_COLOR: "1" },
        timeout: 900_000,
        maxBuffer: 16 << 20
    });
    return {
        code: r.status,
        chunks: [...r.stdout.matchAll(CHUNK_RE)].map((m) => Number(m[2])),
        final: Number(FINAL_RE.exec(r.stdout)?.[2] ?? NaN),
        stderr: r.stderr
    };
}

const rel = (a: number, b: number): number => Math.abs(a / b - 1);

describe("deepseek2 perplexity (fixtures)", () => {
    const golden = JSON.parse(readFileSync(join(ROOT, "fixtures", "golden", "ds-tiny-27l-ppl.json"), "utf8")) as Record<string, number[]>;
    let tiny27 = "";
    let tiny = "";
    beforeAll(async () => {
        tiny27 = await fixtureModel("ds-tiny-27l");
        tiny = await fixtureModel("ds-tiny");
    }, 300_000);

    // running PPL per chunk within 0.5 % (FA off; chunk 2 sits at 0.30 %, the 6-chunk final at 0.13 %: near-tied
    // expert choices of this random model flip) / 1 % (FA on: the reference's generic FA kernel for these head
    // sizes, see native/core/tests/deepseek2_forward.rs) of the reference
    for (const [fa, key, tol] of [["off", "ppl_mla0_fa_off", 5e-3], ["on", "ppl_mla0_fa_on", 1e-2]] as const) {
        it(`ds-tiny-27l F16 -fa ${fa} matches llama-perplexity`, () => {
            const r = ppl(tiny27, ["-fa", fa, "--chunks", "2"]);
            expect(r.code, r.stderr).toBe(0);
            expect(r.chunks).toHaveLength(2);
            r.chunks.forEach((v, i) => expect(rel(v, golden[key]![i]!)).toBeLessThan(tol));
        }, 900_000);
    }

    it("MoE flags: -no-fmoe same numbers, -ser n_used,t no-op, -ser 1,1 moves PPL, -ger accepted", () => {
        const base = ppl(tiny, ["--chunks", "2"]);
        expect(base.code, base.stderr).toBe(0);
        expect(base.chunks).toHaveLength(2);
        expect(ppl(tiny, ["--chunks", "2", "-no-fmoe"]).chunks).toEqual(base.chunks);
        expect(ppl(tiny, ["--chunks", "2", "-ser", "2,0.9"]).chunks).toEqual(base.chunks); // ds-tiny uses 2 experts
        expect(ppl(tiny, ["--chunks", "2", "-ger"]).chunks).toEqual(base.chunks); // no expert_group_count in the file
        const one = ppl(tiny, ["--chunks", "2", "-ser", "1,1"]);
        expect(one.code, one.stderr).toBe(0);
        expect(rel(one.final, base.final)).toBeGreaterThan(1e-3);
        const bad = ppl(tiny, ["-ser", "1"]);
        expect(bad.code).toBe(2);
        expect(bad.stderr).toMatch(/Kmin,t/);
    }, 900_000);
});

interface QuantGolden {
    models: Record<string, Record<string, { fa_off: number; fa_on: number; tol_off?: number; tol_on?: number }>>;
    tolerance: number;
}

const modelsDir = process.env["IKL_MODELS_DIR"] ?? "";

describe.skipIf(modelsDir === "")("deepseek2 perplexity vs llama-perplexity (IKL_MODELS_DIR)", () => {
    const g = JSON.parse(readFileSync(join(ROOT, "fixtures", "golden", "ds-moe-quant-ppl.json"), "utf8")) as QuantGolden;
    for (const [name, types] of Object.entries(g.models)) {
        for (const [type, want] of Object.entries(types)) {
            const file = join(modelsDir, `${name}-${type}.gguf`);
            for (const fa of ["off", "on"] as const) {
                it.skipIf(!existsSync(file))(`${name} ${type} -fa ${fa}`, () => {
                    const r = ppl(file, ["-fa", fa]);
                    expect(r.code, r.stderr).toBe(0);
                    const ref = fa === "off" ? want.fa_off : want.fa_on;
                    const tol = (fa === "off" ? want.tol_off : want.tol_on) ?? g.tolerance;
                    expect(rel(r.final, ref), `ours ${r.final} reference ${ref}`).toBeLessThan(tol);
                }, 900_000);
            }
        }
    }
});
