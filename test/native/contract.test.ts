// The native contract: the loaded addon exports exactly what src/engine/native.ts declares, reports its ABI and
// system info, and turns failures into JS errors with stable codes (never a crash of the Node process).
import { describe, expect, it } from "vitest";
import { EXPECTED_ABI, NATIVE_EXPORTS } from "../../src/engine/native.js";
import { addon } from "../helpers/paths.js";

describe("native contract", () => {
    const a = addon();

    it("exports exactly the declared functions", () => {
        expect(Object.keys(a).sort()).toEqual([...NATIVE_EXPORTS].sort());
        for (const name of NATIVE_EXPORTS) expect(typeof a[name]).toBe("function");
    });

    it("matches the expected ABI", () => {
        expect(a.abiVersion()).toBe(EXPECTED_ABI);
    });

    it("describes the system", () => {
        const s = a.systemInfo();
        expect(s.abiVersion).toBe(EXPECTED_ABI);
        expect(["scalar", "avx2", "avx512", "neon"]).toContain(s.cpuTier);
        expect(s.threads).toBeGreaterThan(0);
        expect(typeof s.cuda.available).toBe("boolean");
        expect(Array.isArray(s.cuda.devices)).toBe(true);
    });

    it("lists the type registry with ik_llama.cpp ids and sizes", () => {
        const q = a.qtypes() as { id: number; name: string; block: number; typeSize: number; rowMeta: number; interleave: number }[];
        const byName = new Map(q.map((t) => [t.name, t]));
        expect(byName.get("q4_K")).toMatchObject({ id: 12, block: 256, typeSize: 144, rowMeta: 0 });
        expect(byName.get("iq4_ks")).toMatchObject({ id: 144, block: 256, typeSize: 136, rowMeta: 4 });
        expect(byName.get("iq4_k_r4")).toMatchObject({ id: 339, interleave: 4 });
        expect(byName.get("q8_k_r8")).toMatchObject({ id: 399, typeSize: 258, interleave: 8 });
        expect(new Set(q.map((t) => t.id)).size).toBe(q.length);
    });

    it("rejects with coded errors", async () => {
        await expect(a.inspectGguf("/nonexistent/model.gguf", 8)).rejects.toMatchObject({ code: "IKL_E_IO" });
        await expect(a.inspectGguf("/etc/hostname", 8)).rejects.toMatchObject({ code: "IKL_E_GGUF" });
        await expect(a.inspectGguf("/", 8)).rejects.toMatchObject({ code: "IKL_E_INVALID" });
        await expect(a.makeFixture("no-such-model", "/tmp/x.gguf", { ftype: "f16", mlaForm: "kvb", seed: 1, vocabDir: "/tmp" }))
            .rejects.toMatchObject({ code: "IKL_E_INVALID" });
    });
});
