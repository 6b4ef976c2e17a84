// Paths, the raw addon and fixture models for native and e2e tests. Fixture models are generated on demand by
// the engine's deterministic generator into .cache/test-models (git-ignored) and regenerated when the addon
// is newer than the file, so every test run exercises the current generator.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const ADDON_PATH = join(ROOT, "dist", "ikl.node");
export const CLI = join(ROOT, "bin", "ikl.js");
export const MODELS = join(ROOT, ".cache", "test-models");
export const VOCAB_DIR = join(ROOT, "node_modules", "@lenml");
export const PYTHON = process.env.IKL_PYTHON ?? join(ROOT, ".toolchain", "py", "bin", "python");

export interface FixtureOpts {
    ftype?: "f16" | "f32";
    mlaForm?: "kvb" | "split" | "both";
    seed?: number;
}

/** The addon, loaded directly (native tests exercise the contract without the TS wrappers). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function addon(): any {
    return createRequire(import.meta.url)(ADDON_PATH);
}

/** Path of fixture model `name`, generated if missing or older than the addon. */
export async function fixtureModel(name: string, opts: FixtureOpts = {}): Promise<string> {
    const ftype = opts.ftype ?? "f16";
    const form = opts.mlaForm && opts.mlaForm !== "kvb" ? `-${opts.mlaForm}` : "";
    const seed = opts.seed !== undefined && opts.seed !== 1234 ? `-s${opts.seed}` : "";
    const path = join(MODELS, `${name}-${ftype}${form}${seed}.gguf`);
    if (!existsSync(path) || statSync(path).mtimeMs < statSync(ADDON_PATH).mtimeMs) {
        mkdirSync(MODELS, { recursive: true });
        await addon().makeFixture(name, path, { ftype, mlaForm: opts.mlaForm ?? "kvb", seed: opts.seed ?? 1234, vocabDir: VOCAB_DIR });
    }
    return path;
}

export interface RunResult {
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
}

/** Run the CLI (bin/ikl.js) synchronously. */
export function ikl(args: string[], env: NodeJS.ProcessEnv = {}): RunResult {
    const r = spawnSync(process.execPath, [CLI, ...args], {
        encoding: "utf8",
        env: { ...process.env, NO_COLOR: "1", ...env },
        timeout: 60_000,
        maxBuffer: 64 << 20
    });
    return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Run a Python test tool with the project's venv (gguf-py + numpy). */
export function python(script: string, args: string[]): string {
    return execFileSync(PYTHON, [join(ROOT, "test", "tools", script), ...args], { encoding: "utf8", maxBuffer: 256 << 20 });
}
