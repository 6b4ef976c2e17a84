import { describe, expect, it } from "vitest";
import { sizeClass } from "../../src/bench/size-class.js";

const base = { arch: "llama", nLayer: 0, nVocab: 32000, nHead: 32, nHeadKv: 8, nExpert: 0 };

describe("llama-bench size class (llm_load_hparams model type)", () => {
    it("llama by layer count, vocabulary and heads", () => {
        expect(sizeClass({ ...base, nLayer: 22 })).toBe("1B");
        expect(sizeClass({ ...base, nLayer: 32 })).toBe("7B");
        expect(sizeClass({ ...base, nLayer: 32, nVocab: 128256 })).toBe("8B");
        expect(sizeClass({ ...base, nLayer: 32, nVocab: 49152 })).toBe("3B");
        expect(sizeClass({ ...base, nLayer: 80 })).toBe("70B");
        expect(sizeClass({ ...base, nLayer: 80, nHeadKv: 32 })).toBe("65B");
        expect(sizeClass({ ...base, nLayer: 32, nExpert: 8 })).toBe("8x7B");
        expect(sizeClass({ ...base, nLayer: 22, nExpert: 8 })).toBe("?B");
        expect(sizeClass({ ...base, nLayer: 2 })).toBe("?B");
    });
    it("deepseek2 by layer count", () => {
        const ds = { ...base, arch: "deepseek2" };
        expect(sizeClass({ ...ds, nLayer: 27 })).toBe("16B");
        expect(sizeClass({ ...ds, nLayer: 61 })).toBe("671B");
        expect(sizeClass({ ...ds, nLayer: 60 })).toBe("236B");
        expect(sizeClass({ ...ds, nLayer: 4 })).toBe("?B");
        expect(sizeClass({ ...base, arch: "qwen2", nLayer: 22 })).toBe("?B");
    });
});
