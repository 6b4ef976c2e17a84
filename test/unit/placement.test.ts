// The tensor router (src/engine/placement.ts) against the reference's rules (ik_llama.cpp @ 8337e4cd
// src/llama.cpp llm_load_tensors, src/llama-load-tensors.cpp): -ngl layer counting with the output layer,
// first-match -ot searched anywhere in the name, --cpu-moe/--n-cpu-moe from the last layer down, -ts/-sm/-mg,
// CPU-only types kept on the CPU with a warning; plus the memory report and --devices parsing.
import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { cpuMoeRules, layerOf, planPlacement, PlacementError, type PlacementRequest, type PlacementTensor } from "../../src/engine/placement.js";
import { placementReport, renderPlacement, type KvShape } from "../../src/engine/placement-report.js";
import { parseDeviceSizes } from "../../src/options/offload.js";
import { collectPlacementRules } from "../../src/options/parsers.js";

const MiB = 1 << 20;

/** A DeepSeek2-shaped tensor list: layer 0 dense, layers ≥ 1 MoE with shared experts. */
function dsTensors(nLayer: number): PlacementTensor[] {
    const t: PlacementTensor[] = [{ name: "token_embd.weight", type: "q8_0", bytes: 100 * MiB, nDims: 2 }];
    for (let il = 0; il < nLayer; il++) {
        const b = (s: string, bytes: number, type = "q8_0", nDims = 2): void => void t.push({ name: `blk.${il}.${s}`, type, bytes, nDims });
        b("attn_norm.weight", 1024, "f32", 1);
        b("attn_q.weight", 4 * MiB);
        b("attn_kv_a_mqa.weight", 2 * MiB);
        b("attn_kv_b.weight", 2 * MiB);
        b("attn_output.weight", 4 * MiB);
        b("ffn_norm.weight", 1024, "f32", 1);
        if (il === 0) {
            b("ffn_gate.weight", 8 * MiB);
            b("ffn_up.weight", 8 * MiB);
            b("ffn_down.weight", 8 * MiB);
        } else {
            b("ffn_gate_inp.weight", 64 * 1024, "f32");
            b("ffn_gate_exps.weight", 64 * MiB);
            b("ffn_up_exps.weight", 64 * MiB);
            b("ffn_down_exps.weight", 64 * MiB);
            b("ffn_gate_shexp.weight", 2 * MiB);
            b("ffn_up_shexp.weight", 2 * MiB);
            b("ffn_down_shexp.weight", 2 * MiB);
        }
    }
    t.push({ name: "output_norm.weight", type: "f32", bytes: 1024, nDims: 1 });
    t.push({ name: "output.weight", type: "q8_0", bytes: 100 * MiB, nDims: 2 });
    return t;
}

function req(over: Partial<PlacementRequest>): PlacementRequest {
    return {
        tensors: dsTensors(4),
        nLayer: 4,
        nGpuLayers: -1,
        rules: [],
        splitMode: "layer",
        mainGpu: 0,
        cpuMoe: false,
        nCpuMoe: 0,
        devices: [{ name: "CUDA0", freeBytes: 24 * 1024 * MiB }],
        cudaUnsupported: (t) => (t.endsWith("_r4") ? "CPU-only type" : undefined),
        ...over
    };
}

const dev = (p: ReturnType<typeof planPlacement>, name: string): string | undefined => p.tensors.find((t) => t.name === name)?.device;
const rule = (p: ReturnType<typeof planPlacement>, name: string): string | undefined => p.tensors.find((t) => t.name === name)?.rule;
const ot = (...rules: string[]): PlacementRequest["rules"] => rules.reduce<PlacementRequest["rules"]>((acc, r) => collectPlacementRules(r, acc), []);

describe("layer grouping", () => {
    it("blk.N → N, output/output_norm → output, token_embd → input", () => {
        expect(layerOf("blk.12.ffn_up_exps.weight")).toBe(12);
        expect(layerOf("output.weight")).toBe("output");
        expect(layerOf("output_norm.weight")).toBe("output");
        expect(layerOf("token_embd.weight")).toBe("input");
        expect(layerOf("rope_freqs.weight")).toBe(0);
    });
});

