// Slot save → new server → restore → continue, for every cache layout the engine has (llama GQA with and
// without the transposed V cache; deepseek2 MLA modes 0–3 × f16 / bf16 / q8_0 caches, and each mode without FA): the continued greedy tokens equal
// an uninterrupted run's, and a file saved under another model or layout is refused with a 400 (never a crash).
// Runs when the addon has the sequence-state API (Context.seqStateSave); slots.test.ts checks the 501 otherwise.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { addon, fixtureModel } from "../helpers/paths.js";
import { post, startServer } from "./live.js";

const hasStateApi = typeof (addon().Context.prototype as Record<string, unknown>)["seqStateSave"] === "function";
const dir = mkdtempSync(join(tmpdir(), "ikl-state-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TYPES = ["f16", "bf16", "q8_0"];
const cache = (t: string): string[] => ["-ctk", t, "-ctv", t];
const LAYOUTS: { name: string; model: string; args: string[] }[] = [
    ...TYPES.map((t) => ({ name: `llama ${t}`, model: "llama-tiny", args: cache(t) })),
    ...["f16", "bf16"].map((t) => ({ name: `llama ${t} no-fa (transposed V)`, model: "llama-tiny", args: [...cache(t), "-fa", "off"] })),
    ...[0, 1, 2, 3].flatMap((mla) => TYPES.map((t) => ({ name: `deepseek2 -mla ${mla} ${t}`, model: "ds-tiny", args: ["-mla", String(mla), ...cache(t)] }))),
    ...[0, 1, 2, 3].flatMap((mla) => ["f16", "bf16"].map((t) => ({ name: `deepseek2 -mla ${mla} ${t} no-fa${mla === 1 ? " (transposed)" : ""}`, model: "ds-tiny", args: ["-mla", String(mla), ...cache(t), "-fa", "off"] })))
];

describe.runIf(hasStateApi)("slot save/restore", { timeout: 120_000 }, () => {
    it.each(LAYOUTS)("$name: restore + continue equals the uninterrupted greedy run", async ({ name, model, args }) => {
        const path = await fixtureModel(model);
        const base = ["-m", path, "-c", "512", "-np", "2", "-t", "1", "--slot-save-path", dir, ...args];
        const file = `${name.replace(/[^a-z0-9]+/gi, "_")}.slot`;
        const prompt = "Once upon a time in a land far away there was";
        const a = await startServer(base);
        let first: number[];
        let full: number[];
        try {
            full = (await post(`${a.url}/completion`, { prompt, n_predict: 16, temperature: 0, id_slot: 0, return_tokens: true })).json.tokens;
            first = (await post(`${a.url}/completion`, { prompt, n_predict: 8, temperature: 0, id_slot: 0, return_tokens: true })).json.tokens;
            const save = await post(`${a.url}/slots/0?action=save`, { filename: file });
            expect(save.status, save.text).toBe(200);
        } finally {
            await a.stop();
        }
        const b = await startServer(base);
        try {
            const restore = await post(`${b.url}/slots/1?action=restore`, { filename: file });
            expect(restore.status, restore.text).toBe(200);
            const ids = (await post(`${b.url}/tokenize`, { content: prompt, add_special: true })).json.tokens as number[];
            const cont = await post(`${b.url}/completion`, { prompt: [...ids, ...first], n_predict: 8, temperature: 0, id_slot: 1, return_tokens: true });
            expect(cont.json.timings.prompt_n).toBe(1);
            expect([...first, ...cont.json.tokens]).toEqual(full);
        } finally {
            await b.stop();
        }
    });

    it("a file from another model or cache layout is refused with 400 and the server keeps serving", async () => {
        const llama = await fixtureModel("llama-tiny");
        const a = await startServer(["-m", llama, "-c", "512", "-t", "1", "--slot-save-path", dir]);
        try {
            await post(`${a.url}/completion`, { prompt: "Hello there", n_predict: 2, temperature: 0 });
            expect((await post(`${a.url}/slots/0?action=save`, { filename: "llama.slot" })).status).toBe(200);
        } finally {
            await a.stop();
        }
        const ds = await fixtureModel("ds-tiny");
        const c = await startServer(["-m", ds, "-mla", "3", "-c", "512", "-t", "1", "--slot-save-path", dir]);
        try {
            await post(`${c.url}/completion`, { prompt: "Hello there", n_predict: 2, temperature: 0 });
            expect((await post(`${c.url}/slots/0?action=save`, { filename: "ds-mla3.slot" })).status).toBe(200);
        } finally {
            await c.stop();
        }
        writeFileSync(join(dir, "junk.slot"), Buffer.from("IKLS not really a slot file".repeat(8)));
        const refusals: [string[], string][] = [
            [["-m", ds], "llama.slot"], // another model
            [["-m", llama, "-ctk", "q8_0", "-ctv", "q8_0"], "llama.slot"], // another cache type
            [["-m", llama, "-fa", "off"], "llama.slot"], // transposed V instead of rows
            [["-m", ds, "-mla", "2"], "ds-mla3.slot"], // another MLA mode
            [["-m", ds, "-mla", "3", "-ctk", "bf16"], "ds-mla3.slot"], // another latent cache type
            [["-m", llama], "junk.slot"] // not a slot file at all
        ];
        for (const [args, file] of refusals) {
            const b = await startServer([...args, "-c", "512", "-t", "1", "--slot-save-path", dir]);
            try {
                const r = await post(`${b.url}/slots/0?action=restore`, { filename: file });
                expect(r.status, `${args.join(" ")} ← ${file}: ${r.text}`).toBe(400);
                expect(r.json.error.message).toMatch(file === "junk.slot" ? /'junk.slot' is not an ikl slot file/ : /^Unable to restore slot: /);
                expect((await post(`${b.url}/completion`, { prompt: "Still fine", n_predict: 2 })).status).toBe(200);
            } finally {
                await b.stop();
            }
        }
    });
});
