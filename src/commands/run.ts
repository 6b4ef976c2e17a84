// `ikl run`: llama-cli (examples/main) compatible text generation (spec/cli.md §3): the prompt is echoed and the
// continuation streamed to stdout as the model produces it; the model card, notes and the timing block go to
// stderr. Ctrl-C stops generation, prints what was produced and the timings, then exits 130. `-cnv` chats
// through the GGUF chat template (engine/chat/template.ts). The token loop lives in engine/generate.ts.
import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { Context, Model, Sampler } from "../engine/index.js";
import { IklError, INTERRUPTED_CODE, usageError } from "../engine/errors.js";
import { formatMainTimings, formatTimings, modelCard, newTimings, paddedCtx, processEscapes, Session } from "../engine/generate.js";
import { chatLoop } from "../engine/chat/loop.js";
import { withContextOptions, parseContextOptions, moeEngineOptions, type ContextOptions } from "../options/context.js";
import { withModelOptions, parseModelOptions, type ModelOptions } from "../options/model.js";
import { intInRange } from "../options/parsers.js";
import { withSamplingOptions, parseSamplingOptions, type SamplingOptions } from "../options/sampling.js";
import { refuseUnsupported } from "../options/support.js";
import { withSigint } from "../ui/sigint.js";
import { openPlacedModel, type OffloadOptions } from "../engine/placement-open.js";
import { parseOffloadOptions, withOffloadOptions } from "../options/offload.js";

export interface RunOptions {
    model: ModelOptions;
    offload: OffloadOptions;
    context: ContextOptions;
    sampling: SamplingOptions;
    prompt: string;
    nPredict: number;
    conversation: boolean;
    systemPrompt: string | undefined;
    chatTemplate: string | undefined;
    chatTemplateFile: string | undefined;
}

export function parseRunOptions(raw: Record<string, unknown>): RunOptions {
    const file = raw["file"] as string | undefined;
    if (file !== undefined && raw["prompt"] !== undefined) throw usageError("give either -p or -f, not both");
    let prompt = (raw["prompt"] as string | undefined) ?? "";
    if (file !== undefined) {
        try {
            prompt = readFileSync(file, "utf8").replace(/\n$/, "");
        } catch (e) {
            throw new IklError("IKL_E_IO", `${file}: cannot read prompt file: ${(e as Error).message}`);
        }
    } else if (raw["escape"] !== false) prompt = processEscapes(prompt);
    return {
        model: parseModelOptions(raw),
        offload: parseOffloadOptions(raw),
        context: parseContextOptions(raw),
        sampling: parseSamplingOptions(raw),
        prompt,
        nPredict: (raw["nPredict"] as number | undefined) ?? -1,
        conversation: raw["conversation"] === true,
        systemPrompt: raw["systemPrompt"] as string | undefined,
        chatTemplate: raw["chatTemplate"] as string | undefined,
        chatTemplateFile: raw["chatTemplateFile"] as string | undefined
    };
}

