// Opt-in (IKL_MODELS_DIR with <model>-f16.gguf): files written by `ikl quantize` for the larger fixtures, their
// perplexity in ikl vs the reference's llama-perplexity on the same file (fixtures/golden/quantize-models-ppl.json,
// measured with -c 128 -b 128 --chunks 4 on fixtures/text/declaration.txt). Slow: minutes per type.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { CLI, ROOT } from "../helpers/paths.js";

const ikl = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", maxBuffer: 64 << 20 });

interface Row { model: string; type: string; ours_ppl_ref: string; ours_ppl_ikl: string }
const GOLDEN = JSON.parse(readFileSync(join(ROOT, "fixtures", "golden", "quantize-models-ppl.json"), "utf8")) as { rows: Row[]; tolerance: number };
const DIR = process.env["IKL_MODELS_DIR"];
const TEXT = join(ROOT, "fixtures", "text", "declaration.txt");

describe.skipIf(DIR === undefined)("ikl quantize on llama-1b / ds-mini: PPL of our file, ikl vs reference", () => {
    const rows = GOLDEN.rows.filter((r) => r.ours_ppl_ref !== "" && DIR !== undefined && existsSync(join(DIR, `${r.model}-f16.gguf`)));
    it.each(rows.map((r) => [`${r.model} ${r.type}`, r] as const))("%s", (_label, r) => {
        const dir = mkdtempSync(join(tmpdir(), "ikl-qm-"));
        try {
            const out = join(dir, "q.gguf");
            const q = ikl(["quantize", "-q", join(DIR ?? "", `${r.model}-f16.gguf`), out, r.type, "2"]);
            expect(q.status, q.stderr).toBe(0);
            const p = ikl(["perplexity", "-m", out, "-f", TEXT, "-c", "128", "-b", "128", "--chunks", "4", "-t", "2", "-q"]);
            expect(p.status, p.stderr).toBe(0);
            const m = /= ([\d.]+) \+\/-/.exec(p.stdout);
            expect(Math.abs(Number(m?.[1]) / Number(r.ours_ppl_ref) - 1)).toBeLessThan(GOLDEN.tolerance);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    }, 3_600_000);
});
