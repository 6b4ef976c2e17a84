// Raw SSE framing (read with eventsource-parser, and byte-exact checks of the `data: …\n\n` frames and the final
// `data: [DONE]`), OpenAI-shaped errors for bad input (malformed JSON, wrong types, unknown fields, absurd
// values, a 10 MB prompt), API keys, CORS off by default, and the server staying up through all of it.
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixtureModel } from "../helpers/paths.js";
import { get, post, startServer, type Live } from "./live.js";

let live: Live;
const KEY = "sekret-key";
const auth = { Authorization: `Bearer ${KEY}` };

beforeAll(async () => {
    const model = await fixtureModel("llama-tiny");
    live = await startServer(["-m", model, "-c", "512", "-t", "1", "--chat-template", "chatml", "--api-key", KEY, "--max-body-size", "1MiB", "--metrics", "--sse-ping-interval", "0.2"]);
}, 120_000);

afterAll(async () => {
    expect((await live?.stop())?.code).toBe(0);
});

async function rawStream(path: string, body: unknown): Promise<{ raw: string; events: EventSourceMessage[]; type: string | null }> {
    const res = await fetch(`${live.url}${path}`, { method: "POST", headers: { "Content-Type": "application/json", ...auth }, body: JSON.stringify(body) });
    const raw = await res.text();
    const events: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (e) => events.push(e) });
    parser.feed(raw);
    return { raw, events, type: res.headers.get("content-type") };
}

