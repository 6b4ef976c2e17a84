// The `ikl bench` driver: llama-bench's test loop (spec/cli.md §5.3) on the engine. Per instance of the cross
// product (params.ts) it creates a fresh context of n_prompt + n_gen cells, runs the warm-up, then `reps` measured
// repetitions, each starting from an empty cache. A repetition's time is the sum of the Rust forward times
// (`computeUs`) of its decode calls, so the t/s column is what llama_decode costs; `--wall` also measures the
// end-to-end time per repetition (JS and N-API overhead included): a `wall t/s` column after `t/s` (md),
// `samples_wall_ns`/`samples_wall_ts` (json/jsonl) and a line per test on stderr. Results are formatted by
// report.ts / report-md.ts. Mirrors ik_llama.cpp examples/llama-bench/llama-bench.cpp (main, test_prompt,
// test_gen) @ 8337e4cd3.
import { Context, Model, inspectGguf, qtypes, systemInfo } from "../engine/index.js";
import { placementFor, type OffloadPolicy } from "../engine/placement-open.js";
import { paddedCtx } from "../engine/generate.js";
import { ftypeInfo } from "../engine/ftypes.js";
import type { GgufInspect, ModelMeta } from "../engine/native.js";
import { sizeClass } from "./size-class.js";
import { sprintf } from "../ui/printf.js";
import { interrupted, isCancelled } from "../ui/sigint.js";
import { expandInstances, testLabel, testTokens, type BenchInstance, type BenchParams } from "./params.js";
import { avgD, formatCsv, formatJson, formatJsonl, formatMarkdown, stdevD, type BenchResult, type BuildInfo } from "./report.js";

export interface BenchRunOptions {
    params: BenchParams;
    defaults: BenchParams;
    format: "md" | "csv" | "json" | "jsonl";
    wall: boolean;
    out: (s: string) => void;
    log: (s: string) => void;
    /** Ctrl-C: stop the running test and print the table of the tests completed so far. */
    signal?: AbortSignal;
}

/** std::rand()-like stream; the tokens only need to be valid ids. */
function rng(seed: number): () => number {
    let s = seed >>> 0;
    return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 1;
}

interface Timed {
    us: number;
}

/** test_prompt: n tokens from n_past in batches of n_batch (first = BOS when the model adds one). */
async function prompt(ctx: Context, model: Model, n: number, nPast: number, nBatch: number, rand: () => number, t: Timed, signal?: AbortSignal): Promise<void> {
    const nVocab = model.meta.nVocab;
    for (let done = 0; done < n; done += nBatch) {
        const m = Math.min(nBatch, n - done);
        const tokens = Uint32Array.from({ length: m }, () => rand() % nVocab);
        if (done === 0 && nPast === 0 && model.meta.addBos && model.meta.bos !== null) tokens[0] = model.meta.bos;
        const pos = Int32Array.from({ length: m }, (_, i) => nPast + done + i);
        t.us += (await ctx.decode({ tokens, pos, seq: new Int32Array(m), outRows: Int32Array.of(m - 1), signal })).computeUs;
    }
}

/** test_gen: n single-token decodes from n_past. */
async function gen(ctx: Context, model: Model, n: number, nPast: number, rand: () => number, t: Timed, signal?: AbortSignal): Promise<void> {
    let token = model.meta.addBos && model.meta.bos !== null && nPast === 0 ? model.meta.bos : rand() % model.meta.nVocab;
    for (let i = 0; i < n; i++) {
        t.us += (await ctx.decode({ tokens: Uint32Array.of(token), pos: Int32Array.of(nPast + i), seq: Int32Array.of(0), outRows: Int32Array.of(0), signal })).computeUs;
        token = rand() % model.meta.nVocab;
    }
}

