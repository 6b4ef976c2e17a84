// llama-bench markdown printer: column selection ("given more than one value or a non-default value"), ik's fixed
// widths and display names, `t/s` as "%.2f ± %.2f", and the "build: <commit> (<number>)" footer. Byte-identical to
// ik_llama.cpp examples/llama-bench/llama-bench.cpp markdown_printer @ 8337e4cd3 (widths count UTF-8 bytes).
import { sprintf } from "../ui/printf.js";
import { testLabel } from "./params.js";
import type { BenchParams, Ser } from "./params.js";
import { avgD, backendName, fieldType, fieldValues, FIELDS, samplesTs, stdevD, wallTs, type BenchResult, type BuildInfo } from "./report.js";

const WIDTHS: Record<string, number> = {
    model: -30, "t/s": 16, "wall t/s": 16, size: 10, params: 10, n_gpu_layers: 3, n_threads: 7, n_batch: 7, n_ubatch: 8, type_k: 6, type_v: 6,
    split_mode: 5, flash_attn: 2, mla_attn: 3, attn_max_batch: 5, reuse: 2, ser: 10, use_mmap: 4, repack: 3, mqkv: 4,
    muge: 4, defer_experts: 5, sas: 3, max_gpu: 7, use_thp: 3, fused_moe: 4, grouped_er: 3, rcache: 6, no_fused_up_gate: 6,
    no_ooae: 7, test: 13
};

const NAMES: Record<string, string> = {
    n_gpu_layers: "ngl", split_mode: "sm", n_threads: "threads", no_kv_offload: "nkvo", flash_attn: "fa", mla_attn: "mla",
    attn_max_batch: "amb", reuse: "gr", use_mmap: "mmap", repack: "rtr", defer_experts: "defer", use_thp: "thp",
    fused_moe: "fmoe", grouped_er: "ger", no_fused_up_gate: "no-fug", no_ooae: "no-ooae", embeddings: "embd",
    tensor_split: "ts", cuda_params: "cuda", override_tensor: "ot"
};

/** Signed printf width: negative = left-aligned. */
export function fieldWidth(field: string): number {
    const w = WIDTHS[field];
    if (w !== undefined) return w;
    const width = Math.max(field.length, 10);
    return fieldType(field) === "string" ? -width : width;
}

const displayName = (f: string): string => NAMES[f] ?? f;

function sameList<T>(a: readonly T[], b: readonly T[], eq: (x: T, y: T) => boolean = (x, y) => x === y): boolean {
    return a.length === b.length && a.every((x, i) => eq(x, b[i] as T));
}
const samePair = (x: readonly number[], y: readonly number[]): boolean => x[0] === y[0] && x[1] === y[1];
const sameSplit = (x: readonly number[], y: readonly number[]): boolean => {
    const n = Math.max(x.length, y.length);
    for (let i = 0; i < n; i++) if (Math.fround(x[i] ?? 0) !== Math.fround(y[i] ?? 0)) return false;
    return true;
};

export interface MarkdownLayout {
    fields: string[];
    /** `-ot` was given but `--print-overrides` was not. */
    skippedOverrides: boolean;
}

