// Model-loading and placement options (-m, -t, -tb, -ngl, -ot, -ts, -sm, -mg, -dev, -cmoe, -ncmoe, -nkvo,
// --no-mmap, --mlock, -rtr), declared once and attached with withModelOptions(cmd). Long names and defaults
// from ik_llama.cpp common.cpp (spec/cli.md §2.1–2.2). Placement *planning* lives in engine/placement.ts, not here.
import { Command, Option } from "commander";
import { attachGroup } from "./attach.js";
import { collectPlacementRules, intInRange, parseDevice, parseRatios, type Rule } from "./parsers.js";
import { usageError } from "../engine/errors.js";

export type SplitMode = "none" | "layer" | "graph" | "attn";

export interface ModelOptions {
    model: string;
    threads: number | undefined; // undefined = physical cores (engine decides)
    threadsBatch: number | undefined; // undefined = same as threads
    nGpuLayers: number; // -1 = all layers if a GPU exists
    overrideTensor: Rule<string>[]; // first match wins
    devices: string[] | undefined;
    tensorSplit: number[] | undefined;
    splitMode: SplitMode;
    mainGpu: number;
    cpuMoe: boolean;
    nCpuMoe: number;
    kvOffload: boolean;
    mmap: boolean;
    mlock: boolean;
    runTimeRepack: boolean;
}

const MAX_THREADS = 4096;

function parseDeviceList(value: string): string[] {
    return value.split(",").map(parseDevice);
}

export function withModelOptions(cmd: Command): Command {
    attachGroup(cmd, "Model:", [
        new Option("-m, --model <FILE>", "GGUF model file (first shard of a split model)").env("IKL_MODEL"),
        new Option("--no-mmap", "read the model into memory instead of mmapping it"),
        new Option("--mlock", "lock model pages in RAM"),
        new Option("--run-time-repack", "repack CPU-resident weights to _R4/_R8 layouts (implies --no-mmap)")
    ]);
    attachGroup(cmd, "Threads:", [
        new Option("-t, --threads <N>", "threads for generation (default: physical cores)").argParser(intInRange(1, MAX_THREADS)),
        new Option("--threads-batch <N>", "threads for prompt/batch processing (default: --threads)").argParser(intInRange(1, MAX_THREADS))
    ]);
    return attachGroup(cmd, "GPU offload:", [
        new Option("--n-gpu-layers <N>", "offload the last N layers to GPU; -1 = all").argParser(intInRange(-1, 100000)).default(-1, "all if a GPU exists"),
        new Option("--override-tensor <REGEX=DEV,...>", "place tensors matching REGEX on DEV (CPU, CUDA0, …); repeatable, first match wins")
            .argParser(collectPlacementRules),
        new Option("--device <DEV,...>", "devices to use, e.g. CUDA0,CUDA1 (default: all)").argParser(parseDeviceList),
        new Option("--tensor-split <a,b,...>", "per-GPU proportions, e.g. 3,1 (default: by free memory)").argParser(parseRatios),
        new Option("--split-mode <MODE>", "multi-GPU strategy").choices(["none", "layer", "graph", "attn"]).default("layer"),
        new Option("--main-gpu <N>", "GPU for --split-mode none and intermediates").argParser(intInRange(0, 255)).default(0),
        new Option("--cpu-moe", "keep all routed-expert tensors in CPU memory"),
        new Option("--n-cpu-moe <N>", "keep the experts of the last N layers on CPU").argParser(intInRange(0, 100000)).default(0),
        new Option("--no-kv-offload", "keep the KV cache on CPU")
    ]);
}

/** Turns commander's loose option object into validated ModelOptions. */
export function parseModelOptions(raw: Record<string, unknown>, requireModel = true): ModelOptions {
    const model = typeof raw["model"] === "string" ? raw["model"] : "";
    if (requireModel && model === "") throw usageError("no model given", "pass -m FILE (or set IKL_MODEL)");
    const runTimeRepack = raw["runTimeRepack"] === true;
    return {
        model,
        threads: raw["threads"] as number | undefined,
        threadsBatch: (raw["threadsBatch"] as number | undefined) ?? (raw["threads"] as number | undefined),
        nGpuLayers: (raw["nGpuLayers"] as number | undefined) ?? -1,
        overrideTensor: (raw["overrideTensor"] as Rule<string>[] | undefined) ?? [],
        devices: raw["device"] as string[] | undefined,
        tensorSplit: raw["tensorSplit"] as number[] | undefined,
        splitMode: ((raw["splitMode"] as SplitMode | undefined) ?? "layer"),
        mainGpu: (raw["mainGpu"] as number | undefined) ?? 0,
        cpuMoe: raw["cpuMoe"] === true,
        nCpuMoe: (raw["nCpuMoe"] as number | undefined) ?? 0,
        kvOffload: raw["kvOffload"] !== false,
        mmap: raw["mmap"] !== false && !runTimeRepack,
        mlock: raw["mlock"] === true,
        runTimeRepack
    };
}
