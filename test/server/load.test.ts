// Bounded load test: 8 concurrent clients × 50 requests against -np 4 on llama-tiny, mixing non-streamed chat,
// streamed completions read to [DONE], and streams cancelled after their first chunks. Pass: zero failed
// requests, every slot idle at the end, the queue empty, and the server's resident memory after the run within
// 64 MiB of its size after a warm-up round (the stated bound; it holds no per-request state after completion).
import { afterAll, beforeAll, expect, it } from "vitest";
import { fixtureModel } from "../helpers/paths.js";
import { get, post, startServer, until, type Live } from "./live.js";

let live: Live;

beforeAll(async () => {
    const model = await fixtureModel("llama-tiny");
    live = await startServer(["-m", model, "-c", "2048", "-np", "4", "-t", "1", "--chat-template", "chatml", "--metrics"]);
}, 120_000);

afterAll(async () => {
    expect((await live?.stop())?.code).toBe(0);
});

const rss = async (): Promise<number> => Number(/^ikl_device_memory_used_bytes\{device="CPU"\} (\d+)$/m.exec((await get(`${live.url}/metrics`)).text)?.[1]);

async function streamed(prompt: string, maxTokens: number, cancelAfter: number | undefined): Promise<string | undefined> {
    const ac = new AbortController();
    const res = await fetch(`${live.url}/v1/completions`, {
        method: "POST", signal: ac.signal, headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ prompt, max_tokens: maxTokens, stream: true, temperature: 0.7, seed: maxTokens })
    });
    if (res.status !== 200) return `status ${res.status}`;
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const dec = new TextDecoder();
    let text = "";
    let reads = 0;
    for (;;) {
        if (cancelAfter !== undefined && reads >= cancelAfter) {
            ac.abort();
            return undefined;
        }
        const { done, value } = await reader.read();
        if (done) break;
        text += dec.decode(value);
        reads++;
    }
    return text.endsWith("data: [DONE]\n\n") && !text.includes('"error"') ? undefined : `bad stream: ${text.slice(-200)}`;
}

async function client(c: number, n: number): Promise<string[]> {
    const failures: string[] = [];
    for (let i = 0; i < n; i++) {
        const kind = (c + i) % 3;
        const maxTokens = 2 + ((c * 7 + i * 5) % 7);
        const prompt = `Client ${c} asks question ${i}: ${"why ".repeat(i % 5)}`;
        try {
            if (kind === 0) {
                const r = await post(`${live.url}/v1/chat/completions`, { messages: [{ role: "user", content: prompt }], max_tokens: maxTokens, temperature: 0 });
                if (r.status !== 200 || r.json.usage.completion_tokens > maxTokens) failures.push(`chat ${r.status} ${r.text.slice(0, 200)}`);
            } else {
                const f = await streamed(prompt, maxTokens, kind === 2 ? 2 : undefined);
                if (f !== undefined) failures.push(f);
            }
        } catch (e) {
            failures.push(`client ${c} request ${i}: ${(e as Error).message}`);
        }
    }
    return failures;
}

it("8 clients × 50 mixed requests: no failures, all slots free, bounded memory", async () => {
    expect((await Promise.all([0, 1, 2, 3].map((c) => client(c, 3)))).flat()).toEqual([]);
    expect(await until(async () => (await get(`${live.url}/health`)).json.slots_idle === 4)).toBe(true);
    const before = await rss();
    const failures = (await Promise.all(Array.from({ length: 8 }, (_, c) => client(c, 50)))).flat();
    expect(failures).toEqual([]);
    expect(await until(async () => (await get(`${live.url}/health`)).json.slots_idle === 4)).toBe(true);
    const slots = (await get(`${live.url}/slots`)).json as { state: number }[];
    expect(slots.every((s) => s.state === 0)).toBe(true);
    const m = (await get(`${live.url}/metrics`)).text;
    expect(m).toMatch(/^ikl_requests_deferred 0$/m);
    expect(m).toMatch(/^ikl_requests_failed_total 0$/m);
    const after = await rss();
    process.stderr.write(`load test: resident memory ${(before / 2 ** 20).toFixed(1)} MiB after warm-up, ${(after / 2 ** 20).toFixed(1)} MiB after 400 requests\n`);
    expect(after - before).toBeLessThan(64 << 20);
}, 240_000);