describe("-ngl", () => {
    it("all layers and the output layer when N > n_layer; token_embd always on the CPU", () => {
        const p = planPlacement(req({ nGpuLayers: 99 }));
        expect(dev(p, "blk.0.attn_q.weight")).toBe("CUDA0");
        expect(dev(p, "blk.3.ffn_down_exps.weight")).toBe("CUDA0");
        expect(dev(p, "output.weight")).toBe("CUDA0");
        expect(dev(p, "token_embd.weight")).toBe("CPU");
        expect(rule(p, "token_embd.weight")).toMatch(/input layer/);
        expect(rule(p, "blk.0.attn_q.weight")).toBe("-ngl 99");
    });

    it("N = n_layer offloads the repeating layers but not the output layer (-sm layer)", () => {
        const p = planPlacement(req({ nGpuLayers: 4 }));
        expect(dev(p, "blk.0.attn_q.weight")).toBe("CUDA0");
        expect(dev(p, "output.weight")).toBe("CPU");
        expect(dev(p, "output_norm.weight")).toBe("CPU");
    });

    it("partial N takes the LAST N layers (i_gpu_start = n_layer − N)", () => {
        const p = planPlacement(req({ nGpuLayers: 2 }));
        expect(dev(p, "blk.0.attn_q.weight")).toBe("CPU");
        expect(dev(p, "blk.1.attn_q.weight")).toBe("CPU");
        expect(dev(p, "blk.2.attn_q.weight")).toBe("CUDA0");
        expect(dev(p, "blk.3.attn_q.weight")).toBe("CUDA0");
        expect(p.layerDevice).toEqual(["CPU", "CPU", "CUDA0", "CUDA0", "CPU"]);
    });

    it("-sm none with partial N also puts the output layer on the main GPU (the reference's non-layer modes)", () => {
        const p = planPlacement(req({ nGpuLayers: 2, splitMode: "none" }));
        expect(dev(p, "output.weight")).toBe("CUDA0");
        expect(dev(p, "blk.0.attn_q.weight")).toBe("CPU");
    });

    it("N = 0 or no GPU keeps everything on the CPU", () => {
        for (const p of [planPlacement(req({ nGpuLayers: 0 })), planPlacement(req({ devices: [] }))]) {
            expect(p.tensors.every((t) => t.device === "CPU")).toBe(true);
        }
    });
});

describe("-ot", () => {
    it("exps=CPU: routed experts on the CPU, everything else of the layers on the GPU (regex searched anywhere)", () => {
        const p = planPlacement(req({ nGpuLayers: 99, rules: ot("exps=CPU") }));
        expect(dev(p, "blk.1.ffn_up_exps.weight")).toBe("CPU");
        expect(rule(p, "blk.1.ffn_up_exps.weight")).toBe("-ot exps=CPU");
        expect(dev(p, "blk.1.ffn_up_shexp.weight")).toBe("CUDA0");
        expect(dev(p, "blk.0.ffn_up.weight")).toBe("CUDA0");
    });

    it("first matching rule wins, across repeated -ot and comma-joined lists", () => {
        const two = [{ name: "CUDA0", freeBytes: 1 }, { name: "CUDA1", freeBytes: 1 }];
        const p = planPlacement(req({ nGpuLayers: 99, devices: two, rules: ot("blk\\.[12]\\.ffn_up_exps=CUDA1,blk\\.1\\.=CPU", "exps=CPU") }));
        expect(dev(p, "blk.1.ffn_up_exps.weight")).toBe("CUDA1");
        expect(dev(p, "blk.1.ffn_down_exps.weight")).toBe("CPU");
        expect(dev(p, "blk.1.attn_q.weight")).toBe("CPU");
        expect(dev(p, "blk.2.ffn_down_exps.weight")).toBe("CPU");
        expect(dev(p, "blk.2.ffn_up_exps.weight")).toBe("CUDA1");
    });

    it("a rule may move the input layer or a CPU layer onto a GPU", () => {
        const p = planPlacement(req({ nGpuLayers: 0, rules: ot("token_embd=CUDA0", "blk\\.0\\.attn=CUDA0") }));
        expect(dev(p, "token_embd.weight")).toBe("CUDA0");
        expect(dev(p, "blk.0.attn_q.weight")).toBe("CUDA0");
        expect(dev(p, "blk.0.ffn_up.weight")).toBe("CPU");
    });

    it("a rule naming a missing device is an error", () => {
        expect(() => planPlacement(req({ rules: ot("exps=CUDA1") }))).toThrow(PlacementError);
        expect(() => planPlacement(req({ devices: [], rules: ot("exps=CUDA0") }))).toThrow(/no CUDA device/);
    });
});

