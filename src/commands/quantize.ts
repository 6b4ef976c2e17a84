// `ikl quantize [options] IN [OUT] TYPE [NTHREADS]`: llama-quantize compatible (spec/cli.md §8, quants.md §10–§11).
// TypeScript decides every tensor's type (src/engine/recipes.ts, the reference's presets and mixing rules,
// --custom-q, the role options) and which imatrix entry feeds it; the engine writes the bytes through a temporary
// file renamed when complete. stderr carries the reference's log (one line per tensor, model/quant size) and, on a
// terminal, a progress bar with ETA; stdout the reference's timing lines — or, with --dry-run, the plan (a table,
// or --json). Ctrl-C stops the job and leaves no file at OUT (exit 130).
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { Command, Option } from "commander";
import { IklError, usageError } from "../engine/errors.js";
import { checkQuantizers, filterImatrix, openSource, planFor, quantizerTypes, readImatrix, resolveImatrix, runQuantize } from "../engine/quantize.js";
import type { ImatrixInfo, QuantizeProgress, QuantizeSource } from "../engine/quantize.js";
import type { PlanOptions, PlannedTensor, QuantPlan } from "../engine/recipes.js";
import { PRESET_NAMES, presetEntryName } from "../engine/recipes/ftypes.js";
import { sprintf } from "../ui/printf.js";
import { isCancelled, interrupted, withSigint } from "../ui/sigint.js";

const MiB = 1024 * 1024;

interface Positionals {
    input: string;
    output: string;
    type: string;
    threads: number;
}

/** The reference's positional rule: if the 2nd positional is a type, OUT is `<dir of IN>/ggml-model-<TYPE>.gguf`. */
export function parsePositionals(args: string[]): Positionals {
    const [input, a, b, c, ...rest] = args;
    if (input === undefined) throw usageError("missing IN (the model to quantize)", "usage: ikl quantize [options] IN [OUT] TYPE [NTHREADS]");
    let output: string;
    let type: string;
    let threads: string | undefined;
    const entry = a === undefined ? undefined : presetEntryName(a);
    if (a !== undefined && entry !== undefined) {
        type = a;
        output = join(dirname(input), `ggml-model-${entry}.gguf`);
        threads = b;
        if (c !== undefined) throw usageError(`unexpected argument '${c}'`, "usage: ikl quantize [options] IN [OUT] TYPE [NTHREADS]");
    } else {
        if (a === undefined) throw usageError("missing OUT and TYPE", "usage: ikl quantize [options] IN [OUT] TYPE [NTHREADS]");
        if (b === undefined) throw usageError("missing TYPE", `valid types: ${PRESET_NAMES.join(", ")}`);
        if (presetEntryName(b) === undefined) throw usageError(`unknown quantization type '${b}'`, `valid types: ${PRESET_NAMES.join(", ")} (or their numeric ids)`);
        output = a;
        type = b;
        threads = c;
        if (rest.length > 0) throw usageError(`unexpected argument '${rest[0] ?? ""}'`, "usage: ikl quantize [options] IN [OUT] TYPE [NTHREADS]");
    }
    let n = 0;
    if (threads !== undefined) {
        if (!/^\d+$/.test(threads)) throw usageError(`invalid NTHREADS '${threads}'`, "NTHREADS is a whole number (0 = all cores)");
        n = Number(threads);
    }
    return { input, output, type, threads: n > 0 ? n : availableParallelism() };
}

const list = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

const ROLE_OPTIONS: [string, keyof PlanOptions, string][] = [
    ["--output-tensor-type", "outputTensorType", "type for output.weight"],
    ["--token-embedding-type", "tokenEmbeddingType", "type for token_embd.weight"],
    ["--per-layer-token-embedding-type", "perLayerTokenEmbeddingType", "type for per_layer_token_embd.weight"],
    ["--ffn-gate-inp-type", "ffnGateInpType", "quantize the MoE router ffn_gate_inp to this type (otherwise kept)"],
    ["--attn-q-type", "attnQType", "type for attn_q"],
    ["--attn-k-type", "attnKType", "type for attn_k"],
    ["--attn-v-type", "attnVType", "type for attn_v"],
    ["--attn-qkv-type", "attnQkvType", "type for attn_qkv"],
    ["--attn-output-type", "attnOutputType", "type for attn_output"],
    ["--ffn-gate-type", "ffnGateType", "type for ffn_gate"],
    ["--ffn-down-type", "ffnDownType", "type for ffn_down"],
    ["--ffn-up-type", "ffnUpType", "type for ffn_up"]
];

