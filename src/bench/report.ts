// llama-bench result model and its printers: markdown (default), csv, json (byte-identical to ik's printers) and
// jsonl (ik has none; this follows upstream llama.cpp's jsonl_printer: the json fields of one test on one line).
// Statistics reproduce ik's integer (uint64, wrapping) and double arithmetic exactly. Does not run anything.
// Mirrors ik_llama.cpp examples/llama-bench/llama-bench.cpp (struct test, *_printer) @ 8337e4cd3.
import { sprintf, fmtF, fmtG } from "../ui/printf.js";
import { testLabel, testTokens, type BenchInstance, type BenchParams } from "./params.js";

/** Build-time facts printed in every row (static members of `struct test`). */
export interface BuildInfo {
    commit: string;
    number: number;
    cuda: boolean;
    vulkan: boolean;
    metal: boolean;
    sycl: boolean;
    gpuBlas: boolean;
    blas: boolean;
    cpuInfo: string;
    gpuInfo: string;
}

/** One finished test. Sizes come from the loaded model; samples are wall times of the measured repetitions. */
export interface BenchResult {
    inst: BenchInstance;
    /** llama_model_desc: "<arch> <size class> <ftype name>", e.g. "llama 8B Q4_K - Medium". */
    modelType: string;
    modelSize: number;
    modelNParams: number;
    /** RFC 3339 UTC, "%FT%TZ". */
    testTime: string;
    samplesNs: number[];
    /** `--wall`: end-to-end time per repetition (JS and N-API included), ns. */
    wallNs?: number[];
}

export function backendName(b: BuildInfo): string {
    if (b.cuda) return "CUDA";
    if (b.vulkan) return "Vulkan";
    if (b.metal) return "Metal";
    if (b.sycl) return "SYCL";
    if (b.gpuBlas) return "GPU BLAS";
    if (b.blas) return "BLAS";
    return "CPU";
}

const U64 = (1n << 64n) - 1n;

/** avg<uint64_t>: wrapping sum, integer division. */
export function avgNs(v: readonly number[]): bigint {
    if (v.length === 0) return 0n;
    let sum = 0n;
    for (const x of v) sum = (sum + BigInt(x)) & U64;
    return sum / BigInt(v.length);
}

/** stdev<uint64_t>: the reference's integer formula (wrapping, truncating), then sqrt through double. */
export function stdevNs(v: readonly number[]): bigint {
    if (v.length <= 1) return 0n;
    const n = BigInt(v.length);
    const mean = avgNs(v);
    let sq = 0n;
    for (const x of v) sq = (sq + BigInt(x) * BigInt(x)) & U64;
    const a = sq / (n - 1n);
    const b = (((mean * mean) & U64) * n & U64) / (n - 1n);
    const r = Math.sqrt(Number((a - b) & U64));
    return BigInt(Math.trunc(r)) & U64;
}

export function avgD(v: readonly number[]): number {
    if (v.length === 0) return 0;
    let sum = 0;
    for (const x of v) sum += x;
    return sum / v.length;
}

/** stdev<double>: sqrt(Σx²/(n−1) − mean²·n/(n−1)); NaN (printed "-nan") if rounding makes it negative. */
export function stdevD(v: readonly number[]): number {
    if (v.length <= 1) return 0;
    const n = v.length;
    const mean = avgD(v);
    let sq = 0;
    for (const x of v) sq += x * x;
    return Math.sqrt(sq / (n - 1) - (mean * mean * n) / (n - 1));
}

/** Per-repetition rates: 1e9 · n_tokens / ns. */
export function samplesTs(r: BenchResult): number[] {
    const n = testTokens(r.inst.kind, r.inst.nPrompt, r.inst.nGen);
    return r.samplesNs.map((t) => (1e9 * n) / t);
}

/** `--wall`: end-to-end t/s per repetition. */
export function wallTs(r: BenchResult): number[] {
    const n = testTokens(r.inst.kind, r.inst.nPrompt, r.inst.nGen);
    return (r.wallNs ?? []).map((t) => (1e9 * n) / t);
}

