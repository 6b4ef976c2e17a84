// Memory view of a placement plan (`--print-placement`): per tensor the rule, device and bytes; per device the
// weights, KV cache and compute-buffer estimate against free memory; as text or one JSON document
// ("schema": 1). Pure: the numbers come from the plan and the model's hyper-parameters.
//
// What this build allocates where (the engine, not the reference): weights follow the plan (2-D weights are
// uploaded to their GPU; 1-D tensors are tiny and stay in RAM); the KV cache and attention stay on the CPU for
// now; each GPU holds one activation/result scratch of n_ubatch rows for the per-op matmul offload.
import type { PlacementPlan } from "./placement.js";

export interface KvShape {
    nLayer: number;
    nCtx: number;
    nUbatch: number;
    nEmbd: number;
    nFf: number;
    nVocab: number;
    kElemsPerToken: number; // per layer
    vElemsPerToken: number; // per layer
    kBytesPerElem: number;
    vBytesPerElem: number;
}

export interface DeviceTotals {
    device: string;
    weights: number;
    kvCache: number;
    compute: number;
    total: number;
    free: number | null; // null = unknown
}

export interface PlacementReport {
    schema: 1;
    tensors: { name: string; type: string; bytes: number; device: string; rule: string }[];
    devices: DeviceTotals[];
    layers: { layer: string; device: string }[];
    warnings: string[];
}

/** Totals per device (CPU first) for a plan, with `free` from `freeBytes` (device name → bytes). */
export function placementReport(plan: PlacementPlan, kv: KvShape, freeBytes: Map<string, number>, tensorDims: Map<string, number[]>): PlacementReport {
    const names = ["CPU", ...[...freeBytes.keys()].filter((d) => d !== "CPU")];
    const weights = new Map<string, number>(names.map((d) => [d, 0]));
    // The widest input and output of any matrix on each GPU size its scratch (cuda/ops.rs: x and y buffers).
    const widest = new Map<string, { k: number; n: number }>();
    for (const t of plan.tensors) {
        weights.set(t.device, (weights.get(t.device) ?? 0) + t.bytes);
        const ne = tensorDims.get(t.name) ?? [];
        if (t.device !== "CPU" && ne.length >= 2) {
            const w = widest.get(t.device) ?? { k: 0, n: 0 };
            widest.set(t.device, { k: Math.max(w.k, ne[0] ?? 0), n: Math.max(w.n, ne[1] ?? 0) });
        }
    }
    const kvBytes = kv.nLayer * kv.nCtx * (kv.kElemsPerToken * kv.kBytesPerElem + kv.vElemsPerToken * kv.vBytesPerElem);
    // CPU activation arena (model/<arch>.rs Activations): about six n_embd rows, three n_ff rows and the logits per
    // ubatch token, plus the attention scores of one ubatch over the context; an estimate, in f32.
    const cpuCompute = 4 * kv.nUbatch * (6 * kv.nEmbd + 3 * kv.nFf + kv.nVocab + kv.nCtx);
    const devices = names.map((device): DeviceTotals => {
        const w = weights.get(device) ?? 0;
        const kvc = device === "CPU" ? kvBytes : 0;
        const wide = widest.get(device);
        const compute = device === "CPU" ? cpuCompute : wide === undefined ? 0 : 4 * kv.nUbatch * (wide.k + wide.n);
        return { device, weights: w, kvCache: kvc, compute, total: w + kvc + compute, free: freeBytes.get(device) ?? null };
    });
    const layers = plan.layerDevice.map((device, i) => ({ layer: i === kv.nLayer ? "output" : String(i), device }));
    const tensors = plan.tensors.map(({ name, type, bytes, device, rule }) => ({ name, type, bytes, device, rule }));
    return { schema: 1, tensors, devices, layers, warnings: plan.warnings };
}

const MiB = 1024 * 1024;
const mib = (n: number): string => (n / MiB).toFixed(2);

/** The human form: a tensor table, a per-layer summary and the per-device totals (stdout: it is data). */
export function renderPlacement(r: PlacementReport): string {
    const lines: string[] = [];
    const w = Math.max(6, ...r.tensors.map((t) => t.name.length));
    lines.push(`${"tensor".padEnd(w)}  ${"type".padEnd(9)}  ${"MiB".padStart(10)}  ${"device".padEnd(6)}  rule`);
    for (const t of r.tensors) {
        lines.push(`${t.name.padEnd(w)}  ${t.type.padEnd(9)}  ${mib(t.bytes).padStart(10)}  ${t.device.padEnd(6)}  ${t.rule}`);
    }
    lines.push("");
    const runs: string[] = [];
    for (let i = 0; i < r.layers.length; ) {
        let j = i;
        while (j + 1 < r.layers.length && r.layers[j + 1]?.device === r.layers[i]?.device && r.layers[j + 1]?.layer !== "output") j++;
        const a = r.layers[i];
        const b = r.layers[j];
        if (a !== undefined && b !== undefined) runs.push(`${a.layer === b.layer ? a.layer : `${a.layer}-${b.layer}`}: ${a.device}`);
        i = j + 1;
    }
    lines.push(`layer defaults (-ngl/-ts/-sm): ${runs.join(", ")}`);
    lines.push("");
    lines.push(`${"device".padEnd(6)}  ${"weights MiB".padStart(12)}  ${"KV MiB".padStart(10)}  ${"compute MiB".padStart(12)}  ${"total MiB".padStart(12)}  ${"free MiB".padStart(12)}  fits`);
    for (const d of r.devices) {
        const free = d.free === null ? "?" : mib(d.free);
        const fits = d.free === null ? "?" : d.total <= d.free ? "yes" : `NO (short by ${mib(d.total - d.free)} MiB)`;
        lines.push(`${d.device.padEnd(6)}  ${mib(d.weights).padStart(12)}  ${mib(d.kvCache).padStart(10)}  ${mib(d.compute).padStart(12)}  ${mib(d.total).padStart(12)}  ${free.padStart(12)}  ${fits}`);
    }
    return lines.join("\n") + "\n";
}
