// Opt-in (IKL_LARGE_TESTS=1; needs .cache/models/ds-mini-f16.gguf from `make models`): aggregate generation
// throughput of 4 concurrent clients against -np 4 on ds-mini must be at least 2.5× a single client's — the
// payoff of continuous batching (one decode call per step for all slots). Prints both rates.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { ROOT } from "../helpers/paths.js";
import { post, startServer, type Live } from "./live.js";

const MODEL = process.env["IKL_DS_MINI"] ?? join(ROOT, ".cache", "models", "ds-mini-f16.gguf");
const enabled = process.env["IKL_LARGE_TESTS"] === "1" && existsSync(MODEL);
let live: Live | undefined;

afterAll(async () => {
    await live?.stop();
});

it.runIf(enabled)("ds-mini -np 4: 4 concurrent clients get >= 2.5x the tokens/s of one", async () => {
    const threads = process.env["IKL_THREADS"] ?? "2";
    live = await startServer(["-m", MODEL, "-c", "2048", "-np", "4", "-t", threads], 300_000);
    const N = Number(process.env["IKL_TPUT_TOKENS"] ?? "48");
    const one = (i: number): Promise<{ status: number; json: any }> =>
        post(`${(live as Live).url}/completion`, { prompt: `Client ${i} says hello and asks`, n_predict: N, temperature: 0, ignore_eos: true });
    await one(99); // warm-up
    let t0 = performance.now();
    const single = await one(0);
    const tSingle = (performance.now() - t0) / 1e3;
    t0 = performance.now();
    const four = await Promise.all([1, 2, 3, 4].map(one));
    const tFour = (performance.now() - t0) / 1e3;
    expect([single, ...four].every((r) => r.status === 200 && r.json.tokens_predicted === N)).toBe(true);
    const r1 = N / tSingle;
    const r4 = (4 * N) / tFour;
    process.stderr.write(`throughput: 1 client ${r1.toFixed(2)} t/s, 4 clients ${r4.toFixed(2)} t/s aggregate, ratio ${(r4 / r1).toFixed(2)}x\n`);
    expect(r4 / r1).toBeGreaterThanOrEqual(2.5);
}, 900_000);
