// llama-bench parameter model: the swept option lists (cmd_params), their defaults, and the cross-product expansion
// into test instances in the reference's order (models outermost, threads innermost; per combination all -p sizes,
// then -n, then -pg, then -gp). Pure data; no engine. Mirrors ik_llama.cpp examples/llama-bench/llama-bench.cpp
// (cmd_params, cmd_params_defaults, get_cmd_params_instances) @ 8337e4cd3.
import type { PlacementRule } from "../engine/placement.js";

export type SplitMode = "none" | "layer" | "graph";
export type TestKind = "pp" | "tg" | "pg" | "gp";
/** Smart expert reduction: [K, t]; K = -1 disables it. */
export type Ser = [number, number];

/** Options that llama-bench accepts as comma lists (every value is swept). */
export interface BenchSweep {
    model: string[];
    nPrompt: number[];
    nGen: number[];
    nPg: [number, number][];
    nGp: [number, number][];
    nBatch: number[];
    nUbatch: number[];
    typeK: string[];
    typeV: string[];
    /** [gen threads, batch threads]; `-t N` gives [N, N]. */
    nThreads: [number, number][];
    nGpuLayers: number[];
    rpcServers: string[];
    splitMode: SplitMode[];
    mainGpu: number[];
    noKvOffload: boolean[];
    flashAttn: boolean[];
    mlaAttn: number[];
    attnMaxBatch: number[];
    reuse: boolean[];
    ser: Ser[];
    /** One entry per value; each is the per-device split (missing devices are 0). */
    tensorSplit: number[][];
    useMmap: boolean[];
    embeddings: boolean[];
}

/** Options that take a single value for the whole run. */
export interface BenchScalars {
    cudaParams: string;
    /** `-ot` rules as printed: "pattern=buffer" joined with ",". Empty when none. */
    overrideTensor: string;
    /** The same rules for the placement planner (engine/placement.ts), `--n-cpu-moe` ones included. */
    overrideRules: PlacementRule[];
    printOverrides: boolean;
    repack: boolean;
    fmoe: boolean;
    ger: boolean;
    noFug: boolean;
    useThp: boolean;
    noOoae: boolean;
    mqkv: boolean;
    muge: boolean;
    deferExperts: boolean;
    rcache: boolean;
    sas: boolean;
    maxGpu: number;
    reps: number;
    warmup: boolean;
}

export type BenchParams = BenchSweep & BenchScalars;

/** One test: one value of every swept option plus the test kind and sizes. */
export interface BenchInstance extends BenchScalars {
    kind: TestKind;
    model: string;
    nPrompt: number;
    nGen: number;
    nBatch: number;
    nUbatch: number;
    typeK: string;
    typeV: string;
    nThreads: [number, number];
    nGpuLayers: number;
    rpcServers: string;
    splitMode: SplitMode;
    mainGpu: number;
    noKvOffload: boolean;
    flashAttn: boolean;
    mlaAttn: number;
    attnMaxBatch: number;
    reuse: boolean;
    ser: Ser;
    tensorSplit: number[];
    useMmap: boolean;
    embeddings: boolean;
}

/** cmd_params_defaults; `threads` is the physical-core count (cpu_get_num_math()). */
export function benchDefaults(threads: number): BenchParams {
    return {
        model: ["models/7B/ggml-model-q4_0.gguf"],
        nPrompt: [512],
        nGen: [128],
        nPg: [],
        nGp: [],
        nBatch: [2048],
        nUbatch: [512],
        typeK: ["f16"],
        typeV: ["f16"],
        nThreads: [[threads, threads]],
        nGpuLayers: [999],
        rpcServers: [""],
        splitMode: ["layer"],
        mainGpu: [0],
        noKvOffload: [false],
        flashAttn: [true],
        mlaAttn: [3],
        attnMaxBatch: [0],
        reuse: [true],
        ser: [[-1, 0]],
        tensorSplit: [[]],
        useMmap: [true],
        embeddings: [false],
        cudaParams: "",
        overrideTensor: "",
        overrideRules: [],
        printOverrides: false,
        repack: false,
        fmoe: true,
        ger: false,
        noFug: false,
        useThp: false,
        noOoae: false,
        mqkv: false,
        muge: false,
        deferExperts: false,
        rcache: false,
        sas: false,
        maxGpu: 0,
        reps: 5,
        warmup: true
    };
}

/** Tokens a test's rate is computed over: gp tests time only the generation. */
export function testTokens(kind: TestKind, nPrompt: number, nGen: number): number {
    return (kind === "gp" ? 0 : nPrompt) + nGen;
}

/** Label printed in the `test` column: pp512, tg128, pp512+tg128, tg64@pp4096. */
export function testLabel(kind: TestKind, nPrompt: number, nGen: number): string {
    switch (kind) {
        case "pp":
            return `pp${nPrompt}`;
        case "tg":
            return `tg${nGen}`;
        case "pg":
            return `pp${nPrompt}+tg${nGen}`;
        case "gp":
            return `tg${nGen}@pp${nPrompt}`;
    }
}

/** The cross product in get_cmd_params_instances order (minimises model reloads). */
export function expandInstances(p: BenchParams): BenchInstance[] {
    const out: BenchInstance[] = [];
    const scalars: BenchScalars = {
        cudaParams: p.cudaParams, overrideTensor: p.overrideTensor, overrideRules: p.overrideRules, printOverrides: p.printOverrides, repack: p.repack,
        fmoe: p.fmoe, ger: p.ger, noFug: p.noFug, useThp: p.useThp, noOoae: p.noOoae, mqkv: p.mqkv, muge: p.muge,
        deferExperts: p.deferExperts, rcache: p.rcache, sas: p.sas, maxGpu: p.maxGpu, reps: p.reps, warmup: p.warmup
    };
    for (const model of p.model)
    for (const nGpuLayers of p.nGpuLayers)
    for (const rpcServers of p.rpcServers)
    for (const splitMode of p.splitMode)
    for (const mainGpu of p.mainGpu)
    for (const tensorSplit of p.tensorSplit)
    for (const useMmap of p.useMmap)
    for (const embeddings of p.embeddings)
    for (const nBatch of p.nBatch)
    for (const nUbatch of p.nUbatch)
    for (const typeK of p.typeK)
    for (const typeV of p.typeV)
    for (const noKvOffload of p.noKvOffload)
    for (const flashAttn of p.flashAttn)
    for (const mlaAttn of p.mlaAttn)
    for (const attnMaxBatch of p.attnMaxBatch)
    for (const reuse of p.reuse)
    for (const ser of p.ser)
    for (const nThreads of p.nThreads) {
        const base = {
            ...scalars, model, nBatch, nUbatch, typeK, typeV, nThreads, nGpuLayers, rpcServers, splitMode, mainGpu,
            noKvOffload, flashAttn, mlaAttn, attnMaxBatch, reuse, ser, tensorSplit, useMmap, embeddings
        };
        for (const n of p.nPrompt) if (n !== 0) out.push({ ...base, kind: "pp", nPrompt: n, nGen: 0 });
        for (const n of p.nGen) if (n !== 0) out.push({ ...base, kind: "tg", nPrompt: 0, nGen: n });
        for (const [pp, tg] of p.nPg) if (pp !== 0 || tg !== 0) out.push({ ...base, kind: "pg", nPrompt: pp, nGen: tg });
        for (const [pp, tg] of p.nGp) if (pp !== 0 || tg !== 0) out.push({ ...base, kind: "gp", nPrompt: pp, nGen: tg });
    }
    return out;
}
