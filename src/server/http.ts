// The HTTP layer of `ikl server` (hono on @hono/node-server): middleware in the reference's order (CORS — off
// unless --cors-origins —, loading state, API key; spec/server.md §2), the route table, OpenAI-shaped errors for
// every failure (malformed JSON, oversized bodies, unknown paths) and listen/close. Handlers live in openai.ts
// and native-routes.ts; the scheduler in slots.ts.
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { serve } from "@hono/node-server";
import { Hono, type Context as HonoContext } from "hono";
import { ApiError, toApiError } from "./errors.js";
import type { ServerState } from "./drive.js";
import { chatCompletions, completions } from "./openai.js";
import * as routes from "./native-routes.js";
import { parseBody, type Body } from "./request.js";

const PUBLIC = new Set(["/health", "/v1/health", "/models", "/v1/models"]);
const ALWAYS_DURING_LOAD = new Set(["/models", "/v1/models", "/health", "/v1/health"]);
const GENERATION = new Set(["/completion", "/completions", "/v1/completions", "/chat/completions", "/v1/chat/completions"]);

function errorResponse(e: ApiError, extra: Record<string, string> = {}): Response {
    return Response.json(e.body(), { status: e.status, headers: extra });
}

function corsHeaders(s: ServerState, origin: string | undefined): Record<string, string> {
    const allowed = s.opts.corsOrigins;
    if (origin === undefined || allowed.length === 0) return {};
    if (!allowed.includes("*") && !allowed.includes(origin)) return {};
    return { "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", Vary: "Origin" };
}

function authorized(s: ServerState, c: HonoContext): boolean {
    if (s.opts.apiKeys.length === 0) return true;
    const auth = c.req.header("authorization");
    const bearer = auth !== undefined && /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, "").trim() : undefined;
    const key = bearer ?? c.req.header("x-api-key");
    return key !== undefined && s.opts.apiKeys.includes(key);
}

async function readBody(s: ServerState, c: HonoContext, optional = false): Promise<Body> {
    const declared = Number(c.req.header("content-length") ?? "0");
    if (declared > s.opts.maxBodyBytes) throw new ApiError(413, "invalid_request_error", `request body is ${declared} bytes; the limit is ${s.opts.maxBodyBytes} (--max-body-size)`);
    const text = await c.req.text();
    if (optional && text.trim() === "") return {};
    return parseBody(text, s.opts.maxBodyBytes);
}

export function buildApp(s: ServerState): Hono {
    const app = new Hono();
    app.use("*", async (c, next) => {
        const path = c.req.path;
        const cors = corsHeaders(s, c.req.header("origin"));
        if (c.req.method === "OPTIONS" && Object.keys(cors).length > 0) {
            return new Response(null, { status: 204, headers: { ...cors, "Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "*" } });
        }
        let res: Response;
        if (!s.ready && !ALWAYS_DURING_LOAD.has(path)) res = errorResponse(new ApiError(503, "unavailable_error", "Loading model"));
        else if (!PUBLIC.has(path) && !authorized(s, c)) res = errorResponse(new ApiError(401, "authentication_error", "Invalid API Key"));
        else if (s.draining && GENERATION.has(path)) res = errorResponse(new ApiError(503, "unavailable_error", "the server is shutting down"));
        else {
            await next();
            res = c.res;
        }
        const headers = new Headers(res.headers);
        headers.set("Server", "ikl");
        for (const [k, v] of Object.entries(cors)) headers.set(k, v);
        c.res = new Response(res.body, { status: res.status, headers }); // after next(), hono takes c.res, not a return value
        return c.res;
    });
    app.onError((e) => errorResponse(toApiError(e)));
    app.notFound(() => errorResponse(new ApiError(404, "not_found_error", "File Not Found")));

    const json = (v: unknown, status = 200): Response => Response.json(v, { status });
    for (const p of ["/health", "/v1/health"]) {
        app.get(p, (c) => {
            const h = routes.health(s, c.req.query("fail_on_no_slot") !== undefined);
            return json(h.body, h.status);
        });
    }
    for (const p of ["/models", "/v1/models"]) app.get(p, () => json(routes.models(s)));
    app.get("/props", () => json(routes.props(s, false)));
    app.get("/v1/props", () => json(routes.props(s, true)));
    for (const p of ["/chat/completions", "/v1/chat/completions"]) app.post(p, async (c) => chatCompletions(s, await readBody(s, c), c.req.raw.signal));
    app.post("/v1/completions", async (c) => completions(s, await readBody(s, c), c.req.raw.signal));
    for (const p of ["/completion", "/completions"]) app.post(p, async (c) => routes.nativeCompletion(s, await readBody(s, c), c.req.raw.signal));
    app.post("/tokenize", async (c) => json(routes.tokenize(s, await readBody(s, c))));
    app.post("/detokenize", async (c) => json(routes.detokenize(s, await readBody(s, c))));
    app.post("/apply-template", async (c) => json(routes.applyTemplate(s, await readBody(s, c))));
    app.get("/slots", () => json(routes.slots(s)));
    app.post("/slots/:id", async (c) => json(await routes.slotAction(s, c.req.param("id"), c.req.query("action"), await readBody(s, c, true))));
    app.get("/list", async () => json(await routes.list(s)));
    app.get("/metrics", () => routes.metrics(s));
    const noEmbeddings = (): Response => errorResponse(new ApiError(501, "not_supported_error", "This server does not support embeddings yet"));
    for (const p of ["/embedding", "/embeddings", "/v1/embeddings"]) app.post(p, noEmbeddings);
    return app;
}

export interface Listening {
    server: Server;
    port: number;
    host: string;
    /** Resolves once every response in progress has been sent (or its client has gone). */
    responsesDone: () => Promise<void>;
}

export function listen(app: Hono, s: ServerState): Promise<Listening> {
    return new Promise((resolve, reject) => {
        const server = serve({ fetch: app.fetch, hostname: s.opts.host, port: s.opts.port }) as Server;
        server.requestTimeout = s.opts.timeoutS * 1000;
        // idle keep-alive sockets live longer than clients' own reuse window (undici: 4 s), so a client never
        // reuses a socket that the server is closing at that moment ("other side closed")
        server.keepAliveTimeout = 65_000;
        server.headersTimeout = Math.min(66_000, server.requestTimeout);
        let open = 0;
        const waiters: (() => void)[] = [];
        server.on("request", (_req, res) => {
            open++;
            res.once("close", () => {
                if (--open === 0) for (const w of waiters.splice(0)) w();
            });
        });
        const responsesDone = (): Promise<void> => (open === 0 ? Promise.resolve() : new Promise((r) => waiters.push(r)));
        server.once("error", reject);
        server.once("listening", () => {
            const a = server.address() as AddressInfo;
            resolve({ server, port: a.port, host: s.opts.host, responsesDone });
        });
    });
}
