// `ikl quantize` end to end on the fixtures: byte-identical files where our quantizer is the reference's
// (fixtures/golden/llama-tiny-quantize.json holds the sha256 of llama-quantize's output), the reference's
// llama-perplexity numbers on files we wrote vs `ikl perplexity` (≤ 0.3 %), the DeepSeek --custom-q recipe on
// ds-tiny, --imatrix (legacy .dat), error cases (exit codes, one line) and Ctrl-C leaving no file at OUT.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dump } from "../helpers/gguf-py.js";
import { CLI, fixtureModel, ROOT } from "../helpers/paths.js";

interface Golden {
    exact: { pure: Record<string, string>; pure_imatrix: Record<string, string> };
    dry_run_quant_size_mib: Record<string, number>;
    ppl: Record<string, { sha256: string; ref_final: number }>;
}
const GOLDEN = JSON.parse(readFileSync(join(ROOT, "fixtures", "golden", "llama-tiny-quantize.json"), "utf8")) as Golden;
const TEXT = join(ROOT, "fixtures", "text", "declaration.txt");
const DS_RULES = "attn=q8_0,shexp=q8_0,ffn_down_exps=iq4_k,ffn_(up|gate)_exps=iq3_k";

let dir = "";
let tiny = "";

function run(args: string[], cwd = dir): { code: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: 240_000, maxBuffer: 64 << 20 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const sha = (p: string): string => createHash("sha256").update(readFileSync(p)).digest("hex");

/** The imatrix of the golden (same formula as its generator): entry k, column j → ((j·131 + k·17) mod 29 + 1) / 2, ncall 4. */
function writeTinyImatrix(path: string, rows: (k: number) => number = () => 1): void {
    const names: [string, number][] = [];
    for (let i = 0; i < 4; i++) {
        for (const [t, n] of [["attn_q", 256], ["attn_k", 256], ["attn_v", 256], ["attn_output", 256], ["ffn_gate", 256], ["ffn_up", 256], ["ffn_down", 768]] as const) names.push([`blk.${i}.${t}.weight`, n]);
    }
    names.push(["output.weight", 256]);
    const parts: Buffer[] = [];
    const i32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32LE(v); return b; };
    parts.push(i32(names.length));
    names.forEach(([name, n], k) => {
        const len = n * rows(k);
        const v = new Float32Array(len);
        for (let j = 0; j < len; j++) v[j] = (((j * 131 + k * 17) % 29) + 1) * 0.5;
        parts.push(i32(name.length), Buffer.from(name), i32(4), i32(len), Buffer.from(v.buffer));
    });
    parts.push(i32(7), i32(8), Buffer.from("ikl-test"));
    writeFileSync(path, Buffer.concat(parts));
}

function finalPpl(stdout: string): number {
    const m = /Final estimate: PPL over \d+ chunks for n_ctx=\d+ = ([\d.]+)/.exec(stdout);
    if (m === null) throw new Error(`no final estimate in: ${stdout.slice(-300)}`);
    return Number(m[1]);
}

beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "ikl-quantize-"));
    tiny = await fixtureModel("llama-tiny");
    writeTinyImatrix(join(dir, "tiny.imatrix.dat"));
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The golden records more exact types (Q4_1, IQ4_XS_R8, BF16, IQ4_NL+imatrix) than the normal run re-checks.
const EXACT = ["Q8_0", "IQ4_NL", "Q8_0_R8"];

describe("byte-identical to llama-quantize where the quantizer is reference-exact", () => {
    it.each(EXACT)("--pure %s", (type) => {
        const out = join(dir, `pure-${type}.gguf`);
        const r = run(["quantize", "--pure", tiny, out, type, "2"]);
        expect(r.code, r.stderr).toBe(0);
        expect(sha(out)).toBe(GOLDEN.exact.pure[type]);
        rmSync(out);
    }, 120_000);
});