async function run(o: RunOptions): Promise<void> {
    const timings = newTimings();
    const open = { useMmap: o.model.mmap, threads: o.model.threads, runTimeRepack: o.model.runTimeRepack };
    const out = (t: string): void => void process.stdout.write(t);
    const model = await openPlacedModel(o.model.model, open, o.model, o.context, o.offload, out, (w) => void process.stderr.write(`${w}\n`));
    if (model === null) return; // --dry-run: placement printed, nothing loaded
    const fa = o.context.flashAttn !== "off";
    const nCtx = paddedCtx(o.context.ctxSize === 0 ? model.meta.nCtxTrain : Math.max(8, o.context.ctxSize), fa);
    const ctx = await Context.create(model, {
        nCtx, nBatch: Math.min(o.context.batchSize, nCtx), nUbatch: o.context.ubatchSize, threads: o.model.threads, threadsBatch: o.model.threadsBatch,
        typeK: o.context.cacheTypeK, typeV: o.context.cacheTypeV, flashAttn: o.context.flashAttn,
        ...moeEngineOptions(o.context)
    });
    timings.loadMs = performance.now() - timings.startMs;
    process.stderr.write(`${modelCard(model, o.model.model, ctx.nCtx)}\n`);
    process.stderr.write(`${ctx.kvSizeLine}\n`);
    if ((!o.model.mmap && !o.model.runTimeRepack) || o.model.mlock) process.stderr.write("note: --no-mmap/--mlock are accepted; the engine always maps the model read-only\n");
    if (o.model.runTimeRepack) process.stderr.write(`run-time repack: ${model.meta.repackedTensors} tensors repacked into row-interleaved layouts\n`);
    const s = o.sampling;
    const sampler = Sampler.create({ temp: s.temp, topK: s.topK, topP: s.topP, minP: s.minP, typicalP: s.typical, repeatPenalty: s.repeatPenalty,
        repeatLastN: s.repeatLastN === -1 ? ctx.nCtx : s.repeatLastN, presencePenalty: s.presencePenalty, frequencyPenalty: s.frequencyPenalty, seed: s.seed });
    const session = new Session(model, ctx, Math.min(o.context.batchSize, nCtx), timings);
    const write = (b: Uint8Array): void => void process.stdout.write(b);
    const interrupted = await withSigint(async (signal) => {
        if (o.conversation) return chatLoop(session, sampler, o, signal, write);
        const tokens = model.tokenize(o.prompt, true, true);
        if (tokens.length > ctx.nCtx - 4) throw new IklError("IKL_E_INVALID", `prompt is too long (${tokens.length} tokens, max ${ctx.nCtx - 4}); raise --ctx-size (now ${ctx.nCtx})`);
        for (const t of tokens) write(model.tokenToPiece(t));
        const first = await session.feed(tokens, sampler, signal);
        if (first === undefined) return true;
        const { reason } = await session.generate(first, sampler, o.nPredict, signal, write);
        if (reason === "eog") process.stderr.write(" [end of text]\n");
        if (reason === "context") process.stderr.write(`\n\nrun: context full (n_ctx = ${ctx.nCtx}), stopping; raise --ctx-size to generate more\n`);
        return reason === "interrupted";
    });
    // as llama-cli: the `main:` block at a normal end, the `llama_print_timings:` block on Ctrl-C
    process.stderr.write(interrupted ? formatTimings(timings) : formatMainTimings(timings));
    if (interrupted) throw new IklError(INTERRUPTED_CODE, "interrupted");
}

export function runCommand(): Command {
    const cmd = new Command("run").description("generate text from a prompt, or chat (-cnv), like llama-cli");
    cmd.addOption(new Option("-p, --prompt <TEXT>", "prompt text (escapes such as \\n are processed unless --no-escape)").helpGroup("Prompt:"))
        .addOption(new Option("-f, --file <FILE>", "read the prompt from FILE (one trailing newline removed)").helpGroup("Prompt:"))
        .addOption(new Option("-n, --n-predict <N>", "tokens to generate; -1 = until end of text or context full").argParser(intInRange(-2, 1 << 30)).default(-1).helpGroup("Prompt:"))
        .addOption(new Option("-e, --escape", "process escapes in the prompt (default)").helpGroup("Prompt:"))
        .addOption(new Option("--no-escape", "do not process escapes in the prompt").helpGroup("Prompt:"))
        .addOption(new Option("--conversation", "chat mode: apply the chat template and read turns from stdin").helpGroup("Chat:"))
        .addOption(new Option("--system-prompt <TEXT>", "system message for --conversation").helpGroup("Chat:"))
        .addOption(new Option("--chat-template <NAME|JINJA>", "built-in template name or a Jinja template (default: the model's)").helpGroup("Chat:"))
        .addOption(new Option("--chat-template-file <FILE>", "read the Jinja chat template from FILE").helpGroup("Chat:"));
    withModelOptions(cmd);
    withOffloadOptions(cmd);
    withContextOptions(cmd);
    withSamplingOptions(cmd);
    return refuseUnsupported(cmd)
        .addHelpText("after", ["", "Examples:", '  ikl run -m model.gguf -p "Once upon a time" -n 64 --temp 0', "  ikl run -m model.gguf -cnv -sys \"You are terse.\"", "  ikl run -m model.gguf -f prompt.txt -c 8192 -t 16"].join("\n"))
        .action(async (raw: Record<string, unknown>) => run(parseRunOptions(raw)));
}
