// Option groups through commander (after the legacy rewrite): defaults, typed parse results, range errors,
// help showing both spellings; plus the ftype table and the colour policy.
import { Command, Help, type Option } from "commander";
import { describe, expect, it } from "vitest";
import { formatFtype, ftypeInfo } from "../../src/engine/ftypes.js";
import { parseContextOptions, withContextOptions } from "../../src/options/context.js";
import { legacyAliasFor, rewriteLegacyArgs } from "../../src/options/legacy.js";
import { parseModelOptions, withModelOptions } from "../../src/options/model.js";
import { parseSamplingOptions, withSamplingOptions } from "../../src/options/sampling.js";
import { colorLevel } from "../../src/ui/format.js";

function parse(...argv: string[]): Record<string, unknown> {
    const cmd = withSamplingOptions(withContextOptions(withModelOptions(new Command("t")))).exitOverride().configureOutput({ writeErr: () => {} });
    cmd.parse(rewriteLegacyArgs(argv), { from: "user" });
    return cmd.opts();
}

describe("option groups", () => {
    it("applies ik defaults", () => {
        const ctx = parseContextOptions(parse());
        expect(ctx).toMatchObject({ ctxSize: 0, batchSize: 2048, ubatchSize: 512, flashAttn: "on", mlaUse: 3, attentionMaxBatch: 256, fusedMoe: true });
        expect(parseSamplingOptions(parse())).toMatchObject({ temp: 0.8, topK: 40, topP: 0.95, minP: 0.05, seed: -1 });
    });
    it("parses a typical DeepSeek command line", () => {
        const raw = parse("-m", "ds.gguf", "-c", "32768", "-mla", "3", "-fa", "-fmoe", "-amb", "512", "-ngl", "99", "-ot", "exps=CPU", "-ot", "blk\\.3\\.=CUDA0",
            "-ctk", "q8_0", "-ub", "4096", "-b", "4096", "-t", "32", "-ser", "6,1", "-ts", "3,1", "-rtr");
        const model = parseModelOptions(raw);
        expect(model).toMatchObject({ model: "ds.gguf", nGpuLayers: 99, threads: 32, threadsBatch: 32, tensorSplit: [3, 1], runTimeRepack: true, mmap: false });
        expect(model.overrideTensor.map((r) => r.target)).toEqual(["CPU", "CUDA0"]);
        expect(parseContextOptions(raw)).toMatchObject({ ctxSize: 32768, cacheTypeK: "q8_0", ubatchSize: 4096, ser: { kMin: 6, threshold: 1 }, flashAttn: "on" });
    });
    it("turns features off with -no-fa / -no-fmoe / -fa off", () => {
        expect(parseContextOptions(parse("-no-fa", "-no-fmoe"))).toMatchObject({ flashAttn: "off", fusedMoe: false });
        expect(parseContextOptions(parse("-fa", "off"))).toMatchObject({ flashAttn: "off" });
    });
    it("clamps -ub to -b as ik does", () => {
        expect(parseContextOptions(parse("-b", "256", "-ub", "512")).ubatchSize).toBe(256);
    });
    it.each([["-c", "-5"], ["-t", "0"], ["-ub", "0"], ["-mla", "4"], ["-ctk", "q3_K"], ["-sm", "row"], ["--top-p", "2"], ["-fa", "x", "--flash-attn=maybe"]])(
        "rejects %s %s",
        (...argv) => {
            expect(() => parse(...argv.slice(argv.length === 3 ? 2 : 0))).toThrow();
        }
    );
    it("requires a model when asked", () => {
        expect(() => parseModelOptions(parse())).toThrow(/no model/);
    });
    it("help shows ik and long spellings", () => {
        const cmd = withContextOptions(withModelOptions(new Command("t")));
        const help = new Help();
        const terms = cmd.options.map((o: Option) => {
            const alias = o.long === undefined ? undefined : legacyAliasFor(o.long);
            return alias === undefined ? help.optionTerm(o) : `${alias}, ${help.optionTerm(o)}`;
        });
        expect(terms).toContain("-ngl, --n-gpu-layers <N>");
        expect(terms).toContain("-no-fmoe, --no-fused-moe");
        expect(cmd.helpInformation()).toContain("GPU offload:");
    });
});

describe("ftypes", () => {
    it("names LLAMA_FTYPE ids", () => {
        expect(ftypeInfo(15)).toMatchObject({ enumName: "MOSTLY_Q4_K_M", userName: "Q4_K_M", description: "Q4_K - Medium" });
        expect(ftypeInfo(0)?.userName).toBe("F32");
        expect(ftypeInfo(345)?.userName).toBe("IQ4_KS_R4");
        expect(formatFtype(7)).toBe("7 (MOSTLY_Q8_0, Q8_0)");
        expect(formatFtype(351)).toBe("351 (MOSTLY_MXFP4_R8)");
        expect(formatFtype(36)).toBe("36 (unknown to ik_llama.cpp)");
    });
});

describe("colour policy", () => {
    const base = { env: {}, argv: [], isTTY: true };
    it("honours NO_COLOR, --no-color, TERM=dumb, non-TTY and FORCE_COLOR", () => {
        expect(colorLevel(base)).toBeGreaterThan(0);
        expect(colorLevel({ ...base, env: { NO_COLOR: "1" } })).toBe(0);
        expect(colorLevel({ ...base, argv: ["--no-color"] })).toBe(0);
        expect(colorLevel({ ...base, env: { TERM: "dumb" } })).toBe(0);
        expect(colorLevel({ ...base, isTTY: false })).toBe(0);
        expect(colorLevel({ ...base, isTTY: false, env: { FORCE_COLOR: "1" } })).toBe(1);
        expect(colorLevel({ ...base, env: { FORCE_COLOR: "0" } })).toBe(0);
    });
});
