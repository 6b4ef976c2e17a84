// Slots on a live server (llama-tiny, -np 2): /slots, prompt-cache reuse by common prefix, id_slot, erase,
// save/restore filename validation (and the full save → restart → restore → continue check when the engine has
// the sequence-state API), cancellation on client disconnect (streamed and not), queueing, and SIGTERM drain.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addon, fixtureModel } from "../helpers/paths.js";
import { get, post, startServer, until, type Live } from "./live.js";

let live: Live;
let model: string;
const dir = mkdtempSync(join(tmpdir(), "ikl-slots-"));
const ARGS = ["-c", "1024", "-np", "2", "-t", "1", "--chat-template", "chatml", "--metrics"];

beforeAll(async () => {
    model = await fixtureModel("llama-tiny");
    live = await startServer(["-m", model, ...ARGS, "--slot-save-path", dir]);
}, 120_000);

afterAll(async () => {
    expect((await live?.stop())?.code).toBe(0);
    rmSync(dir, { recursive: true, force: true });
});

const allIdle = async (url: string): Promise<boolean> => ((await get(`${url}/slots`)).json as { state: number }[]).every((s) => s.state === 0);

describe("slots", { timeout: 60_000 }, () => {
    it("GET /slots lists every slot with its context", async () => {
        const r = await get(`${live.url}/slots`);
        expect(r.json).toHaveLength(2);
        expect(r.json[0]).toMatchObject({ id: 0, state: 0, n_ctx: 512 });
    });

    it("reuses the common prefix of a slot's cache; cache_prompt false evaluates everything", async () => {
        const prompt = "The quick brown fox jumps over the lazy dog and keeps on running";
        const a = await post(`${live.url}/completion`, { prompt, n_predict: 3, temperature: 0, id_slot: 1 });
        const b = await post(`${live.url}/completion`, { prompt: `${prompt} far away`, n_predict: 3, temperature: 0, id_slot: 1 });
        expect(a.json.id_slot).toBe(1);
        expect(b.json.timings.prompt_n).toBeLessThan(6);
        expect(b.json.tokens_evaluated - b.json.timings.prompt_n).toBeGreaterThanOrEqual(a.json.tokens_evaluated);
        const c = await post(`${live.url}/completion`, { prompt, n_predict: 3, temperature: 0, id_slot: 1, cache_prompt: false });
        expect(c.json.timings.prompt_n).toBe(c.json.tokens_evaluated);
        expect(c.json.content).toBe(a.json.content);
        const chat = { messages: [{ role: "user", content: prompt }], max_tokens: 2, temperature: 0, id_slot: 0 };
        await post(`${live.url}/v1/chat/completions`, chat);
        const again = await post(`${live.url}/v1/chat/completions`, chat);
        expect(again.json.usage.prompt_tokens_details.cached_tokens).toBe(again.json.usage.prompt_tokens - 1);
    });

    it("id_slot that does not exist → 400; erase empties the slot", async () => {
        expect((await post(`${live.url}/completion`, { prompt: "x", id_slot: 7 })).status).toBe(400);
        const e = await post(`${live.url}/slots/1?action=erase`, {});
        expect(e.status).toBe(200);
        expect(e.json.n_erased).toBeGreaterThan(0);
        expect((await get(`${live.url}/slots`)).json[1].n_past).toBe(0);
        expect((await post(`${live.url}/slots/x?action=erase`, {})).json.error.message).toBe("Invalid slot ID");
        expect((await post(`${live.url}/slots/9?action=erase`, {})).status).toBe(400);
        expect((await post(`${live.url}/slots/0?action=fly`, {})).json.error.message).toBe("Invalid action");
    });

    it("save/restore refuse unsafe filenames", async () => {
        for (const filename of ["../escape.bin", "a/b", "a\\b", "..", ".", "", " lead", "trail.", "nul\u0000", "x".repeat(256), "c:evil", 42]) {
            const r = await post(`${live.url}/slots/0?action=save`, { filename });
            expect(r.status, JSON.stringify(filename)).toBe(400);
            expect(r.json.error.message).toBe("Invalid filename");
        }
        expect(readdirSync(dir)).toEqual([]);
    });

    it("save → restart → restore → continue equals the uninterrupted greedy run (or a clear 501 without engine support)", async () => {
        const prompt = "In a small village by the sea there lived an old fisherman";
        const full = await post(`${live.url}/completion`, { prompt, n_predict: 16, temperature: 0, id_slot: 0, return_tokens: true });
        const first = await post(`${live.url}/completion`, { prompt, n_predict: 8, temperature: 0, id_slot: 0, return_tokens: true });
        const save = await post(`${live.url}/slots/0?action=save`, { filename: "fish.bin" });
        const ctxProto = addon().Context.prototype as Record<string, unknown>;
        if (typeof ctxProto["seqStateSave"] !== "function") {
            expect(save.status).toBe(501);
            expect(save.json.error.message).toMatch(/sequence-state API/);
            return;
        }
        expect(save.status).toBe(200);
        expect(save.json.n_saved).toBe(first.json.tokens_cached);
        const other = await startServer(["-m", model, ...ARGS, "--slot-save-path", dir]);
        try {
            const restore = await post(`${other.url}/slots/1?action=restore`, { filename: "fish.bin" });
            expect(restore.status).toBe(200);
            expect(restore.json.n_restored).toBe(first.json.tokens_cached);
            const cont = await post(`${other.url}/completion`, { prompt: [...(await post(`${other.url}/tokenize`, { content: prompt, add_special: true })).json.tokens, ...first.json.tokens], n_predict: 8, temperature: 0, id_slot: 1, return_tokens: true });
            expect(cont.json.timings.prompt_n).toBe(1);
            expect([...first.json.tokens, ...cont.json.tokens]).toEqual(full.json.tokens);
            expect((await post(`${other.url}/slots/0?action=restore`, { filename: "missing.bin" })).status).toBe(400);
        } finally {
            await other.stop();
        }
    }, 60_000);

    it("a client that disconnects mid-stream cancels its generation and frees the slot", async () => {
        const ac = new AbortController();
        const res = await fetch(`${live.url}/v1/completions`, {
            method: "POST", signal: ac.signal, headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ prompt: "Tell me a long story", max_tokens: 100000, temperature: 0, stream: true, ignore_eos: true })
        });
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        await reader.read();
        await reader.read();
        ac.abort();
        expect(await until(() => allIdle(live.url))).toBe(true);
        const ac2 = new AbortController();
        const pending = fetch(`${live.url}/completion`, { method: "POST", signal: ac2.signal, body: JSON.stringify({ prompt: "Again", n_predict: 100000, ignore_eos: true }) }).catch(() => "aborted");
        expect(await until(async () => !(await allIdle(live.url)))).toBe(true);
        ac2.abort();
        expect(await pending).toBe("aborted");
        expect(await until(() => allIdle(live.url))).toBe(true);
        const m = await get(`${live.url}/metrics`);
        expect(Number(/^ikl_requests_cancelled_total (\d+)$/m.exec(m.text)?.[1])).toBeGreaterThanOrEqual(2);
    }, 30_000);

    it("more requests than slots wait in the queue and all complete", async () => {
        const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => post(`${live.url}/completion`, { prompt: `Request number ${i}`, n_predict: 5, temperature: 0 })));
        expect(rs.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
        expect(rs.every((r) => r.json.tokens_predicted === 5)).toBe(true);
        expect(await allIdle(live.url)).toBe(true);
    });
});

describe("SIGTERM", () => {
    it("finishes the request in flight, refuses new ones, exits 0", async () => {
        const s = await startServer(["-m", model, "-c", "512", "-t", "1"]);
        const inflight = post(`${s.url}/completion`, { prompt: "Count", n_predict: 60, temperature: 0, ignore_eos: true });
        expect(await until(async () => (await get(`${s.url}/health`)).json.slots_processing === 1)).toBe(true);
        s.proc.kill("SIGTERM");
        // the signal is handled asynchronously: ask only once the server says it is draining
        expect(await until(async () => /SIGTERM: finishing/.test(s.stderr()))).toBe(true);
        const late = await post(`${s.url}/completion`, { prompt: "late", n_predict: 2 }).catch(() => ({ status: 0 }));
        expect([0, 503]).toContain(late.status);
        const r = await inflight;
        expect(r.status).toBe(200);
        expect(r.json.tokens_predicted).toBe(60);
        const done = await s.stop();
        expect(done.code).toBe(0);
        expect(done.stderr).toMatch(/SIGTERM: finishing 1 request/);
    }, 60_000);
});
