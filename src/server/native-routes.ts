// The reference's own endpoints (spec/server.md §5.1–5.5, 5.11, 5.14–5.16): /health, /v1/models, /props,
// native /completion (streams without [DONE]), /tokenize, /detokenize, /apply-template, /slots and
// /slots/{id}?action=save|restore|erase, /list, /metrics. Handlers return plain objects or Responses; http.ts
// does routing, auth and error shaping.
import { basename } from "node:path";
import { badRequest, notSupported } from "./errors.js";
import { collect, loaded, stream, timings, type ServerState } from "./drive.js";
import { parseMessages, parsePrompt, renderChat } from "./openai.js";
import { GEN_FIELDS, genParams, rejectUnknown, bool, type Body } from "./request.js";
import { checkFilename, listSlotFiles, restoreSlot, saveSlot } from "./slot-files.js";
import type { TaskResult } from "./slots.js";

const NATIVE_FIELDS = [...GEN_FIELDS, "prompt", "return_tokens"];

export function health(s: ServerState, failOnNoSlot: boolean): { status: number; body: unknown } {
    if (!s.ready) return { status: 503, body: { error: { code: 503, message: "Loading model", type: "unavailable_error" } } };
    const { sched } = loaded(s);
    const idle = sched.slots.length - sched.busy;
    const status = idle > 0 ? "ok" : "no slot available";
    return { status: idle === 0 && failOnNoSlot ? 503 : 200, body: { status, slots_idle: idle, slots_processing: sched.busy } };
}

export function models(s: ServerState): unknown {
    const m = s.model?.meta;
    const nCtx = s.ctx?.nCtx ?? 0;
    const meta = m === undefined ? null : { vocab_type: m.vocabType === "spm" ? 1 : 2, n_vocab: m.nVocab, n_ctx_train: m.nCtxTrain, n_embd: m.nEmbd, n_params: m.nParams, size: m.sizeBytes };
    return {
        object: "list",
        data: [{ id: s.alias, object: "model", created: Math.floor(Date.now() / 1000), owned_by: "ikl", meta, max_model_len: nCtx }],
        models: [{ slug: s.alias, display_name: s.alias, context_window: nCtx }]
    };
}

function settings(s: ServerState): Record<string, unknown> {
    const d = s.opts.sampling;
    return {
        n_ctx: loaded(s).sched.nCtxSlot, n_predict: s.opts.nPredict, model: s.alias, seed: d.seed, temperature: d.temp, top_k: d.topK, top_p: d.topP, min_p: d.minP,
        typical_p: d.typical, repeat_last_n: d.repeatLastN, repeat_penalty: d.repeatPenalty, presence_penalty: d.presencePenalty, frequency_penalty: d.frequencyPenalty
    };
}

export function props(s: ServerState, short: boolean): unknown {
    const { model, ctx, sched } = loaded(s);
    const common = { model_name: basename(s.opts.modelPath), model_path: s.opts.modelPath, modalities: { vision: false, audio: false }, n_ctx: ctx.nCtx };
    if (short) return common;
    const piece = (id: number | null): string => (id === null ? "" : Buffer.from(model.tokenToPiece(id, true)).toString("utf8"));
    const tpl = s.template !== undefined && "source" in s.template ? s.template.source : "";
    return {
        system_prompt: "", model_alias: s.alias, model_path: s.opts.modelPath, default_generation_settings: settings(s), total_slots: sched.slots.length,
        model_name: common.model_name, chat_template: tpl, bos_token: piece(model.meta.bos), eos_token: piece(model.meta.eos), modalities: common.modalities,
        n_ctx: ctx.nCtx, ctx_overflow: s.opts.ctxOverflow
    };
}

function nativeResult(s: ServerState, r: TaskResult, prompt: string): Record<string, unknown> {
    const { sched } = loaded(s);
    return {
        content: r.text, generated_text: r.text, id_slot: r.slot, stop: true, model: s.alias, tokens_predicted: r.tokens.length,
        tokens_evaluated: r.nPrompt, generation_settings: settings(s), prompt, truncated: r.truncated, stopped_eos: r.stop === "eos",
        stopped_word: r.stop === "word", stopped_limit: r.stop === "limit", stopping_word: r.stoppingWord, tokens_cached: r.nPast, timings: timings(r, sched.nCtxSlot)
    };
}

export async function nativeCompletion(s: ServerState, body: Body, signal: AbortSignal): Promise<Response> {
    const { model, sched, limits } = loaded(s);
    rejectUnknown(body, NATIVE_FIELDS);
    const params = genParams(body, limits, "native");
    const prompt = parsePrompt(model, body["prompt"]);
    const text = typeof body["prompt"] === "string" ? body["prompt"] : Buffer.from(model.detokenize(prompt)).toString("utf8");
    const withTokens = bool(body, "return_tokens", false);
    const result = (r: TaskResult): Record<string, unknown> => ({ ...nativeResult(s, r, text), ...(withTokens ? { tokens: r.tokens } : {}) });
    if (!params.stream) return Response.json(result(await collect(sched, { prompt, params }, signal)));
    return stream(s, { prompt, params }, signal, {
        token: (sse, ev) => {
            if (ev.delta !== "") sse.send({ content: ev.delta, stop: false, id_slot: -1, multimodal: false });
        },
        done: (sse, r) => sse.send({ ...result(r), content: "" })
    }, false);
}

