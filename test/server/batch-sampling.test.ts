// Engine-side sampling of the batched step (ctx.decodeRows, native/node/src/sample.rs): every output row is
// sampled by its own slot's sampler, so 4 concurrent requests — greedy or seeded — get exactly the tokens each
// gets alone, and a seeded sampled reply is the same stream as `ikl run -s` (same chain, same mt19937), on
// llama and deepseek2 fixtures. logit_bias bans reach the engine's chain; logprobs come back from the engine.
import { afterAll, describe, expect, it } from "vitest";
import { fixtureModel, ikl } from "../helpers/paths.js";
import { post, startServer, type Live } from "./live.js";

const started: Live[] = [];
afterAll(async () => {
    for (const s of started) expect((await s.stop()).code).toBe(0);
});

const PROMPTS = ["Once upon a time", "The sky is blue and", "In a land far away there", "Hello"];

async function tokens(s: Live, prompt: string, temperature: number, seed: number, extra: Record<string, unknown> = {}): Promise<number[]> {
    const r = await post(`${s.url}/completion`, { prompt, n_predict: 24, temperature, seed, return_tokens: true, cache_prompt: false, ...extra });
    expect(r.status, r.text).toBe(200);
    return r.json.tokens as number[];
}

describe.each(["llama-tiny", "ds-tiny"])("%s, -np 4", { timeout: 120_000 }, (name) => {
    it("4 concurrent requests get the tokens each gets alone (greedy and seeded)", async () => {
        const path = await fixtureModel(name);
        const s = await startServer(["-m", path, "-c", "1024", "-np", "4", "-t", "1"]);
        started.push(s);
        for (const temp of [0, 0.8]) {
            const solo: number[][] = [];
            for (const [i, p] of PROMPTS.entries()) solo.push(await tokens(s, p, temp, 10 + i));
            const together = await Promise.all(PROMPTS.map((p, i) => tokens(s, p, temp, 10 + i)));
            expect(together).toEqual(solo);
            if (temp > 0) expect(new Set(solo.map((t) => t.join())).size).toBe(4);
        }
        // a seeded sampled reply is `ikl run -s`'s stream (the server's defaults are run's: top-k 40, top-p 0.95, min-p 0.05)
        const r = await post(`${s.url}/completion`, { prompt: "Once upon a time", n_predict: 16, temperature: 0.8, seed: 42 });
        const run = ikl(["run", "-m", path, "-p", "Once upon a time", "-n", "16", "--temp", "0.8", "-s", "42", "-c", "1024", "-t", "1"]);
        expect(run.code).toBe(0);
        expect(run.stdout.trimStart()).toBe(`Once upon a time${r.json.content}`);
        // a banned greedy token never comes back; the engine's logprobs are log-softmax values, best first, over
        // the raw logits (before the bias)
        const ask = async (extra: Record<string, unknown>): Promise<{ tokens: string[]; token_logprobs: number[]; top_logprobs: Record<string, number>[] }> => {
            const c = await post(`${s.url}/v1/completions`, { prompt: "Hello", max_tokens: 4, temperature: 0, logprobs: 3, ...extra });
            expect(c.status, c.text).toBe(200);
            return c.json.choices[0].logprobs;
        };
        const greedy = await tokens(s, "Hello", 0, 1);
        const plain = await ask({});
        const banned = await ask({ logit_bias: { [String(greedy[0])]: -100 } });
        expect(banned.tokens[0]).not.toBe(plain.tokens[0]);
        expect(Object.keys(banned.top_logprobs[0] ?? {})[0]).toBe(plain.tokens[0]);
        for (const lp of [...plain.top_logprobs, ...banned.top_logprobs]) {
            const v = Object.values(lp);
            expect(v).toEqual([...v].sort((x, y) => y - x));
            expect(v.reduce((acc, l) => acc + Math.exp(l), 0)).toBeLessThanOrEqual(1 + 1e-6);
        }
        expect(plain.token_logprobs[0]).toBeCloseTo(Object.values(plain.top_logprobs[0] ?? {})[0] ?? NaN, 5);
    });
});
