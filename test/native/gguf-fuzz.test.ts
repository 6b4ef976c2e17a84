// Fuzzing through the addon and the CLI: mutated and truncated GGUF files (seeded, thousands of cases, bounded
// time) must each load or fail with a coded error — in-process (a crash would kill this worker) and as a
// process (exit code 1, one-line `error:` message, no signal, no hang).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addon, ikl, python } from "../helpers/paths.js";

/** mulberry32: tiny seeded PRNG. */
function rng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

function mutate(seed: Buffer, headerEnd: number, r: () => number, round: number): Buffer {
    const b = Buffer.from(seed);
    const at = (n: number): number => Math.floor(r() * n);
    switch (round % 5) {
        case 0:
            for (let k = 0; k < 1 + at(8); k++) b[at(headerEnd)]! ^= 1 << at(8);
            return b;
        case 1: {
            const i = 8 + at(headerEnd - 16);
            const vals = [0xffffffffffffffffn, 1n << 62n, 1n << 40n, BigInt(b.length), 0n];
            b.writeBigUInt64LE(vals[at(vals.length)]!, i);
            return b;
        }
        case 2:
            return b.subarray(0, at(b.length));
        case 3: {
            const i = at(headerEnd - 4);
            b.writeUInt32LE([9, 13, 99, 0xffffffff, 142, 400][at(6)]!, i);
            return b;
        }
        default: {
            const i = at(headerEnd);
            return Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + at(32))]);
        }
    }
}

const CODES = new Set(["IKL_E_GGUF", "IKL_E_INVALID", "IKL_E_IO"]);

describe("GGUF fuzzing", () => {
    let dir = "";
    let seed = Buffer.alloc(0);
    let headerEnd = 0;

    beforeAll(async () => {
        dir = mkdtempSync(join(tmpdir(), "ikl-fuzz-"));
        python("make_fuzz_seed.py", [join(dir, "seed.gguf")]);
        seed = readFileSync(join(dir, "seed.gguf"));
        const info = await addon().inspectGguf(join(dir, "seed.gguf"), 4);
        headerEnd = info.files[0].dataOffset;
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("the addon loads or rejects with a code for 3000 mutated files", async () => {
        const r = rng(42);
        const a = addon();
        let ok = 0;
        let failed = 0;
        const t0 = Date.now();
        for (let round = 0; round < 3000; round++) {
            const p = join(dir, `case${round % 8}.gguf`);
            writeFileSync(p, mutate(seed, headerEnd, r, round));
            try {
                const info = await a.inspectGguf(p, 4);
                for (const t of info.tensors) expect(t.offset + t.bytes + info.files[t.file].dataOffset).toBeLessThanOrEqual(info.files[t.file].size);
                ok++;
            } catch (e) {
                const err = e as { code?: string; message?: string };
                expect(CODES.has(err.code ?? ""), `round ${round}: ${err.code} ${err.message}`).toBe(true);
                expect(err.message ?? "").not.toContain("\n");
                failed++;
            }
        }
        expect(ok + failed).toBe(3000);
        expect(failed).toBeGreaterThan(1000);
        expect(Date.now() - t0).toBeLessThan(60_000);
    }, 90_000);

    it("the CLI exits 1 with one error line for mutated files", () => {
        const r = rng(7);
        for (let round = 0; round < 40; round++) {
            const p = join(dir, `cli${round}.gguf`);
            writeFileSync(p, mutate(seed, headerEnd, r, round));
            const res = ikl(["gguf-dump", p, "--json"]);
            expect(res.signal, `round ${round}`).toBeNull();
            if (res.code === 0) {
                expect(() => JSON.parse(res.stdout)).not.toThrow();
            } else {
                expect(res.code, `round ${round}: ${res.stderr}`).toBe(1);
                const lines = res.stderr.trim().split("\n");
                expect(lines.length, res.stderr).toBe(1);
                expect(lines[0]).toMatch(/^error: /);
            }
        }
    }, 120_000);
});
