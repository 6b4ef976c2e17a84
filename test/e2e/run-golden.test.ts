// `ikl run` greedy continuations (64 tokens, 5 prompts of fixtures/text/prompts.json) byte-identical to
// ik_llama.cpp's llama-cli on the same files: fixtures/golden/llama-tiny-greedy.json. The Q8_0 file is quantized
// by OUR quantizer (native/core/examples/quantize_model.rs, built here with cargo); native/core/tests/llama_golden.rs
// checks its tensor bytes equal the reference quantizer's. No llama-1b golden: that fixture's logits are not finite
// in the reference (PPL inf, greedy repeats one token), see fixtures/golden/llama-1b-quant-ppl.json.
import { spawnSync } from "node:child_process";
import { readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { CLI, fixtureModel, ROOT } from "../helpers/paths.js";

interface Golden {
    command: string;
    prompts: string[];
    types: Record<string, string[]>;
}

const load = (name: string): Golden => JSON.parse(readFileSync(join(ROOT, "fixtures", "golden", name), "utf8")) as Golden;

/** Our quantized copy of `src` (`--pure` TYPE), made afresh with the quantize_model example (tiny: ~1 s). */
function quantizeOurs(src: string, dst: string, type: string): string {
    const r = spawnSync("cargo", ["run", "--release", "-q", "--manifest-path", join(ROOT, "native", "Cargo.toml"), "-p", "ikl-core",
        "--example", "quantize_model", "--", src, `${dst}.tmp`, type, "-t", "2"], { encoding: "utf8", timeout: 1_200_000 });
    if (r.status !== 0) throw new Error(`quantize_model failed: ${r.stderr}`);
    renameSync(`${dst}.tmp`, dst);
    return dst;
}

/**
 * Known gaps of the engine (not of this test): `TYPE/prompt` → characters of the reference's stdout our output
 * currently shares before it diverges (measured 2026-11-22 with dist/ikl.node of that day). On these random-weight
 * fixtures the logits are nearly flat, so one ulp-level difference in the forward pass flips a greedy argmax:
 * F16 diverges once late (token ~50 of prompt 2); Q8_0 early in every prompt, i.e. the Q8_0 matmul path does not yet
 * reproduce the reference's arithmetic (the Q8_0 files themselves are byte-identical to the reference's). Each entry
 * pins the shared prefix (no regression) and fails once the output matches, so the list only shrinks.
 */
const KNOWN_DIVERGENT: Record<string, Record<string, number>> = {
    // Re-measured after the legacy GEMM kernels moved to f32 lane accumulation (ik's order, not the scalar one).
    "llama-tiny": { "F16/2": 265, "Q8_0/0": 111, "Q8_0/1": 212, "Q8_0/2": 57, "Q8_0/3": 51, "Q8_0/4": 264 }
};

function commonPrefix(a: string, b: string): number {
    let n = 0;
    while (n < a.length && n < b.length && a[n] === b[n]) n++;
    return n;
}

function checkGreedy(model: string, golden: Golden, files: Record<string, string>, timeout: number): void {
    const known = KNOWN_DIVERGENT[model] ?? {};
    for (const [type, path] of Object.entries(files)) {
        golden.prompts.forEach((p, i) => {
            const r = spawnSync(process.execPath, [CLI, "run", "-m", path, "-p", p, "-n", "64", "--temp", "0", "-s", "1", "-t", "2"], {
                encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout
            });
            expect(r.status, `${type} prompt ${i}: ${r.stderr}`).toBe(0);
            const want = golden.types[type]?.[i] ?? "";
            const pinned = known[`${type}/${i}`];
            if (pinned === undefined) {
                expect(r.stdout, `${model} ${type} prompt ${i}`).toBe(want);
            } else {
                expect(r.stdout, `${model} ${type} prompt ${i} now matches: remove it from KNOWN_DIVERGENT`).not.toBe(want);
                expect(commonPrefix(r.stdout, want), `${model} ${type} prompt ${i}: shared prefix`).toBeGreaterThanOrEqual(pinned);
            }
        });
    }
}

describe("ikl run greedy goldens", () => {
    const tiny = load("llama-tiny-greedy.json");
    let files: Record<string, string> = {};
    beforeAll(async () => {
        const f16 = await fixtureModel("llama-tiny");
        files = { F16: f16, Q8_0: quantizeOurs(f16, f16.replace(/-f16\.gguf$/, "-ours-Q8_0.gguf"), "Q8_0") };
    }, 1_200_000);

    it("llama-tiny F16 and Q8_0: 64-token continuations of 5 prompts vs llama-cli (equal, or a pinned known divergence)", () => {
        expect(tiny.prompts).toEqual((JSON.parse(readFileSync(join(ROOT, "fixtures", "text", "prompts.json"), "utf8")) as { prompts: string[] }).prompts);
        checkGreedy("llama-tiny", tiny, files, 60_000);
    }, 300_000);
});