describe("--cpu-moe / --n-cpu-moe", () => {
    it("--n-cpu-moe N keeps the experts of the last N layers that have experts on the CPU", () => {
        const rules = cpuMoeRules(dsTensors(4), 4, 2);
        expect(rules.map((r) => r.source)).toEqual([
            "blk\\.3\\.ffn_(up|down|gate|gate_up)_exps\\.(weight|scale)=CPU",
            "blk\\.2\\.ffn_(up|down|gate|gate_up)_exps\\.(weight|scale)=CPU"
        ]);
        const p = planPlacement(req({ nGpuLayers: 99, nCpuMoe: 2 }));
        expect(dev(p, "blk.3.ffn_gate_exps.weight")).toBe("CPU");
        expect(dev(p, "blk.2.ffn_up_exps.weight")).toBe("CPU");
        expect(dev(p, "blk.1.ffn_up_exps.weight")).toBe("CUDA0");
        expect(dev(p, "blk.3.ffn_up_shexp.weight")).toBe("CUDA0");
        expect(rule(p, "blk.3.ffn_gate_exps.weight")).toBe("--n-cpu-moe 2");
    });

    it("--cpu-moe covers every MoE layer (layer 0 is dense: nothing to move); -ot rules still come first", () => {
        const p = planPlacement(req({ nGpuLayers: 99, cpuMoe: true, rules: ot("blk\\.1\\.ffn_up_exps=CUDA0") }));
        expect(["blk.1.ffn_down_exps.weight", "blk.2.ffn_up_exps.weight", "blk.3.ffn_gate_exps.weight"].map((n) => dev(p, n))).toEqual(["CPU", "CPU", "CPU"]);
        expect(dev(p, "blk.1.ffn_up_exps.weight")).toBe("CUDA0");
        expect(dev(p, "blk.0.ffn_up.weight")).toBe("CUDA0");
    });
});

describe("-ts / -sm / -mg over two GPUs", () => {
    const two = [{ name: "CUDA0", freeBytes: 10 }, { name: "CUDA1", freeBytes: 10 }];
    const uniform = (n: number): PlacementTensor[] => [
        { name: "token_embd.weight", type: "f16", bytes: 1, nDims: 2 },
        ...Array.from({ length: n }, (_, il) => ({ name: `blk.${il}.attn_q.weight`, type: "f16", bytes: MiB, nDims: 2 })),
        { name: "output.weight", type: "f16", bytes: MiB, nDims: 2 }
    ];

    it("layers are dealt in order by the split proportions (equal free memory → halves)", () => {
        const p = planPlacement(req({ tensors: uniform(8), nLayer: 8, nGpuLayers: 99, devices: two }));
        expect(p.layerDevice).toEqual(["CUDA0", "CUDA0", "CUDA0", "CUDA0", "CUDA1", "CUDA1", "CUDA1", "CUDA1", "CUDA1"]);
    });

    it("-ts 3,1 gives the first GPU three quarters", () => {
        const p = planPlacement(req({ tensors: uniform(7), nLayer: 7, nGpuLayers: 99, devices: two, tensorSplit: [3, 1] }));
        expect(p.layerDevice.filter((d) => d === "CUDA0")).toHaveLength(6);
        expect(p.layerDevice.slice(6)).toEqual(["CUDA1", "CUDA1"]);
    });

    it("-sm none puts everything on -mg; -mg out of range is an error", () => {
        const p = planPlacement(req({ tensors: uniform(4), nLayer: 4, nGpuLayers: 99, devices: two, splitMode: "none", mainGpu: 1 }));
        expect(p.layerDevice).toEqual(["CUDA1", "CUDA1", "CUDA1", "CUDA1", "CUDA1"]);
        expect(() => planPlacement(req({ devices: two, mainGpu: 2 }))).toThrow(/-mg 2/);
    });
});

