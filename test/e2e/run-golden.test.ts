// `ikl run` greedy continuations (64 tokens, 5 prompts of fixtures/text/prompts.json) byte-identical to
// ik_llama.cpp's llama-cli on the same files: fixtures/golden/llama-tiny-greedy.json (`types`: llama-cli's default
// flash attention; `types_fa_off`: `-fa off` on both sides). The Q8_0 file is quantized by OUR quantizer
// (native/core/examples/quantize_model.rs, built here with cargo); native/core/tests/llama_golden.rs checks its
// tensor bytes equal the reference quantizer's. Opt-in (IKL_LARGE_TESTS=1): the same on llama-1b
// (fixtures/golden/llama-1b-greedy.json, files in .cache/).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { CLI, fixtureModel, ROOT } from "../helpers/paths.js";

interface Golden {
    command: string;
    prompts: string[];
    types: Record<string, string[]>;
    types_fa_off: Record<string, string[]>;
}

const load = (name: string): Golden => JSON.parse(readFileSync(join(ROOT, "fixtures", "golden", name), "utf8")) as Golden;
const large = process.env["IKL_LARGE_TESTS"] === "1";

/** Our quantized copy of `src` (`--pure` TYPE), made afresh with the quantize_model example (tiny: ~1 s). */
function quantizeOurs(src: string, dst: string, type: string): string {
    const r = spawnSync("cargo", ["run", "--release", "-q", "--manifest-path", join(ROOT, "native", "Cargo.toml"), "-p", "ikl-core",
        "--example", "quantize_model", "--", src, `${dst}.tmp`, type, "-t", "2"], { encoding: "utf8", timeout: 1_200_000 });
    if (r.status !== 0) throw new Error(`quantize_model failed: ${r.stderr}`);
    renameSync(`${dst}.tmp`, dst);
    return dst;
}

/**
 * Known gaps of the engine (not of this test), flash attention only: `TYPE/prompt` → characters of the
 * reference's stdout our output currently shares before it diverges (measured 2026-11-22). With `-fa off` every
 * continuation is identical (the matmuls reproduce ik's AVX2 arithmetic: Q8_2_X4 activations for Q8_0, f32
 * activations for F16); the remaining difference is ik's CPU flash-attention kernel (iqk_fa_templates.h: K·Q
 * tiles, `v_expf`, online-softmax order, KV split over threads), which our FA does not reproduce yet. On these
 * random-weight fixtures the logits are nearly flat, so one ulp-level difference flips a greedy argmax. Each entry
 * pins the shared prefix (no regression) and fails once the output matches, so the list only shrinks.
 */
const KNOWN_DIVERGENT: Record<string, Record<string, number>> = {
    "llama-tiny": { "F16/2": 265, "Q8_0/0": 313, "Q8_0/1": 267, "Q8_0/2": 206, "Q8_0/3": 32, "Q8_0/4": 264 }
};

/**
 * llama-1b with `-fa off` (opt-in): F16 and Q8_0 prompts 0 and 3 are identical; Q8_0 prompts 1, 2, 4 diverge
 * (measured 2026-11-22), so some Q8_0 matmul shape of llama-1b (n_embd 2048, n_ff 8192; llama-tiny has 256) does
 * not yet take ik's path exactly. Same pinning rule as above.
 */
const KNOWN_DIVERGENT_1B_FA_OFF: Record<string, number> = { "Q8_0/1": 166, "Q8_0/2": 123, "Q8_0/4": 52 };

function commonPrefix(a: string, b: string): number {
    let n = 0;
    while (n < a.length && n < b.length && a[n] === b[n]) n++;
    return n;
}

function checkGreedy(model: string, prompts: string[], want: Record<string, string[]>, files: Record<string, string>, timeout: number,
    known: Record<string, number>, extra: string[] = []): void {
    for (const [type, path] of Object.entries(files)) {
        prompts.forEach((p, i) => {
            const r = spawnSync(process.execPath, [CLI, "run", "-m", path, "-p", p, "-n", "64", "--temp", "0", "-s", "1", "-t", "2", ...extra], {
                encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout
            });
            expect(r.status, `${type} prompt ${i}: ${r.stderr}`).toBe(0);
            const w = want[type]?.[i] ?? "";
            const pinned = known[`${type}/${i}`];
            if (pinned === undefined) {
                expect(r.stdout, `${model} ${type} prompt ${i} ${extra.join(" ")}`).toBe(w);
            } else {
                expect(r.stdout, `${model} ${type} prompt ${i} now matches: remove it from KNOWN_DIVERGENT`).not.toBe(w);
                expect(commonPrefix(r.stdout, w), `${model} ${type} prompt ${i}: shared prefix`).toBeGreaterThanOrEqual(pinned);
            }
        });
    }
}

const PROMPTS = (JSON.parse(readFileSync(join(ROOT, "fixtures", "text", "prompts.json"), "utf8")) as { prompts: string[] }).prompts;

describe("ikl run greedy goldens", () => {
    const tiny = load("llama-tiny-greedy.json");
    let files: Record<string, string> = {};
    beforeAll(async () => {
        const f16 = await fixtureModel("llama-tiny");
        files = { F16: f16, Q8_0: quantizeOurs(f16, f16.replace(/-f16\.gguf$/, "-ours-Q8_0.gguf"), "Q8_0") };
    }, 1_200_000);

    it("llama-tiny F16 and Q8_0, -fa off: 64-token continuations of 5 prompts identical to llama-cli -fa off", () => {
        expect(tiny.prompts).toEqual(PROMPTS);
        checkGreedy("llama-tiny", tiny.prompts, tiny.types_fa_off, files, 60_000, {}, ["-fa", "off"]);
    }, 600_000);

    it("llama-tiny F16 and Q8_0, default flash attention: vs llama-cli (equal, or a pinned known divergence)", () => {
        checkGreedy("llama-tiny", tiny.prompts, tiny.types, files, 60_000, KNOWN_DIVERGENT["llama-tiny"] ?? {});
    }, 600_000);

    // Opt-in: the reference's llama-1b files (.cache/gold/llama-1b-ref-Q8_0.gguf, made by llama-quantize --pure,
    // byte-identical to ours per native/core/tests/llama_golden.rs) and the F16 fixture in .cache/models.
    it.runIf(large)("llama-1b F16 and Q8_0, -fa off: vs llama-cli -fa off, equal or pinned (IKL_LARGE_TESTS=1)", () => {
        const g = load("llama-1b-greedy.json");
        expect(g.prompts).toEqual(PROMPTS);
        const f = { F16: join(ROOT, ".cache", "models", "llama-1b-f16.gguf"), Q8_0: join(ROOT, ".cache", "gold", "llama-1b-ref-Q8_0.gguf") };
        for (const p of Object.values(f)) expect(existsSync(p), `${p} (see fixtures/golden/llama-1b-greedy.json)`).toBe(true);
        checkGreedy("llama-1b", g.prompts, g.types_fa_off, f, 600_000, KNOWN_DIVERGENT_1B_FA_OFF, ["-fa", "off"]);
    }, 3_600_000);
});
