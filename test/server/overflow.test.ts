// Context overflow with -c 256 on ds-tiny (deepseek2) and llama-tiny: a chat that overflows the slot several
// times keeps being answered under --ctx-overflow shift and reprefill and gets 400s naming the limit under
// error; a generation longer than the context continues past it; and the continuation after a shift equals a
// fresh greedy evaluation of exactly the tokens the shift keeps (BOS + the newer half): identical when the
// server re-evaluates them, and the same first tokens when the engine rotates the cached keys in place.
import { afterAll, describe, expect, it } from "vitest";
import { fixtureModel } from "../helpers/paths.js";
import { get, post, startServer, type Live } from "./live.js";

const started: Live[] = [];
afterAll(async () => {
    for (const s of started) await s.stop();
});

async function server(model: string, extra: string[], mode: string): Promise<Live> {
    const s = await startServer(["-m", await fixtureModel(model), ...extra, "-c", "256", "-t", "1", "--chat-template", "chatml", "--ctx-overflow", mode, "--metrics"]);
    started.push(s);
    return s;
}

const filler = (i: number): string => `Turn ${i}: please describe the weather, the sea, the hills and the old town in some detail.`;

async function conversation(s: Live): Promise<{ status: number; message: string }[]> {
    const messages: { role: string; content: string }[] = [{ role: "system", content: "You are a helpful assistant." }];
    const out: { status: number; message: string }[] = [];
    for (let i = 0; i < 7; i++) {
        messages.push({ role: "user", content: filler(i) });
        const r = await post(`${s.url}/v1/chat/completions`, { messages, max_tokens: 40, temperature: 0, ignore_eos: true });
        out.push({ status: r.status, message: r.json?.error?.message ?? "" });
        if (r.status !== 200) break;
        expect(r.json.usage.completion_tokens).toBe(40);
        expect(r.json.choices[0].message.content.length).toBeGreaterThan(0);
        messages.push({ role: "assistant", content: r.json.choices[0].message.content });
    }
    return out;
}

const shifts = async (s: Live): Promise<number> => Number(/^ikl_context_shifts_total (\d+)$/m.exec((await get(`${s.url}/metrics`)).text)?.[1]);

const CASES: { model: string; extra: string[]; all: boolean }[] = [
    { model: "ds-tiny", extra: ["-mla", "3"], all: true }, // MLA latent cache
    { model: "ds-tiny", extra: ["-mla", "0"], all: false }, // standard attention cache: shift only
    { model: "llama-tiny", extra: [], all: true }
];

describe.each(CASES)("$model $extra with -c 256", ({ model, extra, all }) => {
    for (const mode of all ? ["shift", "reprefill"] : ["shift"]) {
        it(`--ctx-overflow ${mode}: a conversation overflowing the context is answered every turn`, async () => {
            const s = await server(model, extra, mode);
            const turns = await conversation(s);
            expect(turns.map((t) => t.status)).toEqual([200, 200, 200, 200, 200, 200, 200]);
            expect(await shifts(s)).toBeGreaterThanOrEqual(3);
            const long = await post(`${s.url}/completion`, { prompt: filler(99), n_predict: 400, temperature: 0, ignore_eos: true });
            expect(long.status).toBe(200);
            expect(long.json.tokens_predicted).toBe(400);
            expect(long.json.truncated).toBe(true);
            expect((await get(`${s.url}/health`)).json.status).toBe("ok");
        }, 180_000);
    }

    it.runIf(all)("--ctx-overflow error: 400 with the limit and the requested size, server stays up", async () => {
        const s = await server(model, extra, "error");
        const turns = await conversation(s);
        const last = turns.at(-1) as { status: number; message: string };
        expect(turns.length).toBeGreaterThan(1);
        expect(last.status).toBe(400);
        expect(last.message).toMatch(/holds 256 tokens/);
        expect(last.message).toMatch(/= \d+ tokens/);
        const long = await post(`${s.url}/completion`, { prompt: "Hello", n_predict: 400 });
        expect(long.status).toBe(400);
        expect(long.json.error.message).toMatch(/max_tokens 400/);
        const unbounded = await post(`${s.url}/completion`, { prompt: "Hello", temperature: 0, ignore_eos: true });
        expect(unbounded.status).toBe(400);
        expect(unbounded.json.error.message).toMatch(/context_length_exceeded/);
        expect((await get(`${s.url}/health`)).json.status).toBe("ok");
    }, 180_000);

    it("the continuation after a shift equals a fresh evaluation of the kept tokens", async () => {
        const s = await server(model, extra, "shift");
        const prompt = (await post(`${s.url}/tokenize`, { content: filler(1), add_special: true })).json.tokens as number[];
        const n = 300 - prompt.length;
        const r = await post(`${s.url}/completion`, { prompt, n_predict: n, temperature: 0, ignore_eos: true, return_tokens: true, n_keep: 0 });
        const gen = r.json.tokens as number[];
        expect(gen).toHaveLength(n);
        // the shift happens when 256 tokens are cached: T[0:256] with T = prompt ++ gen; pending gen[k], k = 256 - |prompt|
        const all = [...prompt, ...gen];
        const k = 256 - prompt.length;
        const kept = [...all.slice(0, 1), ...all.slice(1 + 127, 256), gen[k] as number];
        const fresh = await post(`${s.url}/completion`, { prompt: kept, n_predict: n - k - 1, temperature: 0, ignore_eos: true, return_tokens: true, cache_prompt: false });
        const want = gen.slice(k + 1);
        const got = fresh.json.tokens as number[];
        let prefix = 0;
        while (prefix < want.length && got[prefix] === want[prefix]) prefix++;
        // recompute: identical; in-place rotation: the first tokens agree — a wrong shift (positions, rows) breaks
        // the very first one, while rounding differences between rotating and recomputing flip a greedy argmax of
        // these random-weight fixtures only later (measured: 4 of 43 on ds-tiny, 12 on llama-tiny)
        if (s.stderr().includes("re-evaluates the kept tokens")) expect(got).toEqual(want);
        else expect(prefix).toBeGreaterThanOrEqual(3);
    }, 180_000);
});