describe("validation", () => {
    it("a CPU-only type placed on CUDA stays on the CPU with a warning naming the tensor", () => {
        const tensors = dsTensors(2).map((t) => (t.name === "blk.1.ffn_up_exps.weight" ? { ...t, type: "iq4_k_r4" } : t));
        const p = planPlacement(req({ tensors, nLayer: 2, nGpuLayers: 99 }));
        expect(dev(p, "blk.1.ffn_up_exps.weight")).toBe("CPU");
        expect(p.warnings).toEqual(["blk.1.ffn_up_exps.weight (iq4_k_r4) kept on the CPU: CPU-only type"]);
    });
});

describe("memory report", () => {
    const kv: KvShape = { nLayer: 4, nCtx: 1024, nUbatch: 512, nEmbd: 2048, nFf: 8192, nVocab: 32000, kElemsPerToken: 2048, vElemsPerToken: 2048, kBytesPerElem: 2, vBytesPerElem: 2 };

    it("weights per device add up to the file's tensors; KV on the CPU; GPU scratch from the widest matrix", () => {
        const p = planPlacement(req({ nGpuLayers: 99, rules: ot("exps=CPU") }));
        const dims = new Map(p.tensors.map((t) => [t.name, [2048, t.name.includes("output.weight") ? 32000 : 4096]]));
        const r = placementReport(p, kv, new Map([["CPU", 64 * 1024 * MiB], ["CUDA0", 24 * 1024 * MiB]]), dims);
        const total = dsTensors(4).reduce((a, t) => a + t.bytes, 0);
        expect(r.devices.reduce((a, d) => a + d.weights, 0)).toBe(total);
        const cpu = r.devices.find((d) => d.device === "CPU");
        const gpu = r.devices.find((d) => d.device === "CUDA0");
        expect(cpu?.weights).toBe(100 * MiB + 3 * 3 * 64 * MiB);
        expect(cpu?.kvCache).toBe(4 * 1024 * (2048 * 2 + 2048 * 2));
        expect(gpu?.kvCache).toBe(0);
        expect(gpu?.compute).toBe(4 * 512 * (2048 + 32000));
        expect(r.schema).toBe(1);
        const text = renderPlacement(r);
        expect(text).toMatch(/blk\.1\.ffn_up_exps\.weight\s+q8_0\s+64\.00\s+CPU\s+-ot exps=CPU/);
        expect(text).toMatch(/layer defaults \(-ngl\/-ts\/-sm\): 0-3: CUDA0, output: CUDA0/);
        expect(text).toMatch(/CUDA0 .* yes/);
    });

    it("a device that cannot hold its share says by how much", () => {
        const p = planPlacement(req({ nGpuLayers: 99 }));
        const r = placementReport(p, kv, new Map([["CPU", 1e12], ["CUDA0", 100 * MiB]]), new Map());
        expect(renderPlacement(r)).toMatch(/CUDA0 .* NO \(short by [\d.]+ MiB\)/);
    });
});

describe("--devices", () => {
    it("parses CUDA0=24GiB,CUDA1=24GiB and refuses gaps, duplicates and the CPU", () => {
        expect(parseDeviceSizes("CUDA0=24GiB,cuda1=512MiB")).toEqual([{ name: "CUDA0", freeBytes: 24 * 1024 * MiB }, { name: "CUDA1", freeBytes: 512 * MiB }]);
        for (const bad of ["CUDA1=24GiB", "CUDA0=1G,CUDA0=2G", "CPU=1G", "CUDA0", "CUDA0=lots"]) {
            expect(() => parseDeviceSizes(bad)).toThrow(InvalidArgumentError);
        }
    });
});
