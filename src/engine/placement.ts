// The tensor router (STYLE §1.1: policy in TypeScript): -ngl, -ot, -ts, -sm, -mg, --cpu-moe/--n-cpu-moe and the
// devices at hand → an explicit device per tensor, with the rule that decided it. Pure: no addon, no I/O, so it
// is unit-tested against the reference's behaviour (test/unit/placement.test.ts) and runs offline for
// `--print-placement --dry-run --devices …`.
//
// Mirrors ik_llama.cpp @ 8337e4cd src/llama.cpp `llm_load_tensors` and src/llama-load-tensors.cpp:
//   * -ngl N: i_gpu_start = max(n_layer − N, 0); layers il ≥ i_gpu_start go to a GPU; the output layer
//     (output.weight, output_norm.*) only when N > n_layer (in -sm none also when 0 < N ≤ n_layer, as the
//     reference's non-layer split modes do); the input layer (token_embd) always stays on the CPU. N < 0 = all.
//   * -sm layer: layers are dealt to the GPUs in order, filling each GPU's share (-ts proportions, else free
//     memory) of the offloaded layers' bytes, as the reference's `default_layer_device` loop does (compute-buffer
//     term left out); -sm none: everything on -mg.
//   * -ot REGEX=DEV: searched anywhere in the tensor name (std::regex_search ≈ RegExp.test), first match wins,
//     before the layer default. --cpu-moe / --n-cpu-moe N append `blk\.<il>\.ffn_(up|down|gate|gate_up)_exps`
//     =CPU for the last N layers that have routed experts (the reference's single-device rule), after the -ot rules.
//   * Validation (ours): a tensor on CUDA whose type the reference cannot multiply on CUDA (`_R4` etc.) is kept
//     on the CPU with a warning naming it.

export interface PlacementTensor {
    name: string;
    type: string; // ggml type name
    bytes: number;
    nDims: number;
}

export interface PlacementDevice {
    name: string; // "CUDA0"
    freeBytes: number;
}

export interface PlacementRule {
    source: string; // as written, for reports
    pattern: RegExp;
    target: string; // "CPU" | "CUDA<n>"
}

export interface PlacementRequest {
    tensors: PlacementTensor[];
    nLayer: number;
    nGpuLayers: number; // < 0 = all layers (when a GPU exists)
    rules: PlacementRule[];
    tensorSplit?: number[];
    splitMode: "none" | "layer";
    mainGpu: number;
    cpuMoe: boolean;
    nCpuMoe: number;
    devices: PlacementDevice[];
    /** Why a type cannot live on CUDA (undefined = it can). */
    cudaUnsupported: (type: string) => string | undefined;
}

export type LayerId = number | "input" | "output";

export interface PlacedTensor {
    name: string;
    type: string;
    bytes: number;
    layer: LayerId;
    device: string;
    rule: string; // "-ot <rule>", "--cpu-moe", "-ngl 99", "input layer", "kept on CPU: …"
}

export interface PlacementPlan {
    tensors: PlacedTensor[];
    /** Default device of each repeating layer, then of the output layer (index n_layer). */
    layerDevice: string[];
    warnings: string[];
}

/** Layer of a tensor as the reference groups them: blk.N.* → N, output/output_norm → output, else input. */
export function layerOf(name: string): LayerId {
    const m = /^blk\.(\d+)\./.exec(name);
    if (m !== null) return Number(m[1]);
    if (/^output(_norm)?\./.test(name)) return "output";
    if (name.startsWith("rope_freqs.")) return 0; // created with layer 0's buffer type in the reference
    return "input";
}

/** The --cpu-moe / --n-cpu-moe override rules: the last `n` layers (counting down) that have routed experts. */
export function cpuMoeRules(tensors: PlacementTensor[], nLayer: number, n: number): PlacementRule[] {
    const rules: PlacementRule[] = [];
    if (n <= 0) return rules;
    const names = new Set(tensors.map((t) => t.name));
    for (let il = nLayer - 1; il >= 0 && rules.length < n; il--) {
        if (!names.has(`blk.${il}.ffn_down_exps.weight`)) continue;
        const source = `blk\\.${il}\\.ffn_(up|down|gate|gate_up)_exps\\.(weight|scale)=CPU`;
        rules.push({ source, pattern: new RegExp(`blk\\.${il}\\.ffn_(up|down|gate|gate_up)_exps\\.(weight|scale)`), target: "CPU" });
    }
    return rules;
}

/** Cumulative split points over the GPUs: -ts proportions, else free memory (the reference's default). */
function splits(req: PlacementRequest): number[] {
    const n = req.devices.length;
    const raw = req.tensorSplit !== undefined ? Array.from({ length: n }, (_, i) => req.tensorSplit?.[i] ?? 0) : req.devices.map((d) => d.freeBytes);
    const sum = raw.reduce((a, b) => a + b, 0);
    if (!(sum > 0)) return raw.map((_, i) => (i + 1) / n);
    let acc = 0;
    return raw.map((v) => (acc += v) / sum);
}

