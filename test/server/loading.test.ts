// The HTTP layer before the model is loaded (no sockets, no addon: hono's app.request): /health and generation
// endpoints answer 503 "Loading model" in OpenAI's error shape, /v1/models still answers.
import { describe, expect, it } from "vitest";
import { SAMPLING_DEFAULTS } from "../../src/options/sampling.js";
import type { ServerOptions } from "../../src/options/server.js";
import { buildApp } from "../../src/server/http.js";
import { Metrics } from "../../src/server/metrics.js";
import type { ServerState } from "../../src/server/drive.js";

const opts: ServerOptions = {
    modelPath: "m.gguf", host: "127.0.0.1", port: 0, parallel: 1, nPredict: -1, alias: undefined, apiKeys: ["k"], slotSavePath: undefined,
    metrics: true, noSlots: false, corsOrigins: [], chatTemplate: undefined, chatTemplateFile: undefined, ctxOverflow: "shift", similarity: 0.1,
    maxBodyBytes: 1024, maxQueue: 4, timeoutS: 60, ssePingMs: 0, sampling: SAMPLING_DEFAULTS
};

describe("while the model loads", () => {
    const state: ServerState = { opts, metrics: new Metrics(), ready: false, draining: false, alias: "m" };
    const app = buildApp(state);
    it("GET /health → 503 Loading model (no API key needed)", async () => {
        const r = await app.request("/health");
        expect(r.status).toBe(503);
        expect(await r.json()).toEqual({ error: { code: 503, message: "Loading model", type: "unavailable_error" } });
        expect(r.headers.get("server")).toBe("ikl");
    });
    it("generation endpoints → 503, /v1/models → 200", async () => {
        const r = await app.request("/v1/chat/completions", { method: "POST", body: "{}", headers: { Authorization: "Bearer k" } });
        expect(r.status).toBe(503);
        const m = await app.request("/v1/models");
        expect(m.status).toBe(200);
        expect(((await m.json()) as { data: { id: string }[] }).data[0]?.id).toBe("m");
    });
});