function shapeText(shape: number[]): string {
    return [0, 1, 2, 3].map((i) => sprintf("%5d", shape[i] ?? 1)).join(", ");
}

/** The reference's per-tensor log line (llama_model_quantize_internal). */
export function tensorLine(i: number, n: number, t: PlannedTensor, srcBytes: number): string {
    const head = sprintf("[%4d/%4d] %36s - [%s], type = %6s, ", i + 1, n, t.name, shapeText(t.shape), t.from);
    if (!t.quantize) return `${head}${sprintf("size = %8.3f MB", srcBytes / MiB)}`;
    return `${head}converting to ${t.to} .. ${sprintf("size = %8.2f MiB -> %8.2f MiB", srcBytes / MiB, t.bytes / MiB)}`;
}

function fallbackNote(t: PlannedTensor): string | undefined {
    const m = /fallback: (\d+) % 256 ≠ 0 → (\S+)/.exec(t.rule);
    if (m === null) return undefined;
    return `change_type_if_necessary : tensor cols ${m[1]} x ${t.shape[1] ?? 1} are not divisible by 256 - using fallback quantization ${m[2]}`;
}

interface Raw {
    allowRequantize?: boolean;
    leaveOutputTensor?: boolean;
    pure?: boolean;
    imatrix?: string;
    hideImatrix?: boolean;
    ignoreImatrixRules?: boolean;
    includeWeights?: string[];
    excludeWeights?: string[];
    customQ?: string[];
    dryRun?: boolean;
    json?: boolean;
    quiet?: boolean;
    [k: string]: unknown;
}

function planOptions(raw: Raw, type: string, imatrixPresent: boolean): PlanOptions {
    const o: PlanOptions = {
        ftype: type,
        pure: raw.pure === true,
        leaveOutputTensor: raw.leaveOutputTensor === true,
        allowRequantize: raw.allowRequantize === true,
        ignoreImatrixRules: raw.ignoreImatrixRules === true,
        imatrixPresent,
        includeWeights: raw.includeWeights ?? [],
        excludeWeights: raw.excludeWeights ?? []
    };
    if (raw.customQ !== undefined && raw.customQ.length > 0) o.customQ = raw.customQ.join(",");
    for (const [, key] of ROLE_OPTIONS) {
        const v = raw[key];
        if (typeof v === "string") (o as unknown as Record<string, unknown>)[key] = v;
    }
    return o;
}

function printPlan(src: QuantizeSource, plan: QuantPlan, missing: string | undefined, json: boolean): void {
    const srcTotal = src.srcBytes.reduce((a, b) => a + b, 0);
    if (json) {
        const doc = {
            schema: 1,
            input: src.path,
            ftype: plan.ftype,
            ftypeId: plan.ftypeId,
            tensors: plan.tensors.map((t, i) => ({ name: t.name, shape: t.shape, from: t.from, to: t.to, quantize: t.quantize, rule: t.rule,
                srcBytes: src.srcBytes[i] ?? 0, bytes: t.bytes })),
            srcBytes: srcTotal,
            totalBytes: plan.totalBytes,
            bpw: plan.bpw,
            warnings: [...plan.warnings, ...(missing === undefined ? [] : [`no quantizer yet for ${missing}`])]
        };
        process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
        return;
    }
    const w = Math.max(4, ...plan.tensors.map((t) => t.name.length));
    const lines = [sprintf(`%4s  %-${w}s  %-28s  %-19s  %12s  %s`, "#", "tensor", "shape", "type", "bytes", "rule")];
    plan.tensors.forEach((t, i) => {
        const ty = t.quantize ? `${t.from} → ${t.to}` : t.from;
        lines.push(sprintf(`%4d  %-${w}s  %-28s  %-19s  %12d  %s`, i + 1, t.name, `[${t.shape.join(", ")}]`, ty, t.bytes, t.rule));
    });
    const n = plan.tensors.filter((t) => t.quantize).length;
    lines.push("", `${plan.ftype}: ${n} of ${plan.tensors.length} tensors quantized; ${sprintf("%.2f MiB -> %.2f MiB, %.4f bpw", srcTotal / MiB, plan.totalBytes / MiB, plan.bpw)}`);
    process.stdout.write(`${lines.join("\n")}\n`);
}

