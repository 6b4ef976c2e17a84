// `ikl server` (alias `serve`): an OpenAI-compatible HTTP server like ik_llama.cpp's llama-server (spec/server.md,
// spec/cli.md §4). It listens first (/health answers 503 while the model loads), then loads the model and one
// Context whose KV cache the -np slots share, and serves until SIGTERM or Ctrl-C, which stop new generations,
// let the ones in flight finish, and exit 0 (a second Ctrl-C exits at once). Logs go to stderr.
import { Command } from "commander";
import { Context, Model } from "../engine/index.js";
import { placementFor } from "../engine/placement-open.js";
import { ChatTemplate } from "../engine/chat/template.js";
import { modelCard, paddedCtx } from "../engine/generate.js";
import { withContextOptions, parseContextOptions, moeEngineOptions, type ContextOptions } from "../options/context.js";
import { withModelOptions, parseModelOptions, type ModelOptions } from "../options/model.js";
import { withSamplingOptions, parseSamplingOptions } from "../options/sampling.js";
import { withServerOptions, parseServerOptions, type ServerOptions } from "../options/server.js";
import { refuseUnsupported } from "../options/support.js";
import { IklError, INTERRUPTED_CODE, usageError } from "../engine/errors.js";
import { buildApp, listen } from "../server/http.js";
import { badRequest } from "../server/errors.js";
import type { ServerState } from "../server/drive.js";
import { Metrics } from "../server/metrics.js";
import { Scheduler } from "../server/slots.js";
import { stateSupported } from "../server/slot-files.js";

export interface ServerCommandOptions {
    model: ModelOptions;
    context: ContextOptions;
    server: ServerOptions;
}

export function parseServerCommandOptions(raw: Record<string, unknown>): ServerCommandOptions {
    const model = parseModelOptions(raw);
    const context = parseContextOptions(raw);
    const server = parseServerOptions(raw, model.model, parseSamplingOptions(raw));
    if (context.ctxSize !== 0 && context.ctxSize < 16 * server.parallel) throw usageError(`-c ${context.ctxSize} is too small for -np ${server.parallel}: each slot needs at least 16 tokens`);
    return { model, context, server };
}

const log = (line: string): void => void process.stderr.write(`server: ${line}\n`);

/** Loads model, context, template and scheduler into `s` (the HTTP server is already answering 503). */
async function load(s: ServerState, o: ServerCommandOptions): Promise<void> {
    // -ngl/-ot/… → an explicit device per tensor (engine/placement.ts), as in `ikl run`; -rtr repacks the CPU ones
    const shape = { ctxSize: o.context.ctxSize, ubatchSize: o.context.ubatchSize, cacheTypeK: o.context.cacheTypeK, cacheTypeV: o.context.cacheTypeV };
    const placement = await placementFor(o.model.model, o.model, shape, log);
    const model = await Model.open(o.model.model, { useMmap: o.model.mmap, threads: o.model.threads, runTimeRepack: o.model.runTimeRepack, placement });
    const fa = o.context.flashAttn !== "off";
    const nCtx = paddedCtx(o.context.ctxSize === 0 ? model.meta.nCtxTrain : o.context.ctxSize, fa);
    const nBatch = Math.min(o.context.batchSize, nCtx);
    const ctx = await Context.create(model, {
        nCtx, nBatch, nUbatch: Math.min(o.context.ubatchSize, nBatch), threads: o.model.threads, threadsBatch: o.model.threadsBatch,
        typeK: o.context.cacheTypeK, typeV: o.context.cacheTypeV, flashAttn: o.context.flashAttn, ...moeEngineOptions(o.context)
    });
    process.stderr.write(`${modelCard(model, o.model.model, ctx.nCtx)}\n${ctx.kvSizeLine}\n`);
    const so = o.server;
    try {
        s.template = ChatTemplate.resolve({ file: so.chatTemplateFile, nameOrText: so.chatTemplate, modelTemplate: model.meta.chatTemplate });
        log(`chat template: ${s.template.origin}`);
    } catch (e) {
        if (so.chatTemplate !== undefined || so.chatTemplateFile !== undefined) throw e;
        s.template = badRequest("the model has no chat template; start the server with --chat-template NAME or --chat-template-file FILE");
        log("the model has no chat template: /v1/chat/completions answers 400 (pass --chat-template)");
    }
    s.sched = new Scheduler(model, ctx, { nParallel: so.parallel, nBatch, overflow: so.ctxOverflow, similarity: so.similarity, maxQueue: so.maxQueue }, s.metrics);
    s.limits = { nVocab: model.meta.nVocab, nPredictCap: so.nPredict, maxStop: 16, maxStopLength: 1024, defaults: so.sampling };
    [s.model, s.ctx] = [model, ctx];
    log(`${so.parallel} slot(s) of ${s.sched.nCtxSlot} tokens (n_ctx ${ctx.nCtx}), n_batch ${nBatch}, --ctx-overflow ${so.ctxOverflow}`);
    if (so.ctxOverflow === "shift" && !s.sched.canShift) log("context shift re-evaluates the kept tokens (this engine build has no in-place K-shift yet)");
    if (so.slotSavePath !== undefined && !stateSupported(ctx)) log("slot save/restore answers 501: this engine build has no sequence-state API yet");
}

