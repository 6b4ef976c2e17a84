// `ikl sweep-bench` end to end on the llama-tiny fixture: the header line and table columns are llama-sweep-bench's
// (captured from ik_llama.cpp 8337e4cd, and compared live when its binary is present), JSONL rows carry the
// reference's keys in its order, and --plot writes a PNG and an SVG with both panels and every overlaid run.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixtureModel, ikl } from "../helpers/paths.js";

const REF = process.env["IKL_REF_SWEEP"] ?? "/work/ref/ik/build/bin/llama-sweep-bench";
// llama-sweep-bench -m llama-tiny-f16.gguf -c 256 -ub 64 -t 2 (its log on stderr)
const REF_HEADER = [
    "main: n_kv_max = 256, n_batch = 2048, n_ubatch = 64, flash_attn = 1, n_gpu_layers = -1, n_threads = 2, n_threads_batch = 2",
    "",
    "|    PP |     TG |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |",
    "|-------|--------|--------|----------|----------|----------|----------|"
];
const ROW = /^\| +64 \| +16 \| +(\d+) \| +\d+\.\d{3} \| +\d+\.\d{2} \| +\d+\.\d{3} \| +\d+\.\d{2} \|$/;
const KEYS = ["n_kv_max", "n_batch", "n_ubatch", "flash_attn", "n_gpu_layers", "n_threads", "n_threads_batch", "pp", "tg", "n_kv", "t_pp", "speed_pp", "t_tg", "speed_tg"];

describe("ikl sweep-bench", () => {
    let model = "";
    let dir = "";
    beforeAll(async () => {
        model = await fixtureModel("llama-tiny");
        dir = mkdtempSync(join(tmpdir(), "ikl-sweep-"));
    }, 120_000);
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("prints the reference's header and table on stdout", () => {
        const r = ikl(["sweep-bench", "-m", model, "-c", "256", "-ub", "64", "-t", "2"]);
        expect(r.code).toBe(0);
        const lines = r.stdout.split("\n");
        expect(lines.slice(1, 5)).toEqual(REF_HEADER);
        const rows = lines.slice(5).filter((l) => l !== "");
        expect(rows.map((l) => Number(ROW.exec(l)?.[1]))).toEqual([0, 64, 128, 192]);
        expect(r.stderr).toMatch(/sweep-bench: 4 rows, Rust compute [\d.]+ s of [\d.]+ s wall/);
    }, 120_000);

    it("places tensors with -ot like ikl run (a GPU layer count without CUDA is refused, not ignored)", () => {
        const r = ikl(["sweep-bench", "-m", model, "-c", "128", "-ub", "64", "-t", "2", "-ngl", "0", "-ot", "ffn=CPU", "-o", "jsonl"]);
        expect(r.code).toBe(0);
        const ngl = r.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { n_gpu_layers: number }).n_gpu_layers);
        expect(ngl.length).toBeGreaterThan(1);
        expect(ngl.every((n) => n === 0)).toBe(true);
        const gpu = ikl(["sweep-bench", "-m", model, "-c", "128", "-ub", "64", "-ngl", "4"]);
        if (!gpu.stdout.includes("|")) expect(gpu.stderr).toMatch(/-ngl 4 places tensors on CUDA, but CUDA is not available/);
    }, 120_000);

    it.skipIf(!existsSync(REF))("has the same header and table shape as llama-sweep-bench", () => {
        const ref = spawnSync(REF, ["-m", model, "-c", "256", "-ub", "64", "-t", "2"], { encoding: "utf8" });
        const refLines = ref.stderr.split("\n");
        const at = refLines.findIndex((l) => l.startsWith("main: n_kv_max"));
        expect(refLines.slice(at, at + 4)).toEqual(REF_HEADER);
        expect(refLines.slice(at + 4, at + 8).every((l) => ROW.test(l))).toBe(true);
    }, 120_000);

    it("--sweep-memory adds the reference's RSS HWM and VRAM delta columns (table and JSONL)", () => {
        const r = ikl(["sweep-bench", "-m", model, "-c", "128", "-ub", "64", "-t", "2", "--sweep-memory"]);
        expect(r.code).toBe(0);
        const lines = r.stdout.split("\n");
        expect(lines[3]).toBe("|    PP |     TG |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |    RSS HWM | VRAM delta |");
        expect(lines[4]).toBe("|-------|--------|--------|----------|----------|----------|----------|------------|------------|");
        const rss = lines.slice(5).filter((l) => l !== "").map((l) => /\| +(\d+\.\d) \| +n\/a \|$/.exec(l)?.[1]);
        expect(rss).toHaveLength(4); // -c 128 is padded to 256 with flash attention: N_KV 0, 64, 128, 192
        // the engine's model and cache live in this process: the high-water mark is real and never falls
        expect(Number(rss[0])).toBeGreaterThan(20);
        for (let i = 1; i < rss.length; i++) expect(Number(rss[i])).toBeGreaterThanOrEqual(Number(rss[i - 1]));
        const j = ikl(["sweep-bench", "-m", model, "-c", "128", "-ub", "64", "-t", "2", "--sweep-memory", "-o", "jsonl"]);
        const row = JSON.parse(j.stdout.trim().split("\n")[0]!) as Record<string, unknown>;
        expect(Object.keys(row).slice(-2)).toEqual(["rss_hwm_mib", "vram_delta_mib"]);
        expect(row["vram_delta_mib"]).toBeNull();
        expect(j.stdout).toMatch(/"rss_hwm_mib": \d+\.\d{3}, "vram_delta_mib": null \}/);
    }, 120_000);

    it("writes JSONL and plots PNG and SVG overlays", () => {
        const r = ikl(["sweep-bench", "-m", model, "-c", "256", "-ub", "64", "-t", "2", "-n", "4", "-o", "jsonl", "-q"]);
        expect(r.code).toBe(0);
        const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, number>);
        expect(rows).toHaveLength(4);
        expect(Object.keys(rows[0]!)).toEqual(KEYS);
        expect(rows.every((o) => o["tg"] === 4 && o["speed_pp"]! > 0 && o["speed_tg"]! > 0)).toBe(true);
        const arr = JSON.parse(ikl(["sweep-bench", "-m", model, "-c", "256", "-ub", "64", "-t", "2", "-n", "4", "--json", "-q"]).stdout) as Record<string, number>[];
        expect(arr.map((o) => [Object.keys(o), o["n_kv"]])).toEqual(rows.map((o) => [KEYS, o["n_kv"]]));
        const prev = join(dir, "prev.jsonl");
        writeFileSync(prev, r.stdout);
        const png = join(dir, "cmp.png");
        const svg = join(dir, "cmp.svg");
        for (const file of [png, svg]) {
            const p = ikl(["sweep-bench", "-m", model, "-c", "128", "-ub", "64", "-t", "2", "-q", "--plot", file, "--label", "now", "--compare", `before=${prev}`]);
            expect(p.code).toBe(0);
        }
        const b = readFileSync(png);
        expect(b.subarray(1, 4).toString("latin1")).toBe("PNG");
        expect([b.readUInt32BE(16), b.readUInt32BE(20)]).toEqual([1000, 460]);
        expect(b.length).toBeGreaterThan(10_000);
        const s = readFileSync(svg, "utf8");
        expect(s).toMatch(/^<svg[^>]* width="1000" height="460"/);
        expect(s).toContain("Prompt processing (PP)");
        expect(s).toContain("Token generation (TG)");
        expect(s).toContain(">now<");
        expect(s).toContain(">before<");
        expect((s.match(/<polyline/g) ?? []).length).toBe(4); // 2 runs × 2 panels
    }, 120_000);
});