/** `--wall` only: `"samples_wall_ns": […],"samples_wall_ts": […]` after the reference's fields. */
function wallJson(r: BenchResult, sep: string): string {
    if (r.wallNs === undefined) return "";
    const ns = r.wallNs.map((x) => Math.round(x)).join(", ");
    return `,${sep}"samples_wall_ns": [ ${ns} ],${sep}"samples_wall_ts": [ ${wallTs(r).map((x) => fmtG(x)).join(", ")} ]`;
}

export const FIELDS = [
    "build_commit", "build_number", "cuda", "vulkan", "metal", "sycl", "rpc", "gpu_blas", "blas", "cpu_info", "gpu_info",
    "model_filename", "model_type", "model_size", "model_n_params", "n_batch", "n_ubatch", "n_threads", "type_k", "type_v",
    "n_gpu_layers", "split_mode", "main_gpu", "no_kv_offload", "flash_attn", "mla_attn", "attn_max_batch", "ser", "reuse",
    "tensor_split", "use_mmap", "embeddings", "repack", "mqkv", "muge", "defer_experts", "fused_moe", "grouped_er",
    "no_fused_up_gate", "use_thp", "no_ooae", "rcache", "sas", "max_gpu", "cuda_params", "override_tensor",
    "n_prompt", "n_gen", "test_time", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "test"
] as const;

type FieldType = "string" | "bool" | "int" | "float";

const INT_FIELDS = new Set(["build_number", "n_batch", "n_ubatch", "n_threads", "model_size", "model_n_params", "n_gpu_layers",
    "main_gpu", "n_prompt", "n_gen", "mla_attn", "attn_max_batch", "avg_ns", "stddev_ns", "max_gpu"]);
const BOOL_FIELDS = new Set(["cuda", "vulkan", "metal", "gpu_blas", "blas", "sycl", "no_kv_offload", "flash_attn", "use_mmap",
    "embeddings", "repack", "use_thp", "fused_moe", "grouped_er", "no_fused_up_gate", "no_ooae", "mqkv", "rcache", "reuse",
    "muge", "defer_experts", "sas"]);

export function fieldType(field: string): FieldType {
    if (INT_FIELDS.has(field)) return "int";
    if (BOOL_FIELDS.has(field)) return "bool";
    if (field === "avg_ts" || field === "stddev_ts") return "float";
    return "string";
}

const b01 = (b: boolean): string => (b ? "1" : "0");

/** "%.2f" per device up to the last non-zero one, joined with "/"; "0.00" when all are zero. */
export function tensorSplitStr(ts: readonly number[]): string {
    let last = 0;
    ts.forEach((v, i) => {
        if (v > 0) last = i;
    });
    const parts: string[] = [];
    for (let i = 0; i <= last; i++) parts.push(fmtF(Math.fround(ts[i] ?? 0), 2));
    return parts.join("/");
}

/** `ostream << int << ',' << float`: "-1,0", "4,0.2". */
export function serStr(ser: readonly [number, number]): string {
    return `${ser[0]},${fmtG(Math.fround(ser[1]), 6)}`;
}