export function tokenize(s: ServerState, body: Body): unknown {
    const { model } = loaded(s);
    rejectUnknown(body, ["content", "add_special", "with_pieces"]);
    if (body["content"] === undefined || body["content"] === null) return { tokens: [] };
    const addSpecial = bool(body, "add_special", false);
    const withPieces = bool(body, "with_pieces", false);
    const v = body["content"];
    const ids = typeof v === "string" ? model.tokenize(v, addSpecial, true) : parsePrompt(model, v, "content");
    if (!withPieces) return { tokens: Array.from(ids) };
    return { tokens: Array.from(ids, (id) => ({ id, piece: Buffer.from(model.tokenToPiece(id)).toString("utf8") })) };
}

export function detokenize(s: ServerState, body: Body): unknown {
    const { model } = loaded(s);
    rejectUnknown(body, ["tokens"]);
    const v = body["tokens"];
    if (v === undefined || v === null) return { content: "" };
    if (!Array.isArray(v) || !v.every((t) => typeof t === "number" && Number.isInteger(t) && t >= 0 && t < model.meta.nVocab)) {
        throw badRequest(`'tokens' must be an array of token ids in 0..${model.meta.nVocab - 1}`);
    }
    return { content: Buffer.from(model.detokenize(Uint32Array.from(v as number[]))).toString("utf8") };
}

export function applyTemplate(s: ServerState, body: Body): unknown {
    const { model } = loaded(s);
    const add = body["add_generation_prompt"] === undefined ? true : body["add_generation_prompt"] === true;
    return { prompt: renderChat(s, model, parseMessages(body), add) };
}

export function slots(s: ServerState): unknown {
    if (s.opts.noSlots) throw notSupported("This server does not support slots endpoint. Start it without `--no-slots`");
    const { model, sched } = loaded(s);
    return sched.slots.map((slot) => ({
        id: slot.id, state: slot.task === undefined ? 0 : 1, is_processing: slot.task !== undefined, n_ctx: sched.nCtxSlot, n_past: slot.cache.length,
        prompt: Buffer.from(model.detokenize(Uint32Array.from(slot.cache))).toString("utf8"),
        next_token: { has_next_token: slot.task !== undefined, n_decoded: slot.task?.generated.length ?? 0 }, ...settings(s)
    }));
}

export async function slotAction(s: ServerState, idText: string, action: string | undefined, body: Body): Promise<unknown> {
    const { ctx, sched } = loaded(s);
    if (!/^\d+$/.test(idText)) throw badRequest("Invalid slot ID");
    const id = Number(idText);
    if (action === "erase") {
        return sched.withIdleSlot(id, async (slot) => {
            const n = slot.cache.length;
            ctx.kvRemove(id, 0, -1);
            slot.cache.length = 0;
            return { id_slot: id, n_erased: n };
        });
    }
    if (action !== "save" && action !== "restore") throw badRequest("Invalid action");
    const dir = s.opts.slotSavePath;
    if (dir === undefined) throw badRequest(`slot ${action} needs a directory: start the server with --slot-save-path DIR`);
    rejectUnknown(body, ["filename"]);
    const filename = checkFilename(body["filename"]);
    if (id >= sched.slots.length) throw badRequest("Invalid slot ID");
    const t0 = performance.now();
    if (action === "save") {
        return sched.withIdleSlot(id, async (slot) => {
            const n = await saveSlot(ctx, dir, filename, id, slot.cache);
            return { id_slot: id, filename, n_saved: slot.cache.length, n_written: n, timings: { save_ms: performance.now() - t0 } };
        });
    }
    return sched.withIdleSlot(id, async (slot) => {
        slot.cache.length = 0;
        const r = await restoreSlot(ctx, dir, filename, id, sched.nCtxSlot);
        slot.cache.push(...r.tokens);
        return { id_slot: id, filename, n_restored: r.tokens.length, n_read: r.bytes, timings: { restore_ms: performance.now() - t0 } };
    });
}

export async function list(s: ServerState): Promise<unknown> {
    const { model } = loaded(s);
    const dir = s.opts.slotSavePath;
    if (dir === undefined) throw badRequest("no slot directory: start the server with --slot-save-path DIR");
    return (await listSlotFiles(dir)).map(({ tokens, ...f }) => ({ ...f, prompt: Buffer.from(model.detokenize(Uint32Array.from(tokens))).toString("utf8") }));
}

export function metrics(s: ServerState): Response {
    if (!s.opts.metrics) throw notSupported("This server does not support metrics endpoint. Start it with `--metrics`");
    const { ctx, sched } = loaded(s);
    const text = s.metrics.render({ slotsTotal: sched.slots.length, processing: sched.busy, deferred: sched.queued, kvTokens: sched.kvUsed(), nCtx: ctx.nCtx });
    return new Response(text, { headers: { "Content-Type": "text/plain; version=0.0.4", "Process-Start-Time-Unix": String(Math.floor(s.metrics.started / 1000)) } });
}