describe("files we write: byte-identical or the reference's perplexity", () => {
    it("--pure --imatrix IQ4_XS: the reference's bytes (imatrix metadata included), its PPL in ikl", () => {
        const out = join(dir, "im-IQ4_XS.gguf");
        const r = run(["quantize", "--pure", "--imatrix", "tiny.imatrix.dat", tiny, out, "IQ4_XS", "2"]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toContain("loaded 29 importance matrix entries from tiny.imatrix.dat computed on 7 chunks");
        // differs from the plain --pure IQ4_XS file: the importance weights reach the quantizer
        expect(GOLDEN.exact.pure_imatrix["IQ4_XS"]).not.toBe(GOLDEN.exact.pure["IQ4_XS"]);
        expect(sha(out)).toBe(GOLDEN.exact.pure_imatrix["IQ4_XS"]);
        expect(dump(out).metadata.find((m) => m.key === "quantize.imatrix.entries_count")?.value).toBe(29);
        const p = run(["perplexity", "-m", out, "-f", TEXT, "-c", "128", "-b", "128", "-t", "2", "-q"]);
        expect(p.code, p.stderr).toBe(0);
        expect(Math.abs(finalPpl(p.stdout) / (GOLDEN.ppl["IQ4_XS+imatrix"]?.ref_final ?? NaN) - 1)).toBeLessThan(0.003);
        rmSync(out);
    }, 240_000);

    it("Q4_K_M (mixing policy, K-quants): ikl perplexity within 0.3 % of llama-perplexity on the same file", () => {
        const g = GOLDEN.ppl["Q4_K_M"] as { sha256: string; ref_final: number };
        const out = join(dir, "ppl-Q4_K_M.gguf");
        const q = run(["quantize", "-q", tiny, out, "Q4_K_M", "2"]);
        expect(q.code, q.stderr).toBe(0);
        expect(sha(out), "the quantizer output changed: re-measure llama-perplexity on it and update fixtures/golden/llama-tiny-quantize.json").toBe(g.sha256);
        const p = run(["perplexity", "-m", out, "-f", TEXT, "-c", "128", "-b", "128", "-t", "2", "-q"]);
        expect(p.code, p.stderr).toBe(0);
        expect(Math.abs(finalPpl(p.stdout) / g.ref_final - 1)).toBeLessThan(0.003);
        rmSync(out);
    }, 240_000);
});

describe("--dry-run", () => {
    it.each(Object.keys(GOLDEN.dry_run_quant_size_mib))("%s: total size equals the reference's dry-run, plan as JSON", (type) => {
        const r = run(["quantize", "--dry-run", "--json", tiny, join(dir, "never.gguf"), type]);
        expect(r.code, r.stderr).toBe(0);
        const doc = JSON.parse(r.stdout) as { schema: number; totalBytes: number; bpw: number; tensors: { name: string; bytes: number }[] };
        expect(doc.schema).toBe(1);
        expect((doc.totalBytes / 1048576).toFixed(2)).toBe(GOLDEN.dry_run_quant_size_mib[type]?.toFixed(2));
        expect(doc.tensors.reduce((a, t) => a + t.bytes, 0)).toBe(doc.totalBytes);
        expect(existsSync(join(dir, "never.gguf"))).toBe(false);
    });

    it("text plan: one row per tensor with old → new type and the deciding rule", () => {
        const r = run(["quantize", "--dry-run", tiny, join(dir, "never.gguf"), "Q4_K_M"]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/blk\.2\.attn_v\.weight +\[256, 128, 1, 1\] +f16 → q6_K +\d+ +ftype Q4_K_M: attn_v #2 \(use_more_bits\)/);
        expect(r.stdout).toMatch(/Q4_K_M: 30 of 39 tensors quantized; 37\.26 MiB -> 12\.61 MiB, [\d.]+ bpw/);
    });
});

describe("DeepSeek --custom-q recipe on ds-tiny", () => {
    it("attention and shared experts q8_0, ffn_down_exps iq4_k, ffn_(up|gate)_exps iq3_k; output runs", async () => {
        const ds = await fixtureModel("ds-tiny");
        const out = join(dir, "ds-custom.gguf");
        const plan = run(["quantize", "--dry-run", "--json", "--custom-q", DS_RULES, ds, out, "IQ4_K"]);
        expect(plan.code, plan.stderr).toBe(0);
        const planned = (JSON.parse(plan.stdout) as { tensors: { name: string; to: string; bytes: number }[] }).tensors;
        const r = run(["quantize", "--custom-q", "attn=q8_0,shexp=q8_0", "--custom-q", "ffn_down_exps=iq4_k,ffn_(up|gate)_exps=iq3_k", ds, out, "IQ4_K", "2"]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toContain("Adding custom rule ffn_(up|gate)_exps -> iq3_k");
        const written = dump(out).tensors;
        expect(written.map((t) => [t.name, t.type, t.bytes])).toEqual(planned.map((t) => [t.name, t.to, t.bytes]));
        const byName = new Map(written.map((t) => [t.name, t]));
        for (const t of written) {
            const cols = t.shape[0] ?? 0;
            if (t.shape.length < 2 || t.name.includes("norm") || t.name.includes("ffn_gate_inp")) continue;
            // the regexes, independently: first match wins; 256-column rows keep the type, others take the fallback
            const want = /attn|shexp/.test(t.name) ? "q8_0" : /ffn_down_exps/.test(t.name) ? (cols % 256 === 0 ? "iq4_k" : "q5_0")
                : /ffn_(up|gate)_exps/.test(t.name) ? (cols % 256 === 0 ? "iq3_k" : "iq4_nl") : undefined;
            if (want !== undefined) expect(byName.get(t.name)?.type, t.name).toBe(want);
        }
        const p = run(["perplexity", "-m", out, "-f", TEXT, "-c", "64", "-b", "64", "--chunks", "2", "-t", "2", "-q"]);
        expect(p.code, p.stderr).toBe(0);
        expect(Number.isFinite(finalPpl(p.stdout))).toBe(true);
        rmSync(out);
    }, 240_000);
});

describe("errors: one line, exit code", () => {
    const oneLine = (s: string): void => expect(s.trim().split("\n")[0]).toMatch(/^error: /);

    it("unknown type → 2 and the valid names", () => {
        const r = run(["quantize", tiny, join(dir, "x.gguf"), "Q4_X"]);
        expect(r.code).toBe(2);
        oneLine(r.stderr);
        expect(r.stderr).toContain("unknown quantization type 'Q4_X'");
        expect(r.stderr).toContain("IQ4_KS");
    });

    it("invalid regex → 2 naming the rule", () => {
        const r = run(["quantize", "--dry-run", "--custom-q", "attn=q8_0,ffn_(up=iq3_k", tiny, join(dir, "x.gguf"), "IQ4_K"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/error: invalid regular expression in --custom-q rule #2 'ffn_\(up=iq3_k'/);
    });

    it("unknown type in a rule → 2", () => {
        const r = run(["quantize", "--dry-run", "--custom-q", "attn=q9_0", tiny, join(dir, "x.gguf"), "IQ4_K"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("unknown quantization type 'q9_0'");
    });

    it("requantizing without --allow-requantize → refused; with it → written", () => {
        const q8 = join(dir, "q8.gguf");
        expect(run(["quantize", "-q", "--pure", tiny, q8, "Q8_0", "2"]).code).toBe(0);
        const r = run(["quantize", q8, join(dir, "re.gguf"), "Q4_0"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/error: requantizing from type q8_0 is disabled/);
        expect(existsSync(join(dir, "re.gguf"))).toBe(false);
        const ok = run(["quantize", "-q", "--allow-requantize", q8, join(dir, "re.gguf"), "Q4_0", "2"]);
        expect(ok.code, ok.stderr).toBe(0);
        expect(dump(join(dir, "re.gguf")).tensors.find((t) => t.name === "blk.0.attn_q.weight")?.type).toBe("q4_0");
    }, 120_000);

    it("imatrix of the wrong size → 1; a truncated imatrix → 1; another model's imatrix → notices", () => {
        writeTinyImatrix(join(dir, "wrong.dat"), (k) => (k === 3 ? 2 : 1));
        const r = run(["quantize", "--imatrix", "wrong.dat", tiny, join(dir, "x.gguf"), "IQ4_XS"]);
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/error: imatrix size 512 is different from tensor size 256 for blk\.0\.attn_output\.weight/);
        writeFileSync(join(dir, "short.dat"), readFileSync(join(dir, "tiny.imatrix.dat")).subarray(0, 1000));
        const t = run(["quantize", "--imatrix", "short.dat", tiny, join(dir, "x.gguf"), "IQ4_XS"]);
        expect(t.code).toBe(1);
        expect(t.stderr).toMatch(/error: imatrix short\.dat: truncated/);
        const d = run(["quantize", "--dry-run", "--include-weights", "ffn_down", "--imatrix", "tiny.imatrix.dat", tiny, join(dir, "x.gguf"), "IQ4_XS"]);
        expect(d.code, d.stderr).toBe(0);
        expect(d.stderr).toContain("have 4 importance matrix entries");
        expect(d.stderr).toContain("did not find weights for blk.0.attn_q.weight");
        expect(existsSync(join(dir, "x.gguf"))).toBe(false);
    });

    it("missing input → 1, one line; very-low-bit recipe without imatrix → 2", () => {
        const r = run(["quantize", join(dir, "nope.gguf"), join(dir, "x.gguf"), "Q4_0"]);
        expect(r.code).toBe(1);
        oneLine(r.stderr);
        const v = run(["quantize", tiny, join(dir, "x.gguf"), "IQ2_XXS"]);
        expect(v.code).toBe(2);
        expect(v.stderr).toContain("without an importance matrix");
    });
});

describe("Ctrl-C", () => {
    it("stops the job, exits 130 and leaves no file at OUT (nor a temporary one)", async () => {
        const sub = mkdtempSync(join(dir, "sigint-"));
        const out = join(sub, "out.gguf");
        const child = spawn(process.execPath, [CLI, "quantize", tiny, out, "IQ4_KT", "1"], { env: { ...process.env, NO_COLOR: "1" } });
        let stderr = "";
        const code = await new Promise<number | null>((resolve) => {
            let sent = false;
            child.stderr.on("data", (d: Buffer) => {
                stderr += d.toString();
                if (!sent && stderr.includes("main: quantizing")) {
                    sent = true;
                    setTimeout(() => child.kill("SIGINT"), 300);
                }
            });
            child.on("exit", (c) => resolve(c));
        });
        expect(code, stderr).toBe(130);
        expect(stderr).toContain("was not written");
        expect(readdirSync(sub)).toEqual([]);
    }, 120_000);
});
