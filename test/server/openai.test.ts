// `ikl server` through the official `openai` npm client on llama-tiny: chat and text completions, streaming and
// not (the streamed text equals the non-streamed one under greedy sampling), stop sequences, usage, logprobs, and
// greedy output identical to `ikl run` for the same prompt.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixtureModel, ikl } from "../helpers/paths.js";
import { JsonPrefix } from "../../src/server/json-mode.js";
import { post, startServer, type Live } from "./live.js";

let live: Live;
let client: OpenAI;
let modelPath: string;

beforeAll(async () => {
    modelPath = await fixtureModel("llama-tiny");
    live = await startServer(["-m", modelPath, "-c", "1024", "-np", "2", "-t", "1", "--chat-template", "chatml", "-a", "tiny"]);
    client = new OpenAI({ baseURL: `${live.url}/v1`, apiKey: "unused", maxRetries: 0 });
}, 120_000);

afterAll(async () => {
    const r = await live?.stop();
    expect(r?.code).toBe(0);
});

const messages = [
    { role: "system" as const, content: "You are terse." },
    { role: "user" as const, content: "Name three colours." }
];

describe("openai client", { timeout: 60_000 }, () => {
    it("lists the model under its alias", async () => {
        const list = await client.models.list();
        expect(list.data.map((m) => m.id)).toEqual(["tiny"]);
    });

    it("chat completion: content, finish_reason length, usage", async () => {
        const r = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 12, temperature: 0 });
        expect(r.object).toBe("chat.completion");
        expect(r.id).toMatch(/^chatcmpl-/);
        expect(r.choices).toHaveLength(1);
        expect(r.choices[0]?.message.role).toBe("assistant");
        expect((r.choices[0]?.message.content ?? "").length).toBeGreaterThan(0);
        expect(r.choices[0]?.finish_reason).toBe("length");
        expect(r.usage?.completion_tokens).toBe(12);
        expect(r.usage?.prompt_tokens).toBeGreaterThan(10);
        expect(r.usage?.total_tokens).toBe((r.usage?.prompt_tokens ?? 0) + 12);
    });

    it("streamed chat equals the non-streamed greedy answer, with usage at the end", async () => {
        const full = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 16, temperature: 0, max_completion_tokens: 16 });
        const stream = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true } });
        let text = "";
        let finish: string | null = null;
        let usage: OpenAI.CompletionUsage | undefined;
        const ids = new Set<string>();
        for await (const chunk of stream) {
            ids.add(chunk.id);
            expect(chunk.object).toBe("chat.completion.chunk");
            for (const c of chunk.choices) {
                text += c.delta.content ?? "";
                if (c.finish_reason !== null) finish = c.finish_reason;
            }
            if (chunk.usage) usage = chunk.usage;
        }
        expect(ids.size).toBe(1);
        expect(text).toBe(full.choices[0]?.message.content);
        expect(finish).toBe("length");
        expect(usage?.completion_tokens).toBe(16);
        expect(usage?.prompt_tokens).toBe(full.usage?.prompt_tokens);
    });

    it("text completion, streamed and not, and the same text as `ikl run` (greedy)", async () => {
        const prompt = "Once upon a time";
        const r = await client.completions.create({ model: "tiny", prompt, max_tokens: 10, temperature: 0 });
        expect(r.object).toBe("text_completion");
        expect(r.usage?.completion_tokens).toBe(10);
        const run = ikl(["run", "-m", modelPath, "-p", prompt, "-n", "10", "--temp", "0", "-c", "1024", "-t", "1"]);
        expect(run.code).toBe(0);
        expect(run.stdout.trimStart()).toBe(prompt + r.choices[0]?.text); // run echoes the prompt as tokenized (SPM adds a leading space)
        const stream = await client.completions.create({ model: "tiny", prompt, max_tokens: 10, temperature: 0, stream: true });
        let text = "";
        for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
        expect(text).toBe(r.choices[0]?.text);
    });

    it("stop sequences cut the output before the stop text, streamed and not", async () => {
        const base = await client.completions.create({ model: "tiny", prompt: "The sky is", max_tokens: 24, temperature: 0 });
        const text = base.choices[0]?.text ?? "";
        const at = Math.floor(text.length / 2);
        const stop = text.slice(at, at + 3);
        const expected = text.slice(0, text.indexOf(stop));
        const r = await client.completions.create({ model: "tiny", prompt: "The sky is", max_tokens: 24, temperature: 0, stop: ["\u0001never", stop] });
        expect(r.choices[0]?.text).toBe(expected);
        expect(r.choices[0]?.finish_reason).toBe("stop");
        expect(r.usage?.completion_tokens).toBeLessThan(24);
        const stream = await client.completions.create({ model: "tiny", prompt: "The sky is", max_tokens: 24, temperature: 0, stop, stream: true });
        let streamed = "";
        let finish: string | null = null;
        for await (const chunk of stream) {
            streamed += chunk.choices[0]?.text ?? "";
            finish = chunk.choices[0]?.finish_reason ?? finish;
        }
        expect(streamed).toBe(expected);
        expect(finish).toBe("stop");
    });

    it("chat logprobs: one entry per token, greedy token is the top alternative", async () => {
        const r = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3 });
        const content = r.choices[0]?.logprobs?.content ?? [];
        expect(content).toHaveLength(5);
        for (const e of content) {
            expect(e.top_logprobs).toHaveLength(3);
            expect(e.logprob).toBeLessThanOrEqual(0);
            expect(e.logprob).toBeCloseTo(e.top_logprobs[0]?.logprob ?? NaN, 5);
            expect(e.top_logprobs[0]?.logprob).toBeGreaterThanOrEqual(e.top_logprobs[1]?.logprob ?? 0);
        }
    });

    it("seeded sampling is reproducible and differs across seeds", async () => {
        const ask = async (seed: number): Promise<string> =>
            (await client.completions.create({ model: "tiny", prompt: "Hello", max_tokens: 12, temperature: 1.5, top_p: 1, min_p: 0, seed } as OpenAI.CompletionCreateParamsNonStreaming)).choices[0]?.text ?? "";
        const a = await ask(42);
        expect(await ask(42)).toBe(a);
        const others = await Promise.all([1, 2, 3].map(ask));
        expect(others.some((o) => o !== a)).toBe(true);
    });

    it("response_format json_object: the reply is always (a prefix of) one JSON object", async () => {
        for (const seed of [1, 2, 3]) {
            const r = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 48, temperature: 0.8, seed, response_format: { type: "json_object" } });
            const text = r.choices[0]?.message.content ?? "";
            const j = new JsonPrefix();
            expect(j.pushText(text), text).toBe(true);
            expect(text.trimStart().startsWith("{")).toBe(true);
            if (r.choices[0]?.finish_reason === "stop") expect(() => JSON.parse(text)).not.toThrow();
            else expect(r.usage?.completion_tokens).toBe(48);
        }
        await expect(client.chat.completions.create({ model: "tiny", messages, response_format: { type: "json_schema", json_schema: { name: "x", schema: {} } } })).rejects.toMatchObject({ status: 400 });
    });

    it("n > 1 is refused with 400 through the client", async () => {
        await expect(client.chat.completions.create({ model: "tiny", messages, max_tokens: 2, n: 2 })).rejects.toMatchObject({ status: 400 });
    });

    it("native /completion returns tokens, timings and stop flags", async () => {
        const r = await post(`${live.url}/completion`, { prompt: "Once upon a time", n_predict: 6, temperature: 0, return_tokens: true });
        expect(r.status).toBe(200);
        expect(r.json.tokens).toHaveLength(6);
        expect(r.json.stopped_limit).toBe(true);
        expect(r.json.timings.predicted_n).toBe(6);
        expect(r.json.tokens_cached).toBe(r.json.tokens_evaluated + 5);
    });
});