function etaText(s: number): string {
    if (!Number.isFinite(s) || s < 0) return "--:--";
    const m = Math.floor(s / 60);
    return `${m}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

async function action(args: string[], raw: Raw): Promise<void> {
    const pos = parsePositionals(args);
    if ((raw.includeWeights?.length ?? 0) > 0 && (raw.excludeWeights?.length ?? 0) > 0) {
        throw usageError("--include-weights and --exclude-weights cannot be used together");
    }
    const quiet = raw.quiet === true;
    const log = (s: string): void => {
        if (!quiet) process.stderr.write(`${s}\n`);
    };
    const t0 = performance.now();
    const src = await openSource(pos.input);
    let imatrix: ImatrixInfo | undefined;
    let entries = new Map<string, number>();
    if (raw.imatrix !== undefined) {
        imatrix = await readImatrix(raw.imatrix);
        if (imatrix.dataset !== null) log(`load_imatrix: imatrix dataset='${imatrix.dataset}'`);
        log(`load_imatrix: loaded ${imatrix.entries.length} importance matrix entries from ${raw.imatrix} computed on ${imatrix.chunks} chunks (${imatrix.format} format)`);
        entries = filterImatrix(imatrix.entries, raw.includeWeights ?? [], raw.excludeWeights ?? []);
        if (entries.size > 0) log(`prepare_imatrix: have ${entries.size} importance matrix entries`);
    }
    if (raw.customQ !== undefined) for (const r of raw.customQ.join(",").split(",").filter((x) => x.trim() !== "")) log(`Adding custom rule ${r.replace("=", " -> ")}`);
    const plan = planFor(src, planOptions(raw, pos.type, entries.size > 0));
    const res = resolveImatrix(plan, entries, raw.ignoreImatrixRules === true);
    const missing = checkQuantizers(plan, quantizerTypes());
    if (raw.dryRun === true) {
        if (raw.json !== true) for (const note of res.notes) log(`====== ${note}`);
        for (const w of plan.warnings) log(`WARNING: ${w}`);
        if (missing !== undefined) log(`WARNING: no quantizer yet for ${missing}; a real run would stop`);
        printPlan(src, plan, missing, raw.json === true);
        return;
    }
    if (raw.json === true) throw usageError("--json goes with --dry-run (a real run prints the reference's log)");
    if (missing !== undefined) {
        throw new IklError("IKL_E_UNSUPPORTED", `ikl cannot quantize to ${missing} yet: this type has no quantizer in this build`,
            "choose another TYPE, or move those tensors to a supported type with --custom-q 'REGEX=TYPE'");
    }
    const kv: { key: string; str?: string; int?: number }[] = [];
    if (imatrix !== undefined && entries.size > 0) {
        const hide = raw.hideImatrix === true;
        kv.push({ key: "quantize.imatrix.file", str: hide ? "top_secret" : (raw.imatrix ?? "").slice(0, 127) });
        if (imatrix.dataset !== null && imatrix.dataset !== "") kv.push({ key: "quantize.imatrix.dataset", str: hide ? "top_secret" : imatrix.dataset.slice(0, 127) });
        kv.push({ key: "quantize.imatrix.entries_count", int: hide ? 0 : entries.size });
        if (imatrix.chunks > 0) kv.push({ key: "quantize.imatrix.chunks_count", int: hide ? 0 : imatrix.chunks });
    }
    log(`main: quantizing '${pos.input}' to '${pos.output}' as ${presetEntryName(pos.type) ?? plan.ftype} using ${pos.threads} threads`);
    const n = plan.tensors.length;
    const totalElements = plan.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    const bar = !quiet && process.stderr.isTTY === true && process.env["CI"] === undefined;
    let printed = 0;
    const noted = new Set(res.notes);
    const tStart = performance.now();
    const onProgress = (p: QuantizeProgress): void => {
        if (quiet) return;
        if (bar && printed < p.tensors) process.stderr.write("\r\x1b[K");
        for (; printed < p.tensors && printed < n; printed++) {
            const t = plan.tensors[printed] as PlannedTensor;
            const note = fallbackNote(t);
            if (note !== undefined) log(note);
            const miss = `did not find weights for ${t.name}`;
            if (noted.has(miss)) log(`====== llama_model_quantize_internal: ${miss}`);
            log(tensorLine(printed, n, t, src.srcBytes[printed] ?? 0));
        }
        if (bar && printed < n) {
            const frac = totalElements > 0 ? p.elements / totalElements : 0;
            const el = (performance.now() - tStart) / 1000;
            const width = 30;
            const fill = Math.round(frac * width);
            const eta = frac > 0 ? (el / frac) * (1 - frac) : NaN;
            process.stderr.write(`\r\x1b[K[${"#".repeat(fill)}${".".repeat(width - fill)}] ${(frac * 100).toFixed(1)}% ${printed}/${n} tensors, ETA ${etaText(eta)}`);
        }
    };
    let summary;
    try {
        summary = await withSigint((signal) => runQuantize({
            src, dst: pos.output, plan, threads: pos.threads, signal, onProgress, pollMs: bar ? 100 : 250,
            ...(imatrix !== undefined && entries.size > 0 ? { imatrixPath: raw.imatrix as string, imatrixUse: res.uses } : {}),
            ...(kv.length > 0 ? { kv } : {})
        }));
    } catch (e) {
        if (bar) process.stderr.write("\r\x1b[K");
        if (isCancelled(e)) {
            log(`quantize: interrupted; ${pos.output} was not written`);
            throw interrupted("quantize");
        }
        throw e;
    }
    log(sprintf("llama_model_quantize_internal: model size  = %8.2f MB", summary.srcBytes / MiB));
    log(sprintf("llama_model_quantize_internal: quant size  = %8.2f MB", summary.dstBytes / MiB));
    for (const w of plan.warnings) log(`llama_model_quantize_internal: WARNING: ${w}`);
    const tq = summary.seconds * 1000;
    process.stdout.write(`\n${sprintf("main: quantize time = %8.2f ms", tq)}\n${sprintf("main:    total time = %8.2f ms", performance.now() - t0)}\n`);
}

export function quantizeCommand(): Command {
    const cmd = new Command("quantize")
        .description("quantize a GGUF model (F32/F16/BF16, or --allow-requantize) like llama-quantize: presets, custom rules, imatrix")
        .usage("[options] IN [OUT] TYPE [NTHREADS]")
        .argument("<args...>", "IN [OUT] TYPE [NTHREADS]: TYPE is a preset name (Q4_K_M, IQ4_XS, IQ2_K_R4, …, COPY) or its numeric id");
    const g = "Quantization:";
    const im = "Importance matrix:";
    cmd.addOption(new Option("--custom-q <RULES>", "REGEX=TYPE[,REGEX=TYPE…]: first matching rule (searched anywhere in the name) sets the type; repeatable").argParser(list).helpGroup(g))
        .addOption(new Option("--pure", "every quantizable tensor gets TYPE (no mixing rules, no --custom-q), with row-length fallbacks").helpGroup(g))
        .addOption(new Option("--leave-output-tensor", "keep output.weight unquantized").helpGroup(g))
        .addOption(new Option("--allow-requantize", "accept already-quantized tensors (dequantized first; quality suffers)").helpGroup(g))
        .addOption(new Option("--dry-run", "print the per-tensor plan (type, rule, bytes) and total size/bpw; write nothing").helpGroup(g))
        .addOption(new Option("--json", "with --dry-run: one JSON document (\"schema\": 1) on stdout").helpGroup(g))
        .addOption(new Option("-q, --quiet", "no log or progress on stderr").helpGroup(g));
    for (const [flag, , help] of ROLE_OPTIONS) cmd.addOption(new Option(`${flag} <TYPE>`, `${help} (a ggml type name: q6_K, iq4_k, q8_0, …)`).helpGroup("Per-tensor types:"));
    cmd.addOption(new Option("--imatrix <FILE>", "importance matrix: llama-imatrix legacy .dat or GGUF imatrix").helpGroup(im))
        .addOption(new Option("--include-weights <S>", "use the imatrix only for tensors whose name contains S (repeatable)").argParser(list).helpGroup(im))
        .addOption(new Option("--exclude-weights <S>", "do not use the imatrix for tensors whose name contains S (repeatable)").argParser(list).helpGroup(im))
        .addOption(new Option("--hide-imatrix", "record 'top_secret' instead of the imatrix file and dataset names").helpGroup(im))
        .addOption(new Option("--ignore-imatrix-rules", "allow very-low-bit types (IQ1_S, IQ2_XXS, …) without an imatrix").helpGroup(im));
    return cmd
        .addHelpText("after", ["", "Examples:", "  ikl quantize model-f16.gguf model-Q4_K_M.gguf Q4_K_M 8",
            "  ikl quantize --imatrix imatrix.dat model-bf16.gguf out.gguf IQ4_KS",
            "  ikl quantize --custom-q 'attn=q8_0,shexp=q8_0,ffn_down_exps=iq4_k,ffn_(up|gate)_exps=iq3_k' ds.gguf out.gguf IQ4_K",
            "  ikl quantize --dry-run --json model-f16.gguf out.gguf IQ2_K_R4 | jq .bpw",
            "", `TYPE: ${PRESET_NAMES.join(", ")}`].join("\n"))
        .action(async (args: string[], raw: Raw) => action(args, raw));
}