/** Per repetition: Rust compute time and end-to-end (wall) time, ns. */
async function runInstance(model: Model, inst: BenchInstance, rand: () => number, log: (s: string) => void, wall: boolean, signal?: AbortSignal): Promise<{ samples: number[]; walls: number[] }> {
    const [threads, threadsBatch] = inst.nThreads;
    const nCtx = Math.max(1, inst.nPrompt + inst.nGen);
    const fa = inst.flashAttn;
    const ctx = await Context.create(model, {
        nCtx: paddedCtx(nCtx, fa), nBatch: Math.min(inst.nBatch, nCtx), nUbatch: Math.min(inst.nUbatch, inst.nBatch), threads, threadsBatch,
        typeK: inst.typeK, typeV: inst.typeV, flashAttn: fa ? "on" : "off", ser: inst.ser,
        mla: inst.mlaAttn, attentionMaxBatch: inst.attnMaxBatch, fusedMoe: inst.fmoe, groupedExperts: inst.ger
    });
    const nBatch = Math.min(inst.nBatch, nCtx);
    const scratch = { us: 0 };
    if (inst.warmup) {
        if (inst.nPrompt > 0) await prompt(ctx, model, 1, 0, nBatch, rand, scratch, signal);
        if (inst.nGen > 0) await gen(ctx, model, 1, inst.kind === "tg" ? 0 : 1, rand, scratch, signal);
    }
    const samples: number[] = [];
    const walls: number[] = [];
    for (let r = 0; r < inst.reps; r++) {
        ctx.kvClear();
        const t = { us: 0 };
        const w0 = performance.now();
        if (inst.kind === "gp") await prompt(ctx, model, inst.nPrompt, 0, nBatch, rand, scratch, signal); // untimed
        const w1 = performance.now();
        if (inst.kind === "pp" || inst.kind === "pg") await prompt(ctx, model, inst.nPrompt, 0, nBatch, rand, t, signal);
        if (inst.kind !== "pp") await gen(ctx, model, inst.nGen, inst.kind === "tg" ? 0 : inst.nPrompt, rand, t, signal);
        samples.push(Math.max(1, Math.round(t.us * 1000)));
        walls.push((performance.now() - (inst.kind === "gp" ? w1 : w0)) * 1e6);
    }
    if (wall) {
        const n = testTokens(inst.kind, inst.nPrompt, inst.nGen);
        const ts = (v: number[]): string => { const x = v.map((ns) => (1e9 * n) / ns); return sprintf("%.2f ± %.2f", avgD(x), stdevD(x)); };
        log(`bench: ${testLabel(inst.kind, inst.nPrompt, inst.nGen)} t=${threads}: ${ts(samples)} t/s Rust compute, ${ts(walls)} t/s wall\n`);
    }
    return { samples, walls };
}

interface Counted {
    elems: number;
    bytes: number;
}

/**
 * The tensors the reference derives at load for DeepSeek MLA (llm_prepare_mla), which its llama_model_size and
 * n_params count: with `-mla ≥ 1` and `attn_kv_b` but no `attn_k_b`, wk_b (Q8_0 — Q8_0_R8 for an interleaved
 * kv_b — when kv_b is quantized, else kv_b's type) and wv_b (kv_b's type); with `-mla ≥ 2` and only the split
 * `attn_k_b`/`attn_v_b`, wkv_b (F16 or BF16 when both are, else Q8_0).
 */
function derivedMla(g: GgufInspect, mla: number): Counted[] {
    const arch = String(g.metadata.find((e) => e.key === "general.architecture")?.value ?? "");
    const num = (key: string): number => Number(g.metadata.find((e) => e.key === `${arch}.${key}`)?.value ?? 0);
    const r = num("attention.kv_lora_rank");
    if (mla <= 0 || r <= 0) return [];
    const types = new Map(qtypes().map((q) => [q.name, q]));
    const sized = (type: string, elems: number): Counted => {
        const q = types.get(type);
        return { elems, bytes: q === undefined ? 0 : (elems / q.block) * q.typeSize };
    };
    const quantized = (type: string): boolean => !["f32", "f16", "bf16"].includes(type);
    const byName = new Map(g.tensors.map((t) => [t.name, t]));
    const h = num("attention.head_count");
    const v = num("attention.value_length");
    const nope = num("attention.key_length") - num("rope.dimension_count");
    const out: Counted[] = [];
    for (let il = 0; il < num("block_count"); il++) {
        const kvb = byName.get(`blk.${il}.attn_kv_b.weight`);
        const kb = byName.get(`blk.${il}.attn_k_b.weight`);
        const vb = byName.get(`blk.${il}.attn_v_b.weight`);
        if (kvb !== undefined && kb === undefined) {
            const id = types.get(kvb.type)?.id ?? 0;
            const wkType = !quantized(kvb.type) ? kvb.type : id >= 202 && id <= 399 ? "q8_0_r8" : "q8_0";
            out.push(sized(wkType, h * nope * r), sized(kvb.type, h * v * r));
        } else if (kvb === undefined && kb !== undefined && vb !== undefined && mla >= 2) {
            const t = kb.type === vb.type && (kb.type === "f16" || kb.type === "bf16") ? kb.type : "q8_0";
            out.push(sized(t, h * (nope + v) * r));
        }
    }
    return out;
}

/**
 * "<arch> <size class> <ftype>" (llama_model_desc), the tensor bytes (llama_model_size) and parameter count
 * (llama_model_n_params), counted as the reference counts them: a model without `output.weight` ties it to
 * `token_embd`, which the reference loads as a second (duplicated) tensor; DeepSeek MLA tensors derived at load
 * (derivedMla) are added.
 */