/** Default device per layer (0..n_layer−1) and for the output layer (index n_layer). */
function layerDevices(req: PlacementRequest, bytesPerLayer: number[]): string[] {
    const { nLayer, devices } = req;
    const out: string[] = new Array<string>(nLayer + 1).fill("CPU");
    if (devices.length === 0) return out;
    const ngl = req.nGpuLayers < 0 ? nLayer + 1 : req.nGpuLayers;
    const start = Math.max(nLayer - ngl, 0);
    const nLast = ngl > nLayer ? nLayer + 1 : nLayer; // the output layer counts when N > n_layer
    if (req.splitMode === "none" || devices.length === 1) {
        const main = devices[Math.min(req.mainGpu, devices.length - 1)]?.name ?? "CPU";
        for (let il = start; il < nLast; il++) out[il] = main;
        if (req.splitMode === "none" && ngl > 0) out[nLayer] = main;
        return out;
    }
    // -sm layer over several GPUs: fill each GPU's share of the offloaded bytes in layer order (reference
    // `default_layer_device`: a layer that straddles a boundary goes where it overshoots least).
    const cut = splits(req);
    let total = 0;
    for (let il = start; il < nLast; il++) total += bytesPerLayer[il] ?? 0;
    let il = start;
    let loaded = 0;
    for (let id = 0; id < devices.length; id++) {
        const share = (cut[id] ?? 1) * total;
        for (; il < nLast; il++) {
            const sz = bytesPerLayer[il] ?? 0;
            if (loaded + sz <= share || id === devices.length - 1) {
                out[il] = devices[id]?.name ?? "CPU";
                loaded += sz;
            } else {
                if (loaded + sz - share < share - loaded) {
                    out[il] = devices[id]?.name ?? "CPU";
                    loaded += sz;
                    il++;
                }
                break;
            }
        }
    }
    return out;
}

/** The plan: a device for every tensor, the rule that chose it, and the warnings to show. */
export function planPlacement(req: PlacementRequest): PlacementPlan {
    const warnings: string[] = [];
    const known = new Set(["CPU", ...req.devices.map((d) => d.name)]);
    for (const r of req.rules) {
        if (!known.has(r.target)) {
            const have = req.devices.length === 0 ? "no CUDA device is available" : `devices: ${[...known].join(", ")}`;
            throw new PlacementError(`-ot rule '${r.source}' names ${r.target}, but ${have}`);
        }
    }
    if (req.devices.length > 0 && req.mainGpu >= req.devices.length) {
        throw new PlacementError(`-mg ${req.mainGpu}: there are only ${req.devices.length} CUDA device(s)`);
    }
    const bytesPerLayer = new Array<number>(req.nLayer + 1).fill(0);
    for (const t of req.tensors) {
        const l = layerOf(t.name);
        const idx = l === "output" ? req.nLayer : l === "input" ? -1 : l;
        if (idx >= 0 && idx <= req.nLayer) bytesPerLayer[idx] = (bytesPerLayer[idx] ?? 0) + t.bytes;
    }
    const layerDevice = layerDevices(req, bytesPerLayer);
    const ngl = req.nGpuLayers < 0 ? "all" : String(req.nGpuLayers);
    const moeN = req.cpuMoe ? req.nLayer : req.nCpuMoe;
    const moeRules = cpuMoeRules(req.tensors, req.nLayer, moeN);
    const moeFlag = req.cpuMoe ? "--cpu-moe" : `--n-cpu-moe ${req.nCpuMoe}`;
    const rules: [PlacementRule, string][] = [...req.rules.map((r): [PlacementRule, string] => [r, `-ot ${r.source}`]), ...moeRules.map((r): [PlacementRule, string] => [r, moeFlag])];
    const tensors = req.tensors.map((t): PlacedTensor => {
        const layer = layerOf(t.name);
        let device: string;
        let rule: string;
        const hit = rules.find(([r]) => r.pattern.test(t.name));
        if (hit !== undefined) {
            device = hit[0].target;
            rule = hit[1];
        } else if (layer === "input") {
            device = "CPU";
            rule = "input layer (always CPU)";
        } else {
            device = layerDevice[layer === "output" ? req.nLayer : layer] ?? "CPU";
            rule = req.devices.length === 0 ? "no CUDA device" : `-ngl ${ngl}`;
        }
        if (device !== "CPU") {
            const why = req.cudaUnsupported(t.type);
            if (why !== undefined) {
                warnings.push(`${t.name} (${t.type}) kept on the CPU: ${why}`);
                device = "CPU";
                rule = `kept on CPU: ${why}`;
            }
        }
        return { name: t.name, type: t.type, bytes: t.bytes, layer, device, rule };
    });
    return { tensors, layerDevice, warnings };
}

export class PlacementError extends Error {}
