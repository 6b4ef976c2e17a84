// The ik legacy-flag table and argv rewrite: every alias, tri-state -fa/-fmoe semantics, --flag=value forms,
// underscore long names, "--" handling, and that help can show both spellings.
import { describe, expect, it } from "vitest";
import { LEGACY_ALIASES, legacyAliasFor, rewriteLegacyArgs } from "../../src/options/legacy.js";

const rw = (...argv: string[]): string[] => rewriteLegacyArgs(argv);

describe("legacy alias table", () => {
    it.each(LEGACY_ALIASES.filter((a) => a.kind === "value"))("$short → $long (value)", ({ short, long }) => {
        expect(rw(short, "7", "m.gguf")).toEqual([long, "7", "m.gguf"]);
        expect(rw(`${short}=7`)).toEqual([`${long}=7`]);
        expect(legacyAliasFor(long)).toBe(short);
    });
    it.each(LEGACY_ALIASES.filter((a) => a.kind === "flag"))("$short → $long (flag)", ({ short, long }) => {
        expect(rw(short, "m.gguf")).toEqual([long, "m.gguf"]);
    });
    it("covers the flags ik users type", () => {
        const shorts = LEGACY_ALIASES.map((a) => a.short);
        for (const s of ["-ngl", "-ot", "-mla", "-fa", "-fmoe", "-ctk", "-ctv", "-amb", "-ub", "-np", "-cnv", "-ts", "-rtr", "-ser", "-sm", "-mg", "-tb", "-sys", "-ppl-stride", "-no-fa", "-no-fmoe", "-nkvo"]) {
            expect(shorts).toContain(s);
        }
        expect(new Set(shorts).size).toBe(shorts.length);
    });
});

describe("tri-state flags", () => {
    it("bare -fa means on, before another flag or at the end", () => {
        expect(rw("-mla", "3", "-fa", "-fmoe")).toEqual(["--mla-use", "3", "--flash-attn=on", "--fused-moe"]);
        expect(rw("-fa")).toEqual(["--flash-attn=on"]);
        expect(rw("--flash-attn")).toEqual(["--flash-attn=on"]);
    });
    it("-fa consumes on/off/auto/1/0/true/false", () => {
        expect(rw("-fa", "on")).toEqual(["--flash-attn=on"]);
        expect(rw("-fa", "0", "x")).toEqual(["--flash-attn=off", "x"]);
        expect(rw("-fa", "auto")).toEqual(["--flash-attn=auto"]);
        expect(rw("-fa", "TRUE")).toEqual(["--flash-attn=on"]);
        expect(rw("--flash-attn=off")).toEqual(["--flash-attn=off"]);
    });
    it("-fa before a positional is bare", () => {
        expect(rw("-fa", "model.gguf")).toEqual(["--flash-attn=on", "model.gguf"]);
    });
    it("negative spellings", () => {
        expect(rw("-no-fa")).toEqual(["--no-flash-attn"]);
        expect(rw("-no-fmoe")).toEqual(["--no-fused-moe"]);
        expect(rw("-fmoe", "0")).toEqual(["--no-fused-moe"]);
        expect(rw("--fused-moe=off")).toEqual(["--no-fused-moe"]);
        expect(rw("-fmoe", "1", "x")).toEqual(["--fused-moe", "x"]);
    });
});

describe("argv rewrite", () => {
    it("keeps -ot repeatable and leaves values alone", () => {
        expect(rw("-ot", "a=CPU", "-ot", "b=CUDA0")).toEqual(["--override-tensor", "a=CPU", "--override-tensor", "b=CUDA0"]);
    });
    it("passes single-letter flags and --flag=value through", () => {
        expect(rw("-m", "x.gguf", "-c", "4096", "--ctx-size=8192")).toEqual(["-m", "x.gguf", "-c", "4096", "--ctx-size=8192"]);
    });
    it("normalises underscores in long names like ik", () => {
        expect(rw("--ctx_size", "10", "--n_gpu_layers=5")).toEqual(["--ctx-size", "10", "--n-gpu-layers=5"]);
    });
    it("stops at --", () => {
        expect(rw("-ngl", "1", "--", "-fa", "-ngl")).toEqual(["--n-gpu-layers", "1", "--", "-fa", "-ngl"]);
    });
});