/** markdown_printer::print_header's column selection. `backend` as backendName() returns it. */
export function markdownFields(p: BenchParams, d: BenchParams, backend: string): MarkdownLayout {
    const f = ["model", "size", "params", "backend"];
    const cpu = backend === "CPU" || backend === "BLAS";
    const swept = <T>(a: readonly T[], b: readonly T[], eq?: (x: T, y: T) => boolean): boolean => a.length > 1 || !sameList(a, b, eq);
    if (!cpu) f.push("n_gpu_layers");
    if (swept(p.nThreads, d.nThreads, samePair) || cpu) f.push("n_threads");
    if (swept(p.nBatch, d.nBatch)) f.push("n_batch");
    if (swept(p.nUbatch, d.nUbatch)) f.push("n_ubatch");
    if (swept(p.typeK, d.typeK)) f.push("type_k");
    if (swept(p.typeV, d.typeV)) f.push("type_v");
    if (swept(p.mainGpu, d.mainGpu)) f.push("main_gpu");
    if (swept(p.splitMode, d.splitMode)) f.push("split_mode");
    if (swept(p.noKvOffload, d.noKvOffload)) f.push("no_kv_offload");
    if (swept(p.flashAttn, d.flashAttn)) f.push("flash_attn");
    if (swept(p.mlaAttn, d.mlaAttn)) f.push("mla_attn");
    if (swept(p.attnMaxBatch, d.attnMaxBatch)) f.push("attn_max_batch");
    if (swept(p.reuse, d.reuse)) f.push("reuse");
    if (swept<Ser>(p.ser, d.ser, (x, y) => x[0] === y[0] && Math.fround(x[1]) === Math.fround(y[1]))) f.push("ser");
    if (swept(p.tensorSplit, d.tensorSplit, sameSplit)) f.push("tensor_split");
    if (swept(p.useMmap, d.useMmap)) f.push("use_mmap");
    if (swept(p.embeddings, d.embeddings)) f.push("embeddings");
    if (p.cudaParams !== d.cudaParams) f.push("cuda_params");
    let skippedOverrides = false;
    if (p.overrideTensor !== d.overrideTensor) {
        if (p.printOverrides) f.push("override_tensor");
        else skippedOverrides = true;
    }
    const flags: [keyof BenchParams, string][] = [
        ["repack", "repack"], ["mqkv", "mqkv"], ["sas", "sas"], ["maxGpu", "max_gpu"], ["muge", "muge"],
        ["deferExperts", "defer_experts"], ["useThp", "use_thp"], ["fmoe", "fused_moe"], ["ger", "grouped_er"],
        ["rcache", "rcache"], ["noFug", "no_fused_up_gate"], ["noOoae", "no_ooae"]
    ];
    for (const [k, name] of flags) if (p[k] !== d[k]) f.push(name);
    f.push("test", "t/s");
    return { fields: f, skippedOverrides };
}

export function markdownHeader(layout: MarkdownLayout): string {
    let s = "|";
    for (const f of layout.fields) s += sprintf(" %*s |", fieldWidth(f), displayName(f));
    s += "\n|";
    for (const f of layout.fields) {
        const w = fieldWidth(f);
        s += ` ${"-".repeat(Math.abs(w) - 1)}${w > 0 ? ":" : "-"} |`;
    }
    return `${s}\n`;
}

/** "37.26 MiB" below 1 GiB, else "%.2f GiB". */
export function modelSizeStr(bytes: number): string {
    return bytes < 1024 * 1024 * 1024 ? sprintf("%.2f MiB", bytes / 1024 / 1024) : sprintf("%.2f GiB", bytes / 1024 / 1024 / 1024);
}

/** "19.53 M" below 1e9, else "%.2f B". */
export function modelParamsStr(n: number): string {
    return n < 1e9 ? sprintf("%.2f M", n / 1e6) : sprintf("%.2f B", n / 1e9);
}

export function markdownRow(layout: MarkdownLayout, r: BenchResult, b: BuildInfo): string {
    const vals = fieldValues(r, b);
    const map = new Map<string, string>(FIELDS.map((f, k) => [f, vals[k] ?? ""]));
    let s = "|";
    for (const f of layout.fields) {
        if (layout.skippedOverrides && f === "override_tensor") continue;
        let value: string;
        if (f === "model") value = r.modelType;
        else if (f === "size") value = modelSizeStr(r.modelSize);
        else if (f === "params") value = modelParamsStr(r.modelNParams);
        else if (f === "backend") value = backendName(b) + (r.inst.rpcServers !== "" ? "+RPC" : "");
        else if (f === "test") value = testLabel(r.inst.kind, r.inst.nPrompt, r.inst.nGen);
        else if (f === "t/s" || f === "wall t/s") {
            const ts = f === "t/s" ? samplesTs(r) : wallTs(r);
            value = sprintf("%.2f ± %.2f", avgD(ts), stdevD(ts));
        } else value = map.get(f) ?? "";
        // the reference widens t/s by one byte for the 2-byte "±"
        const w = fieldWidth(f) + (f === "t/s" || f === "wall t/s" ? 1 : 0);
        s += sprintf(" %*s |", w, value);
    }
    return `${s}\n`;
}

export function markdownFooter(b: BuildInfo): string {
    return `\nbuild: ${b.commit} (${b.number})\n`;
}

/** The whole table as llama-bench prints it to stdout. `defaults` = benchDefaults(physical cores). */
export function formatMarkdown(p: BenchParams, defaults: BenchParams, results: readonly BenchResult[], b: BuildInfo): string {
    const layout = markdownFields(p, defaults, backendName(b));
    // `--wall`: one more column after t/s, end-to-end rates (absent otherwise, so the table stays the reference's)
    if (results.some((r) => r.wallNs !== undefined)) layout.fields.push("wall t/s");
    return markdownHeader(layout) + results.map((r) => markdownRow(layout, r, b)).join("") + markdownFooter(b);
}