/** Resolves on the first SIGTERM or SIGINT; later SIGTERMs are ignored while draining, a second SIGINT reaches
 *  src/cli.ts's handler (exit 130 at once). */
function stopSignal(): { promise: Promise<string>; dispose: () => void } {
    const saved = process.listeners("SIGINT");
    process.removeAllListeners("SIGINT");
    let fired = false;
    let resolveStop: (sig: string) => void = () => undefined;
    const promise = new Promise<string>((r) => (resolveStop = r));
    const restoreInt = (): void => {
        process.removeListener("SIGINT", onInt);
        for (const l of saved) process.once("SIGINT", l as () => void);
    };
    const onTerm = (): void => {
        if (fired) return void log("SIGTERM again: still finishing the requests in flight");
        fired = true;
        restoreInt();
        resolveStop("SIGTERM");
    };
    const onInt = (): void => {
        fired = true;
        restoreInt();
        resolveStop("SIGINT");
    };
    process.on("SIGTERM", onTerm);
    process.once("SIGINT", onInt);
    return {
        promise,
        dispose: () => {
            process.removeListener("SIGTERM", onTerm);
            if (!fired) restoreInt();
        }
    };
}

async function serveCommand(o: ServerCommandOptions): Promise<void> {
    const s: ServerState = { opts: o.server, metrics: new Metrics(), ready: false, draining: false, alias: o.server.alias ?? o.server.modelPath };
    const stop = stopSignal();
    const { server, port, host, responsesDone } = await listen(buildApp(s), s);
    log(`listening on http://${host.includes(":") ? `[${host}]` : host}:${port} (loading the model)`);
    try {
        await Promise.race([load(s, o), stop.promise.then(() => Promise.reject(new IklError(INTERRUPTED_CODE, "interrupted while loading the model")))]);
        s.ready = true;
        log(`ready: http://${host.includes(":") ? `[${host}]` : host}:${port}${o.server.apiKeys.length > 0 ? " (API key required)" : ""}`);
        const sig = await stop.promise;
        s.draining = true;
        log(`${sig}: finishing ${s.sched?.busy ?? 0} request(s) in flight, then exiting`);
        await s.sched?.idle();
        await responsesDone();
    } finally {
        stop.dispose();
        await new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
        });
    }
    log("stopped");
}

export function serverCommand(): Command {
    const cmd = new Command("server").alias("serve").description("OpenAI-compatible HTTP server with parallel slots, like llama-server");
    withModelOptions(cmd);
    withContextOptions(cmd);
    withSamplingOptions(cmd);
    withServerOptions(cmd);
    return refuseUnsupported(cmd)
        .addHelpText("after", [
            "",
            "Endpoints: /v1/chat/completions, /v1/completions, /v1/models, /health, /completion, /tokenize, /detokenize,",
            "  /apply-template, /props, /slots, /slots/ID?action=save|restore|erase, /list, /metrics (see README).",
            "",
            "Examples:",
            "  ikl server -m model.gguf -c 8192 -np 4 --port 8080",
            "  ikl server -m model.gguf --api-key $KEY --metrics --slot-save-path ./slots",
            "  ikl server -m ds.gguf -c 32768 --ctx-overflow reprefill --chat-template chatml"
        ].join("\n"))
        .action(async (raw: Record<string, unknown>) => serveCommand(parseServerCommandOptions(raw)));
}