describe("SSE framing", { timeout: 60_000 }, () => {
    it("chat stream: data frames of JSON, one id, role first, finish_reason last, then [DONE]", async () => {
        const { raw, events, type } = await rawStream("/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], max_tokens: 6, temperature: 0, stream: true });
        expect(type).toMatch(/^text\/event-stream/);
        expect(raw.endsWith("data: [DONE]\n\n")).toBe(true);
        expect(raw.split("\n\n").slice(0, -1).every((frame) => /^data: /.test(frame) && !frame.includes("\n"))).toBe(true);
        expect(events.at(-1)?.data).toBe("[DONE]");
        const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
        expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
        expect(new Set(chunks.map((c) => c.created)).size).toBe(1);
        expect(Object.keys(chunks[0]).slice(0, 5)).toEqual(["choices", "created", "id", "model", "object"]);
        expect(chunks[0].choices[0].delta.role).toBe("assistant");
        const last = chunks.at(-1);
        expect(last.choices[0].finish_reason).toBe("length");
        expect(last.choices[0].delta).toEqual({});
        expect(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null)).toBe(true);
    });

    it("a stream waiting for a slot gets `: ping` comments, then its data and [DONE]", async () => {
        const busy = new AbortController();
        const hold = fetch(`${live.url}/completion`, { method: "POST", signal: busy.signal, headers: auth, body: JSON.stringify({ prompt: "Busy", n_predict: 1 << 20, ignore_eos: true, stream: true }) });
        await (await hold).body?.getReader().read(); // the only slot is generating now
        const res = await fetch(`${live.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json", ...auth }, body: JSON.stringify({ prompt: "Waiting", max_tokens: 3, temperature: 0, stream: true }) });
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        const dec = new TextDecoder();
        let raw = "";
        while (!raw.includes(": ping\n\n")) raw += dec.decode((await reader.read()).value); // only pings while queued
        expect(raw.startsWith(": ping\n\n")).toBe(true);
        busy.abort();
        for (let r = await reader.read(); !r.done; r = await reader.read()) raw += dec.decode(r.value);
        expect(raw.endsWith("data: [DONE]\n\n")).toBe(true);
        const events: EventSourceMessage[] = [];
        createParser({ onEvent: (e) => events.push(e) }).feed(raw);
        expect(events.every((e) => e.data === "[DONE]" || JSON.parse(e.data).object === "text_completion")).toBe(true);
        expect(events.length).toBeGreaterThan(1);
    });

    it("native /completion stream has no [DONE] and ends with stop: true", async () => {
        const { events } = await rawStream("/completion", { prompt: "Hello", n_predict: 4, temperature: 0, stream: true });
        const data = events.map((e) => JSON.parse(e.data));
        expect(data.at(-1).stop).toBe(true);
        expect(data.at(-1).tokens_predicted).toBe(4);
        expect(data.slice(0, -1).every((d) => d.stop === false)).toBe(true);
    });
});

describe("errors", { timeout: 60_000 }, () => {
    const chat = `/v1/chat/completions`;
    const cases: [string, unknown, RegExp][] = [
        ["malformed JSON", '{"messages": [', /not valid JSON/],
        ["not an object", "[1,2]", /must be a JSON object/],
        ["messages missing", {}, /'messages' is required/],
        ["wrong type", { messages: [{ role: "user", content: "x" }], max_tokens: "ten" }, /'max_tokens' must be a number/],
        ["negative max_tokens", { messages: [{ role: "user", content: "x" }], max_tokens: -5 }, /'max_tokens' = -5 is out of range/],
        ["absurd top_k", { messages: [{ role: "user", content: "x" }], top_k: 1e9 }, /'top_k' = 1000000000 is out of range/],
        ["unknown field", { messages: [{ role: "user", content: "x" }], frobnicate: true }, /unknown field 'frobnicate'/],
        ["n = 2", { messages: [{ role: "user", content: "x" }], n: 2 }, /'n'/],
        ["bad role", { messages: [{ role: "wizard", content: "x" }] }, /role must be one of/],
        ["tools", { messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f" } }] }, /not supported/],
        ["top_logprobs without logprobs", { messages: [{ role: "user", content: "x" }], top_logprobs: 2 }, /requires 'logprobs'/]
    ];
    for (const [name, body, message] of cases) {
        it(`${name} → 400 invalid_request_error`, async () => {
            const r = await post(`${live.url}${chat}`, body, auth);
            expect(r.status).toBe(400);
            expect(r.json.error.code).toBe(400);
            expect(r.json.error.type).toBe("invalid_request_error");
            expect(r.json.error.message).toMatch(message);
        });
    }

    it("a 10 MB prompt → 413 with the limit in the message", async () => {
        const r = await post(`${live.url}/v1/completions`, { prompt: "a ".repeat(5 << 20), max_tokens: 1 }, auth);
        expect(r.status).toBe(413);
        expect(r.json.error.message).toMatch(/limit is 1048576/);
    });

    it("a prompt longer than the context is truncated under --ctx-overflow shift", async () => {
        const r = await post(`${live.url}/completion`, { prompt: "word ".repeat(700), n_predict: 2, temperature: 0 }, auth);
        expect(r.status).toBe(200);
        expect(r.json.truncated).toBe(true);
        expect(r.json.tokens_evaluated).toBeLessThan(512);
    });

    it("unknown path → 404 File Not Found; embeddings → 501", async () => {
        const r = await get(`${live.url}/nope`, auth);
        expect(r.status).toBe(404);
        expect(r.json.error).toEqual({ code: 404, message: "File Not Found", type: "not_found_error" });
        expect(r.headers.get("server")).toBe("ikl");
        expect((await post(`${live.url}/v1/embeddings`, { input: "x" }, auth)).status).toBe(501);
    });

    it("API key: 401 without, 200 with Bearer or X-Api-Key; /health and /v1/models are public", async () => {
        const r = await post(`${live.url}/tokenize`, { content: "hi" });
        expect(r.status).toBe(401);
        expect(r.json.error).toEqual({ code: 401, message: "Invalid API Key", type: "authentication_error" });
        expect((await post(`${live.url}/tokenize`, { content: "hi" }, { Authorization: "Bearer wrong" })).status).toBe(401);
        expect((await post(`${live.url}/tokenize`, { content: "hi" }, auth)).status).toBe(200);
        expect((await post(`${live.url}/tokenize`, { content: "hi" }, { "X-Api-Key": KEY })).status).toBe(200);
        expect((await get(`${live.url}/health`)).status).toBe(200);
        expect((await get(`${live.url}/v1/models`)).status).toBe(200);
        expect((await get(`${live.url}/metrics`)).status).toBe(401);
    });

    it("CORS is off unless asked: no Access-Control-Allow-Origin", async () => {
        const res = await fetch(`${live.url}/health`, { headers: { Origin: "http://evil.example" } });
        expect(res.headers.get("access-control-allow-origin")).toBeNull();
        const pre = await fetch(`${live.url}/v1/chat/completions`, { method: "OPTIONS", headers: { Origin: "http://evil.example" } });
        expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    });

    it("tokenize / detokenize round trip; apply-template renders without inference", async () => {
        const t = await post(`${live.url}/tokenize`, { content: "Hello world", add_special: true }, auth);
        expect(t.json.tokens[0]).toBe(1);
        const d = await post(`${live.url}/detokenize`, { tokens: t.json.tokens.slice(1) }, auth);
        expect(d.json.content.trim()).toBe("Hello world");
        const a = await post(`${live.url}/apply-template`, { messages: [{ role: "user", content: "Hi" }] }, auth);
        expect(a.json.prompt).toBe("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        expect((await post(`${live.url}/detokenize`, { tokens: [-1] }, auth)).status).toBe(400);
    });

    it("the server is still healthy after all of the above", async () => {
        const r = await get(`${live.url}/health`);
        expect(r.json.status).toBe("ok");
        const m = await get(`${live.url}/metrics`, auth);
        expect(m.text).toMatch(/^# HELP ikl_prompt_tokens_total/m);
        expect(m.text).toMatch(/^ikl_requests_processing 0$/m);
    });
});

describe("CORS when asked", () => {
    it("--cors-origins answers preflight and echoes the allowed origin only", async () => {
        const model = await fixtureModel("llama-tiny");
        const s = await startServer(["-m", model, "-c", "256", "-t", "1", "--cors-origins", "http://ok.example"]);
        try {
            const pre = await fetch(`${s.url}/v1/completions`, { method: "OPTIONS", headers: { Origin: "http://ok.example" } });
            expect(pre.status).toBe(204);
            expect(pre.headers.get("access-control-allow-origin")).toBe("http://ok.example");
            const ok = await fetch(`${s.url}/health`, { headers: { Origin: "http://ok.example" } });
            expect(ok.headers.get("access-control-allow-origin")).toBe("http://ok.example");
            const other = await fetch(`${s.url}/health`, { headers: { Origin: "http://evil.example" } });
            expect(other.headers.get("access-control-allow-origin")).toBeNull();
        } finally {
            expect((await s.stop()).code).toBe(0);
        }
    }, 60_000);
});