/** test::get_values(): one string per FIELDS entry. */
export function fieldValues(r: BenchResult, b: BuildInfo): string[] {
    const i = r.inst;
    const ts = samplesTs(r);
    return [
        b.commit, String(b.number), b01(b.cuda), b01(b.vulkan), b01(b.metal), b01(b.sycl), b01(i.rpcServers !== ""),
        b01(b.gpuBlas), b01(b.blas), b.cpuInfo, b.gpuInfo,
        i.model, r.modelType, String(r.modelSize), String(r.modelNParams), String(i.nBatch), String(i.nUbatch),
        String(i.nGen > 0 ? i.nThreads[0] : i.nThreads[1]), i.typeK, i.typeV, String(i.nGpuLayers), i.splitMode,
        String(i.mainGpu), b01(i.noKvOffload), b01(i.flashAttn), String(i.mlaAttn), String(i.attnMaxBatch), serStr(i.ser),
        b01(i.reuse), tensorSplitStr(i.tensorSplit), b01(i.useMmap), b01(i.embeddings), b01(i.repack), b01(i.mqkv),
        b01(i.muge), b01(i.deferExperts), b01(i.fmoe), b01(i.ger), b01(i.noFug), b01(i.useThp), b01(i.noOoae),
        b01(i.rcache), b01(i.sas), b01(i.maxGpu !== 0), i.cudaParams, i.overrideTensor,
        String(i.nPrompt), String(i.nGen), r.testTime, avgNs(r.samplesNs).toString(), stdevNs(r.samplesNs).toString(),
        fmtF(avgD(ts)), fmtF(stdevD(ts)), testLabel(i.kind, i.nPrompt, i.nGen)
    ];
}

// ---- csv ----

function escapeCsv(s: string): string {
    return `"${s.replace(/"/g, '""')}"`;
}

export function csvHeader(): string {
    return `${FIELDS.join(",")}\n`;
}

export function csvRow(r: BenchResult, b: BuildInfo): string {
    return `${fieldValues(r, b).map(escapeCsv).join(",")}\n`;
}

export function formatCsv(results: readonly BenchResult[], b: BuildInfo): string {
    return csvHeader() + results.map((r) => csvRow(r, b)).join("");
}

// ---- json / jsonl ----

/** The reference's escape_json, including its treatment of UTF-8 bytes ≥ 0x80 (signed char ≤ 0x1f → "\ufffff"). */
function escapeJson(s: string): string {
    let out = "";
    for (const byte of Buffer.from(s, "utf8")) {
        if (byte === 0x22) out += '\\"';
        else if (byte === 0x5c) out += "\\\\";
        else if (byte >= 0x80) out += "\\ufffff";
        else if (byte <= 0x1f) out += `\\u${byte.toString(16).padStart(4, "0")}`;
        else out += String.fromCharCode(byte);
    }
    return out;
}

function jsonValue(field: string, value: string): string {
    switch (fieldType(field)) {
        case "string":
            return `"${escapeJson(value)}"`;
        case "bool":
            return value === "0" ? "false" : "true";
        default:
            return value;
    }
}

export function jsonTest(r: BenchResult, b: BuildInfo): string {
    const vals = fieldValues(r, b);
    let s = "  {\n";
    FIELDS.forEach((f, k) => {
        s += `    "${f}": ${jsonValue(f, vals[k] ?? "")},\n`;
    });
    s += `    "samples_ns": [ ${r.samplesNs.join(", ")} ],\n`;
    s += `    "samples_ts": [ ${samplesTs(r).map((x) => fmtG(x)).join(", ")} ]${wallJson(r, "\n    ")}\n`;
    return `${s}  }`;
}

export function formatJson(results: readonly BenchResult[], b: BuildInfo): string {
    return `[\n${results.map((r) => jsonTest(r, b)).join(",\n")}\n]\n`;
}

export function jsonlRow(r: BenchResult, b: BuildInfo): string {
    const vals = fieldValues(r, b);
    const fields = FIELDS.map((f, k) => `"${f}": ${jsonValue(f, vals[k] ?? "")}, `).join("");
    const ts = samplesTs(r).map((x) => fmtG(x)).join(", ");
    return `{${fields}"samples_ns": [ ${r.samplesNs.join(", ")} ],"samples_ts": [ ${ts} ]${wallJson(r, "")}}\n`;
}

export function formatJsonl(results: readonly BenchResult[], b: BuildInfo): string {
    return results.map((r) => jsonlRow(r, b)).join("");
}

export { markdownFields, formatMarkdown, markdownHeader, markdownRow, markdownFooter } from "./report-md.js";
export type { BenchParams };