async function describe(path: string, meta: ModelMeta, mla: number): Promise<{ type: string; size: number; params: number }> {
    const g = await inspectGguf(path, 0);
    const arch = meta.arch ?? "?";
    const num = (key: string): number => {
        const v = g.metadata.find((e) => e.key === key)?.value;
        return typeof v === "number" ? v : 0;
    };
    const ft = num("general.file_type");
    const info = g.metadata.some((e) => e.key === "general.file_type") ? ftypeInfo(ft) : undefined;
    const name = info === undefined ? "unknown" : info.description === "" ? info.enumName.replace(/^(MOSTLY|ALL)_/, "") : info.description;
    const cls = sizeClass({ arch, nLayer: meta.nLayer, nVocab: meta.nVocab, nHead: meta.nHead, nHeadKv: meta.nHeadKv, nExpert: num(`${arch}.expert_count`) });
    const tied = g.tensors.some((t) => t.name === "output.weight") ? [] : g.tensors.filter((t) => t.name === "token_embd.weight");
    const counted: Counted[] = [...[...g.tensors, ...tied].map((t) => ({ elems: t.ne.reduce((a, b) => a * b, 1), bytes: t.bytes })), ...derivedMla(g, mla)];
    const sum = (k: keyof Counted): number => counted.reduce((s, t) => s + t[k], 0);
    return { type: `${arch} ${cls} ${name}`, size: sum("bytes"), params: sum("elems") };
}

/**
 * Open an instance's model with its placement (-ngl/-sm/-mg/-ts/-ot/--n-cpu-moe → engine/placement.ts). Without
 * CUDA the layer options are ignored, as a CPU build of llama-bench ignores them; an -ot rule naming a GPU is an error.
 */
async function openModel(inst: BenchInstance, cuda: boolean, log: (s: string) => void): Promise<Model> {
    const policy: OffloadPolicy = {
        nGpuLayers: cuda ? inst.nGpuLayers : 0, overrideTensor: inst.overrideRules, devices: undefined,
        tensorSplit: inst.tensorSplit.some((v) => v > 0) ? inst.tensorSplit : undefined, splitMode: inst.splitMode, mainGpu: inst.mainGpu, cpuMoe: false, nCpuMoe: 0
    };
    const shape = { ctxSize: Math.max(1, inst.nPrompt + inst.nGen), ubatchSize: inst.nUbatch, cacheTypeK: inst.typeK, cacheTypeV: inst.typeV };
    const placement = await placementFor(inst.model, policy, shape, (w) => log(`${w}\n`));
    return Model.open(inst.model, { threads: inst.nThreads[0], runTimeRepack: inst.repack, placement });
}

/** What decides a model reload: the file and everything that changes its placement or layout. */
function loadKey(i: BenchInstance): string {
    return JSON.stringify([i.model, i.nGpuLayers, i.splitMode, i.mainGpu, i.tensorSplit, i.repack]);
}

export async function runBench(o: BenchRunOptions): Promise<void> {
    const info = systemInfo();
    const cuda = info.cuda.available && info.cuda.devices.length > 0;
    const gpuInfo = info.cuda.devices.map((d) => d.name).join(", ");
    const build: BuildInfo = { commit: `ikl-${info.version}`, number: 0, cuda, vulkan: false, metal: false, sycl: false, gpuBlas: false, blas: false, cpuInfo: `${info.arch} ${info.cpuTier}`, gpuInfo };
    if (!cuda && (o.params.nGpuLayers.some((n) => n !== 999) || o.params.tensorSplit.some((t) => t.length > 0))) {
        o.log(`bench: CUDA is not available (${info.cuda.reason ?? "no device"}): -ngl/-ts are ignored, every test runs on the CPU\n`);
    }
    const results: BenchResult[] = [];
    const rand = rng(1);
    let model: Model | undefined;
    let loaded = "";
    let desc = { type: "", size: 0, params: 0 };
    let descKey = "";
    for (const inst of expandInstances(o.params)) {
        if (model === undefined || loadKey(inst) !== loaded) {
            model?.close();
            model = undefined;
            loaded = loadKey(inst);
            model = await openModel(inst, cuda, o.log);
        }
        if (descKey !== `${loaded}/${inst.mlaAttn}`) {
            descKey = `${loaded}/${inst.mlaAttn}`;
            desc = await describe(inst.model, model.meta, inst.mlaAttn);
        }
        let samplesNs: number[];
        let walls: number[];
        try {
            ({ samples: samplesNs, walls } = await runInstance(model, inst, rand, o.log, o.wall, o.signal));
        } catch (e) {
            if (!isCancelled(e)) throw e;
            break;
        }
        const testTime = new Date().toISOString().replace(/\.\d+Z$/, "Z");
        const r: BenchResult = { inst, modelType: desc.type, modelSize: desc.size, modelNParams: desc.params, testTime, samplesNs };
        if (o.wall) r.wallNs = walls;
        results.push(r);
        if (o.format === "jsonl") o.out(formatJsonl([r], build));
    }
    if (o.format === "md") o.out(formatMarkdown(o.params, o.defaults, results, build));
    if (o.format === "csv") o.out(formatCsv(results, build));
    if (o.format === "json") o.out(formatJson(results, build));
    if (o.signal?.aborted === true) throw interrupted("bench");
}
