// Placement at model load: reads the GGUF's tensor table and hyper-parameters, the CUDA devices (live from the
// addon, or the offline `--devices` list) and the type capabilities, asks engine/placement.ts for a plan,
// optionally prints it (`--print-placement`, `--json`), and opens the model with an explicit device per tensor.
// `--dry-run` stops before any weight is loaded. Engine-side tensors kept on the CPU are reported as warnings.
import { freemem } from "node:os";
import { IklError } from "./errors.js";
import { inspectGguf, qtypes, systemInfo } from "./index.js";
import { Model } from "./model.js";
import type { GgufInspect, MetaValue, OpenOptions } from "./native.js";
import { PlacementError, planPlacement, type PlacementDevice, type PlacementPlan, type PlacementRule } from "./placement.js";
import { placementReport, renderPlacement, type KvShape, type PlacementReport } from "./placement-report.js";

/** The -ngl/-ot/-ts/-sm/-mg/-dev/--cpu-moe part of ModelOptions (options/model.ts). */
export interface OffloadPolicy {
    nGpuLayers: number;
    overrideTensor: PlacementRule[];
    devices: string[] | undefined;
    tensorSplit: number[] | undefined;
    splitMode: string;
    mainGpu: number;
    cpuMoe: boolean;
    nCpuMoe: number;
}

/** `--print-placement`, `--dry-run`, `--json`, `--devices`, `--ram` (options/offload.ts). */
export interface OffloadOptions {
    printPlacement: boolean;
    dryRun: boolean;
    json: boolean;
    devices: PlacementDevice[] | undefined; // offline device list: plan for another machine
    ram: number | undefined;
}

export interface ContextShape {
    ctxSize: number; // 0 = n_ctx_train
    ubatchSize: number;
    cacheTypeK: string;
    cacheTypeV: string;
}

function metaNum(g: GgufInspect, key: string): number | undefined {
    const v: MetaValue | undefined = g.metadata.find((m) => m.key === key)?.value;
    return typeof v === "number" ? v : undefined;
}

function kvShape(g: GgufInspect, ctx: ContextShape): KvShape {
    const arch = String(g.metadata.find((m) => m.key === "general.architecture")?.value ?? "");
    const n = (k: string, d: number): number => metaNum(g, `${arch}.${k}`) ?? d;
    const nEmbd = n("embedding_length", 0);
    const nHead = n("attention.head_count", 1);
    const nHeadKv = n("attention.head_count_kv", nHead);
    const headDim = nHead > 0 ? nEmbd / nHead : 0;
    const bytesPer = (t: string): number => {
        const q = qtypes().find((x) => x.name === t);
        return q === undefined ? 2 : q.typeSize / q.block;
    };
    const vocab = g.metadata.find((m) => m.key === "tokenizer.ggml.tokens");
    return {
        nLayer: n("block_count", 0),
        nCtx: ctx.ctxSize > 0 ? ctx.ctxSize : n("context_length", 4096),
        nUbatch: ctx.ubatchSize,
        nEmbd,
        nFf: n("feed_forward_length", 4 * nEmbd),
        nVocab: vocab?.length ?? 32000,
        // -mla 0 (standard attention) cache: per layer n_head_kv · key_length K and value_length V values per token
        kElemsPerToken: nHeadKv * n("attention.key_length", headDim),
        vElemsPerToken: nHeadKv * n("attention.value_length", headDim),
        kBytesPerElem: bytesPer(ctx.cacheTypeK),
        vBytesPerElem: bytesPer(ctx.cacheTypeV)
    };
}

/** CUDA devices to plan for and why there are none. `-dev` keeps only the named ones. */
function devicesFor(policy: OffloadPolicy, offload: OffloadOptions): { devices: PlacementDevice[]; why: string; kernels: Set<string> | null } {
    if (offload.devices !== undefined) return { devices: offload.devices, why: "", kernels: null };
    const info = systemInfo();
    let devices = info.cuda.devices.map((d) => ({ name: `CUDA${d.index}`, freeBytes: d.freeBytes }));
    if (!info.cuda.available) devices = [];
    if (policy.devices !== undefined) {
        for (const want of policy.devices) {
            if (want !== "CPU" && !devices.some((d) => d.name === want)) {
                throw new IklError("IKL_E_CUDA", `-dev ${want}: no such CUDA device (${devices.length === 0 ? `CUDA not available: ${info.cuda.reason ?? "no device"}` : devices.map((d) => d.name).join(", ")})`);
            }
        }
        devices = devices.filter((d) => policy.devices?.includes(d.name) === true);
    }
    return { devices, why: info.cuda.reason ?? "no CUDA device", kernels: info.cuda.available ? new Set(info.cuda.kernels) : null };
}

