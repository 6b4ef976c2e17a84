// `ikl bench` end to end on the llama-tiny fixture: the markdown header and column order are llama-bench's for the
// same options (captured from ik_llama.cpp 8337e4cd: model, size and params cells included), csv/jsonl carry the
// reference's fields, and every run measures afresh (non-zero stddevs that differ between runs).
import { spawn } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { CLI, fixtureModel, ikl } from "../helpers/paths.js";

// llama-bench -m llama-tiny-f16.gguf -p 64 -n 0 -r 2 -t 1,2 -fa 0,1 -ctk f16,q8_0
const REF_HEAD = [
    "| model                          |       size |     params | backend    | threads | type_k | fa |          test |              t/s |",
    "| ------------------------------ | ---------: | ---------: | ---------- | ------: | -----: | -: | ------------: | ---------------: |"
];
const REF_ROW_PREFIX = "| llama ?B F16                   |  37.26 MiB |    19.53 M | CPU        |";
const ROW = /^\| .{30} \| +[\d.]+ MiB \| +[\d.]+ M \| CPU {8}\| +(\d) \| +(\w+) \| +([01]) \| +(\w+) \| +(\d+\.\d{2}) ± (\d+\.\d{2}) \|$/;

describe("ikl bench", () => {
    let model = "";
    beforeAll(async () => {
        model = await fixtureModel("llama-tiny");
    }, 120_000);

    it("prints llama-bench's header, column order and cross-product order", () => {
        const r = ikl(["bench", "-m", model, "-p", "16", "-n", "0", "-r", "2", "-t", "1,2", "-fa", "0,1", "-ctk", "f16,q8_0"]);
        expect(r.code).toBe(0);
        const lines = r.stdout.split("\n");
        expect(lines.slice(0, 2)).toEqual(REF_HEAD);
        const rows = lines.slice(2, 10);
        expect(rows.every((l) => l.startsWith(REF_ROW_PREFIX))).toBe(true);
        // get_cmd_params_instances order: type_k, then fa, then threads innermost
        expect(rows.map((l) => ROW.exec(l)!.slice(1, 5).join(" "))).toEqual([
            "1 f16 0 pp16", "2 f16 0 pp16", "1 f16 1 pp16", "2 f16 1 pp16", "1 q8_0 0 pp16", "2 q8_0 0 pp16", "1 q8_0 1 pp16", "2 q8_0 1 pp16"
        ]);
        expect(lines.slice(10)).toEqual(["", expect.stringMatching(/^build: \S+ \(\d+\)$/), ""]);
    }, 120_000);

    it("labels pg/gp tests and measures afresh on every run", () => {
        const args = ["bench", "-m", model, "-p", "16", "-n", "4", "-pg", "8,2", "-gp", "8,2", "-r", "3", "-t", "1", "-o", "jsonl", "--wall"];
        const a = ikl(args);
        const b = ikl(args);
        expect(a.code).toBe(0);
        const parse = (s: string) => s.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
        const ra = parse(a.stdout);
        const rb = parse(b.stdout);
        expect(ra.map((o) => o["test"])).toEqual(["pp16", "tg4", "pp8+tg2", "tg2@pp8"]);
        expect(Object.keys(ra[0]!).slice(0, 3)).toEqual(["build_commit", "build_number", "cuda"]);
        for (const [x, y] of ra.map((o, i) => [o, rb[i]!] as const)) {
            expect(x["stddev_ts"]).toBeGreaterThan(0);
            expect(x["stddev_ts"]).not.toBe(y["stddev_ts"]);
            expect((x["samples_ns"] as number[]).length).toBe(3);
        }
        expect(a.stderr).toMatch(/bench: tg2@pp8 t=1: [\d.]+ ± [\d.]+ t\/s Rust compute, [\d.]+ ± [\d.]+ t\/s wall/);
        expect((ra[0]!["samples_wall_ns"] as number[]).length).toBe(3);
        const md = ikl(["bench", "-m", model, "-p", "16", "-n", "0", "-r", "2", "-t", "1", "--wall"]).stdout.split("\n");
        expect(md[0]).toMatch(/\| +test \| +t\/s \| +wall t\/s \|$/);
        const [compute, wall] = / (\d+\.\d+) ± \d+\.\d+ \| +(\d+\.\d+) ± \d+\.\d+ \|$/.exec(md[2]!)!.slice(1).map(Number);
        expect(wall).toBeLessThanOrEqual(compute! * 1.0001); // end-to-end includes the compute
    }, 120_000);

    it("writes the csv header and refuses engine features it lacks", () => {
        const r = ikl(["bench", "-m", model, "-p", "8", "-n", "0", "-r", "1", "-t", "1", "-o", "csv"]);
        const j = JSON.parse(ikl(["bench", "-m", model, "-p", "8", "-n", "0", "-r", "1", "-t", "1", "--json"]).stdout) as { test: string }[];
        expect(j.map((o) => o.test)).toEqual(["pp8"]);
        expect(r.stdout.split("\n")[0]).toMatch(/^build_commit,build_number,cuda,.*,avg_ns,stddev_ns,avg_ts,stddev_ts,test$/);
        const nkvo = ikl(["bench", "-m", model, "-nkvo", "1"]);
        expect([nkvo.code, nkvo.stderr.trim()]).toEqual([2, "error: unknown option '--no-kv-offload'"]);
    }, 60_000);

    it("takes -ngl/-sm/-mg/-ts lists and -ot/--n-cpu-moe rules like llama-bench (ot column, csv override_tensor)", () => {
        const base = ["bench", "-m", model, "-p", "8", "-n", "0", "-r", "1", "-t", "1"];
        const md = ikl([...base, "-ngl", "0,99", "-ot", "ffn_(up|down)=CPU", "--print-overrides", "1"]);
        expect(md.code).toBe(0);
        const lines = md.stdout.split("\n");
        expect(lines[0]).toMatch(/\| threads \| ot {14}\| +test \|/);
        // without CUDA the layer counts are ignored (like a CPU build) and said so; both instances still run
        expect(lines.filter((l) => l.includes("| ffn_(up|down)=CPU |")).length).toBe(2);
        if (!md.stdout.includes("| CUDA ")) expect(md.stderr).toMatch(/CUDA is not available .*-ngl\/-ts are ignored/);
        const csv = ikl([...base, "-o", "csv", "--n-cpu-moe", "1", "-ot", "output=CPU", "-ts", "3/1", "-sm", "none", "-mg", "0"]);
        expect(csv.code).toBe(0);
        const [head, row] = csv.stdout.trim().split("\n").map((l) => l.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/));
        const field = (k: string): string => row![head!.indexOf(k)]!.replace(/^"|"$/g, "");
        expect(field("override_tensor")).toBe("output=CPU,blk\\.0\\.(ffn_(up|down|gate)_exps\\.weight)=CPU");
        expect([field("tensor_split"), field("split_mode"), field("n_gpu_layers")]).toEqual(["3.00/1.00", "none", "999"]);
        // a rule that names a GPU cannot be ignored
        const gpu = ikl([...base, "-ot", "ffn=CUDA0"]);
        if (!md.stdout.includes("| CUDA ")) expect([gpu.code, gpu.stderr]).toEqual([expect.any(Number), expect.stringMatching(/places tensors on CUDA, but CUDA is not available/)]);
        expect(ikl([...base, "-sm", "graph"]).stderr).toMatch(/'graph' is not a split mode this build runs/);
    }, 120_000);

    it("Ctrl-C stops the running test, prints the tests completed so far and exits 130", async () => {
        const child = spawn(process.execPath, [CLI, "bench", "-m", model, "-p", "16", "-n", "64", "-r", "300", "-t", "1", "-o", "jsonl"], { env: { ...process.env, NO_COLOR: "1" } });
        let out = "";
        let interrupted = false;
        child.stdout.on("data", (d: Buffer) => {
            out += d.toString();
            // the pp16 result is out (jsonl prints each test when it ends): interrupt the long tg64 test
            if (!interrupted && out.includes("\n")) {
                interrupted = true;
                child.kill("SIGINT");
            }
        });
        const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
        expect(code).toBe(130);
        const rows = out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(rows).toHaveLength(1);
        expect(rows[0]!["n_prompt"]).toBe(16);
    }, 120_000);

    it("sweeps -mla, -amb and -fmoe on deepseek2 and shows them as the reference's columns", async () => {
        const ds = await fixtureModel("ds-tiny");
        const r = ikl(["bench", "-m", ds, "-p", "16", "-n", "0", "-r", "1", "-t", "2", "-mla", "1,3", "-amb", "0,128", "-fmoe", "0"]);
        expect(r.code, r.stderr).toBe(0);
        const lines = r.stdout.split("\n");
        expect(lines[0]).toMatch(/\| threads \| mla \| +amb \| fmoe \| +test \|/);
        const rows = lines.slice(2).filter((l) => l.startsWith("| deepseek2"));
        expect(rows.map((l) => l.split("|").slice(6, 9).map((c) => c.trim()).join(" "))).toEqual(["1 0 0", "1 128 0", "3 0 0", "3 128 0"]);
        expect(ikl(["bench", "-m", ds, "-mla", "4"]).code).toBe(2);
        // size/params as llama-bench counts them: with MLA the wk_b/wv_b it derives from attn_kv_b at load are added
        const sizes = ikl(["bench", "-m", ds, "-p", "8", "-n", "0", "-r", "1", "-t", "1", "-mla", "0,1", "-o", "jsonl"]).stdout.trim().split("\n")
            .map((l) => JSON.parse(l) as { model_size: number; model_n_params: number });
        const [h, nope, v, rank, nl] = [8, 64, 64, 128, 4]; // ds-tiny: heads, key length − rope, value length, kv_lora, layers
        expect(sizes[1]!.model_n_params - sizes[0]!.model_n_params).toBe(nl * h * (nope + v) * rank);
        expect(sizes[1]!.model_size - sizes[0]!.model_size).toBe(2 * nl * h * (nope + v) * rank); // F16 kv_b: F16 copies
    }, 120_000);
});
