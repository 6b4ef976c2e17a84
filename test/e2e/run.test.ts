// `ikl run` end to end on the llama-tiny fixture: greedy output is byte-identical to ik_llama.cpp's llama-cli
// (fixtures/golden/llama-tiny-run.json, with the command that produced it), stdout carries only text, stderr
// the card and timings; error exits (1 runtime, 2 usage) and Ctrl-C (partial output, timings, exit 130).
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { CLI, fixtureModel, ikl, ROOT } from "../helpers/paths.js";

const golden = JSON.parse(readFileSync(join(ROOT, "fixtures", "golden", "llama-tiny-run.json"), "utf8")) as { stdout: string };

describe("ikl run", () => {
    let model = "";
    beforeAll(async () => {
        model = await fixtureModel("llama-tiny");
    }, 120_000);

    it("greedy generation matches llama-cli and is repeatable", () => {
        const args = ["run", "-m", model, "-p", "Once upon a time", "-n", "16", "--temp", "0", "-t", "2"];
        const a = ikl(args);
        const b = ikl(args);
        expect(a.stderr).not.toMatch(/error/);
        expect(a.code).toBe(0);
        expect(a.stdout).toBe(golden.stdout);
        expect(b.stdout).toBe(a.stdout);
        expect(a.stderr).toMatch(/arch llama, 19\.53 M params/);
        // llama-cli's end-of-generation block (examples/main/main.cpp): 5 prompt tokens, 16 emitted
        expect(a.stderr).toMatch(/\nmain: prompt eval time = +[\d.]+ ms \/ +5 tokens \( +[\d.]+ ms per token, +[\d.]+ tokens per second\)\n/);
        expect(a.stderr).toMatch(/\nmain: {8}eval time = +[\d.]+ ms \/ +16 tokens \( +[\d.]+ ms per token, +[\d.]+ tokens per second\)\n/);
        expect(a.stderr).toMatch(/\nmain: {7}total time = +[\d.]+ ms \/ +21 tokens\n/);
        expect(a.stderr).not.toMatch(/llama_print_timings/);
        expect(a.stdout).not.toMatch(/main: /);
    }, 60_000);

    it("processes escapes and stops when the context is full", () => {
        const r = ikl(["run", "-m", model, "-p", "a\\tb", "-n", "-1", "--temp", "0", "-c", "8", "-t", "1", "-fa", "off"]);
        expect(r.code).toBe(0);
        expect(r.stdout.startsWith(" a\tb")).toBe(true);
        expect(r.stderr).toMatch(/context full \(n_ctx = 32\)/);
    }, 60_000);

    it("fails with one-line errors and the right exit codes", () => {
        const missing = ikl(["run", "-m", "/nonexistent.gguf", "-p", "x"]);
        expect(missing.code).toBe(1);
        expect(missing.stderr).toMatch(/error: \/nonexistent\.gguf: no such file/);
        const long = ikl(["run", "-m", model, "-p", "word ".repeat(300), "-c", "8"]);
        expect(long.code).toBe(1);
        expect(long.stderr).toMatch(/prompt is too long \(\d+ tokens, max 252\)/);
        expect(ikl(["run", "-m", model, "-p", "x", "-n", "abc"]).code).toBe(2);
        expect(ikl(["run", "-m", model, "-p", "x", "--temp", "hot"]).code).toBe(2);
        expect(ikl(["run", "-m", model, "-p", "x", "-ctk", "q9_9"]).code).toBe(2);
        expect(ikl(["run", "-p", "x"]).code).toBe(2);
        const kv = ikl(["run", "-m", model, "-p", "x", "-ctk", "q8_KV"]);
        expect(kv.code).toBe(1);
        expect(kv.stderr).toMatch(/q8_KV/);
    }, 60_000);

    it("-cnv chats through the model's template, reusing the KV prefix between turns", () => {
        const r = spawnSync(process.execPath, [CLI, "run", "-m", model, "-cnv", "-sys", "Be brief.", "-n", "4", "--temp", "0", "-t", "2"], {
            input: "Hello\nAgain\n/exit\n",
            encoding: "utf8",
            env: { ...process.env, NO_COLOR: "1" }
        });
        expect(r.status).toBe(0);
        expect(r.stderr).toMatch(/chat template: model tokenizer.chat_template/);
        expect(r.stdout.split("\n> ").length).toBe(4);
        // turn 1 evaluates 23 tokens; turn 2 re-renders the whole chat but only the new suffix is decoded
        const m = /prompt eval time = +[\d.]+ ms \/ +(\d+) tokens/.exec(r.stderr);
        expect(Number(m?.[1])).toBeLessThan(45);
        const bad = ikl(["run", "-m", model, "-cnv", "--chat-template", "{% if %}"]);
        expect(bad.code).toBe(1);
        expect(bad.stderr).toMatch(/chat template \(--chat-template text\) does not parse/);
    }, 60_000);

    it("Ctrl-C stops generation, prints timings and exits 130", async () => {
        const child = spawn(process.execPath, [CLI, "run", "-m", model, "-p", "Once upon a time", "-n", "-1", "--temp", "0", "-c", "4096", "-t", "1"], {
            env: { ...process.env, NO_COLOR: "1" }
        });
        let stdout = "";
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const code = await new Promise<number | null>((resolve) => {
            child.stdout.on("data", (d: Buffer) => {
                const first = stdout === "";
                stdout += d.toString();
                if (first) setTimeout(() => child.kill("SIGINT"), 300);
            });
            child.on("exit", (c) => resolve(c));
        });
        expect(code).toBe(130);
        expect(stdout.startsWith(" Once upon a time")).toBe(true);
        expect(stderr).toMatch(/llama_print_timings: +total time/);
    }, 60_000);

    it("refuses options the engine cannot honour yet, and hides them from help", () => {
        for (const [flag, what] of [["-ngl 99", /-ngl 99 places tensors on CUDA, but CUDA is not available/], ["-ot exps=CUDA0", /-ot rule places tensors on CUDA, but CUDA is not available/],
            ["-mqkv", /merge-qkv is not implemented yet/], ["-muge", /merge-up-gate-experts is not implemented yet/]] as const) {
            const r = ikl(["run", "-m", model, "-p", "hi", "-n", "1", ...flag.split(" ")]);
            expect(r.code, flag).toBe(1);
            expect(r.stderr.trim()).toMatch(what);
            expect(r.stdout).toBe("");
        }
        // accepted spellings from users' scripts that are no-ops for a dense model keep working (-mla: a llama model
        // runs standard attention whatever the mode; -rtr repacks what it can; -amb caps MLA attention only)
        for (const flag of ["-fmoe", "-mla 3", "-rtr", "-amb 64"]) {
            expect(ikl(["run", "-m", model, "-p", "hi", "-n", "1", "--temp", "0", ...flag.split(" ")]).code, flag).toBe(0);
        }
        const help = ikl(["run", "--help"]).stdout;
        expect(help).not.toMatch(/merge-qkv|merge-up-gate-experts/);
        expect(help).toMatch(/--run-time-repack/);
        expect(help).toMatch(/--attention-max-batch/);
        expect(help).toMatch(/--n-gpu-layers[\s\S]*--override-tensor[\s\S]*--print-placement/); // offload works in run
        expect(ikl(["run", "-m", model, "-p", "hi", "-n", "1", "--temp", "0", "-mla", "0"]).code).toBe(0);
        expect(help).toMatch(/--flash-attn/);
    }, 60_000);
});