/** The plan and its memory report for the model at `path`. */
export async function planModelPlacement(path: string, policy: OffloadPolicy, ctx: ContextShape, offload: OffloadOptions): Promise<{ plan: PlacementPlan; report: PlacementReport }> {
    if (policy.splitMode !== "none" && policy.splitMode !== "layer") {
        throw new IklError("IKL_E_UNSUPPORTED", `-sm ${policy.splitMode} is not implemented yet (use -sm layer or -sm none)`);
    }
    const g = await inspectGguf(path, 0);
    const { devices, why, kernels } = devicesFor(policy, offload);
    const needsGpu = policy.nGpuLayers > 0 || policy.overrideTensor.some((r) => r.target !== "CPU");
    if (devices.length === 0 && needsGpu) {
        const flag = policy.nGpuLayers > 0 ? `-ngl ${policy.nGpuLayers}` : "an -ot rule";
        throw new IklError("IKL_E_CUDA", `${flag} places tensors on CUDA, but CUDA is not available: ${why}`, "run on the CPU with -ngl 0, or plan offline with --dry-run --devices CUDA0=24GiB");
    }
    const types = new Map(qtypes().map((q) => [q.name, q]));
    const dims = new Map(g.tensors.map((t) => [t.name, t.ne]));
    const cudaUnsupported = (type: string): string | undefined => {
        if (types.get(type)?.cuda === "no") return `the reference has no CUDA matmul for ${type} (CPU-only type)`;
        return undefined;
    };
    const kv = kvShape(g, ctx);
    const plan = planOrThrow({
        tensors: g.tensors.map((t) => ({ name: t.name, type: t.type, bytes: t.bytes, nDims: t.ne.length })),
        nLayer: kv.nLayer,
        nGpuLayers: policy.nGpuLayers,
        rules: policy.overrideTensor,
        tensorSplit: policy.tensorSplit,
        splitMode: policy.splitMode,
        mainGpu: policy.mainGpu,
        cpuMoe: policy.cpuMoe,
        nCpuMoe: policy.nCpuMoe,
        devices,
        cudaUnsupported
    });
    if (kernels !== null) {
        // This build's kernels: a 2-D weight of a type without one stays on the CPU (the engine does the same).
        for (const t of plan.tensors) {
            if (t.device !== "CPU" && (dims.get(t.name)?.length ?? 0) >= 2 && !kernels.has(t.type)) {
                plan.warnings.push(`${t.name} (${t.type}) kept on the CPU: this build has no CUDA matmul kernel for ${t.type} yet`);
                t.rule = `kept on CPU: no CUDA kernel for ${t.type} yet`;
                t.device = "CPU";
            }
        }
    }
    const free = new Map<string, number>([["CPU", offload.ram ?? freemem()], ...devices.map((d): [string, number] => [d.name, d.freeBytes])]);
    return { plan, report: placementReport(plan, kv, free, dims) };
}

function planOrThrow(req: Parameters<typeof planPlacement>[0]): PlacementPlan {
    try {
        return planPlacement(req);
    } catch (e) {
        if (e instanceof PlacementError) throw new IklError("IKL_E_USAGE", e.message);
        throw e;
    }
}

/**
 * Plan, print if asked, and open the model with the plan. Returns null for `--dry-run` (nothing loaded).
 * `out` receives the placement document (stdout), `warn` each warning line (stderr).
 */
export async function openPlacedModel(
    path: string,
    open: OpenOptions,
    policy: OffloadPolicy,
    ctx: ContextShape,
    offload: OffloadOptions,
    out: (s: string) => void,
    warn: (s: string) => void
): Promise<Model | null> {
    const { plan, report } = await planModelPlacement(path, policy, ctx, offload);
    if (offload.printPlacement || offload.dryRun) out(offload.json ? JSON.stringify(report, null, 2) + "\n" : renderPlacement(report));
    for (const w of plan.warnings) warn(`warning: ${w}`);
    if (offload.dryRun) return null;
    if (offload.devices !== undefined) throw new IklError("IKL_E_USAGE", "--devices describes another machine: use it with --dry-run");
    const placement: Record<string, string> = {};
    for (const t of plan.tensors) if (t.device !== "CPU") placement[t.name] = t.device;
    const model = await Model.open(path, { ...open, placement });
    for (const k of model.meta.offload.keptOnCpu) warn(`warning: ${k.tensor} kept on the CPU: ${k.reason}`);
    return model;
}

/**
 * For commands that open their model themselves (perplexity): the plan as `OpenOptions.placement`, warnings
 * written through `warn`. Without GPUs and without offload flags this is an empty map (CPU only).
 */
export async function placementFor(path: string, policy: OffloadPolicy, ctx: ContextShape, warn: (s: string) => void): Promise<Record<string, string>> {
    const none: OffloadOptions = { printPlacement: false, dryRun: false, json: false, devices: undefined, ram: undefined };
    const { plan } = await planModelPlacement(path, policy, ctx, none);
    for (const w of plan.warnings) warn(`warning: ${w}`);
    const placement: Record<string, string> = {};
    for (const t of plan.tensors) if (t.device !== "CPU") placement[t.name] = t.device;
    return placement;
}
