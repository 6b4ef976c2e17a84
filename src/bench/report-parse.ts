// Reads llama-bench `-o json` output (ours or the reference's) back into BuildInfo + BenchResult, so saved runs can
// be re-rendered in another format, compared or plotted. Inverse of report.ts's json printer; the reference's own
// json is the test oracle for that printer (test/unit/golden/ref/bench-*.json).
import type { SplitMode, TestKind } from "./params.js";
import type { BenchResult, BuildInfo } from "./report.js";

type Obj = Record<string, unknown>;

const str = (o: Obj, k: string): string => String(o[k] ?? "");
const num = (o: Obj, k: string): number => Number(o[k] ?? 0);
const bool = (o: Obj, k: string): boolean => o[k] === true || o[k] === "1" || o[k] === 1;

function kindOf(label: string): TestKind {
    if (label.includes("@")) return "gp";
    if (label.includes("+")) return "pg";
    return label.startsWith("pp") ? "pp" : "tg";
}

export function buildInfoFromJson(o: Obj): BuildInfo {
    return {
        commit: str(o, "build_commit"), number: num(o, "build_number"), cuda: bool(o, "cuda"), vulkan: bool(o, "vulkan"),
        metal: bool(o, "metal"), sycl: bool(o, "sycl"), gpuBlas: bool(o, "gpu_blas"), blas: bool(o, "blas"),
        cpuInfo: str(o, "cpu_info"), gpuInfo: str(o, "gpu_info")
    };
}

export function resultFromJson(o: Obj): BenchResult {
    const ser = str(o, "ser").split(",").map(Number);
    const threads = num(o, "n_threads");
    return {
        modelType: str(o, "model_type"),
        modelSize: num(o, "model_size"),
        modelNParams: num(o, "model_n_params"),
        testTime: str(o, "test_time"),
        samplesNs: (o["samples_ns"] as number[] | undefined) ?? [],
        inst: {
            kind: kindOf(str(o, "test")), model: str(o, "model_filename"), nPrompt: num(o, "n_prompt"), nGen: num(o, "n_gen"),
            nBatch: num(o, "n_batch"), nUbatch: num(o, "n_ubatch"), typeK: str(o, "type_k"), typeV: str(o, "type_v"),
            nThreads: [threads, threads], nGpuLayers: num(o, "n_gpu_layers"), rpcServers: bool(o, "rpc") ? "rpc" : "",
            splitMode: str(o, "split_mode") as SplitMode, mainGpu: num(o, "main_gpu"), noKvOffload: bool(o, "no_kv_offload"),
            flashAttn: bool(o, "flash_attn"), mlaAttn: num(o, "mla_attn"), attnMaxBatch: num(o, "attn_max_batch"),
            reuse: bool(o, "reuse"), ser: [ser[0] ?? -1, ser[1] ?? 0], tensorSplit: str(o, "tensor_split").split("/").map(Number),
            useMmap: bool(o, "use_mmap"), embeddings: bool(o, "embeddings"), cudaParams: str(o, "cuda_params"),
            overrideTensor: str(o, "override_tensor"), overrideRules: [], printOverrides: false, repack: bool(o, "repack"), fmoe: bool(o, "fused_moe"),
            ger: bool(o, "grouped_er"), noFug: bool(o, "no_fused_up_gate"), useThp: bool(o, "use_thp"), noOoae: bool(o, "no_ooae"),
            mqkv: bool(o, "mqkv"), muge: bool(o, "muge"), deferExperts: bool(o, "defer_experts"), rcache: bool(o, "rcache"),
            sas: bool(o, "sas"), maxGpu: num(o, "max_gpu"), reps: ((o["samples_ns"] as unknown[] | undefined) ?? []).length, warmup: true
        }
    };
}

/** Parses a whole `-o json` document (an array of tests). */
export function parseBenchJson(text: string): { build: BuildInfo; results: BenchResult[] } {
    const arr = JSON.parse(text) as Obj[];
    const first = arr[0];
    if (first === undefined) throw new Error("no tests in llama-bench json");
    return { build: buildInfoFromJson(first), results: arr.map(resultFromJson) };
}
