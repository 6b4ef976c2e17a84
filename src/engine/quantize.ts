// Engine side of `ikl quantize` (spec/cli.md §8, quants.md §11): reads the source's tensor table, computes the
// reference's per-tensor plan (recipes.ts), resolves which imatrix entry feeds which tensor with
// llama_model_quantize_internal's name fallbacks and size checks, and runs the native job (Rust does the bytes).
// Imports native.ts directly for its own exports (readImatrix, quantizerTypes, QuantizeJob); everything else goes
// through index.ts.
import { fromNative, IklError } from "./errors.js";
import { inspectGguf, qtypes } from "./index.js";
import { loadNative } from "./native.js";
import type { GgufInspect, ImatrixInfo, MetaValue, QuantizeProgress, QuantizeSummary } from "./native.js";
import { needsImatrixType, planQuantization } from "./recipes.js";
import type { PlanModelMeta, PlanOptions, QuantPlan } from "./recipes.js";
import { sizeClass } from "../bench/size-class.js";

export type { ImatrixInfo, QuantizeProgress, QuantizeSummary } from "./native.js";

export interface QuantizeSource {
    path: string;
    info: GgufInspect;
    meta: PlanModelMeta;
    srcBytes: number[]; // per tensor, source order
}

function metaValue(info: GgufInspect, key: string): MetaValue | undefined {
    return info.metadata.find((m) => m.key === key)?.value;
}

function firstNumber(v: MetaValue | undefined): number {
    if (typeof v === "number") return v;
    if (Array.isArray(v) && typeof v[0] === "number") return v[0];
    return 0;
}

/** The hparams llama_tensor_get_type consults, from the GGUF metadata (as llm_load_hparams reads them). */
export function planMeta(info: GgufInspect): PlanModelMeta {
    const arch = String(metaValue(info, "general.architecture") ?? "");
    const num = (k: string): number => firstNumber(metaValue(info, `${arch}.${k}`));
    const nHead = num("attention.head_count");
    const kvKey = info.metadata.find((m) => m.key === `${arch}.attention.head_count_kv`);
    const nHeadKv = kvKey === undefined ? nHead : firstNumber(kvKey.value);
    const tokens = info.metadata.find((m) => m.key === "tokenizer.ggml.tokens");
    const nVocab = num("vocab_size") || (tokens?.length ?? 0);
    const nLayer = num("block_count");
    const nExpert = num("expert_count");
    const modelType = sizeClass({ arch, nLayer, nVocab, nHead, nHeadKv, nExpert });
    return { arch, n_layer: nLayer, n_expert: nExpert, n_head: nHead, n_head_kv: nHeadKv, n_vocab: nVocab, modelType };
}

export async function openSource(path: string): Promise<QuantizeSource> {
    const info = await inspectGguf(path, 0);
    // Array lengths survive maxArray = 0 (length field); values are not needed.
    return { path, info, meta: planMeta(info), srcBytes: info.tensors.map((t) => t.bytes) };
}

/** The plan for `src`; policy errors that the reference raises as exceptions become runtime errors here. */
export function planFor(src: QuantizeSource, opts: PlanOptions): QuantPlan {
    const tensors = src.info.tensors.map((t) => ({ name: t.name, shape: padShape(t.ne), type: t.type }));
    try {
        return planQuantization(tensors, src.meta, opts, qtypes());
    } catch (e) {
        if (e instanceof IklError) throw e;
        throw new IklError("IKL_E_INVALID", e instanceof Error ? e.message : String(e));
    }
}

function padShape(ne: number[]): number[] {
    const s = [...ne];
    while (s.length < 4) s.push(1);
    return s;
}

export async function readImatrix(path: string): Promise<ImatrixInfo> {
    try {
        return await loadNative().readImatrix(path);
    } catch (e) {
        throw fromNative(e);
    }
}

export function quantizerTypes(): Set<string> {
    try {
        return new Set(loadNative().quantizerTypes());
    } catch (e) {
        throw fromNative(e);
    }
}

/** prepare_imatrix: --exclude-weights drops entries whose name contains a string; --include-weights keeps only those. */
export function filterImatrix(entries: ImatrixInfo["entries"], include: string[], exclude: string[]): Map<string, number> {
    let kept = entries.filter((e) => !exclude.some((x) => e.name.includes(x)));
    if (include.length > 0) kept = kept.filter((e) => include.some((x) => e.name.includes(x)));
    return new Map(kept.map((e) => [e.name, e.nValues]));
}

/** The imatrix entry the reference uses for tensor `name` (exact name, then its merged/up/MLA fallbacks). */
export function imatrixEntryFor(name: string, has: (n: string) => boolean): string | undefined {
    if (has(name)) return name;
    const cut = (s: string): string => name.slice(0, name.indexOf(s));
    let alt: string[] = [];
    if (name.includes("ffn_up_exps.weight") || name.includes("ffn_gate_exps.weight")) {
        const base = cut(name.includes("ffn_up_exps.weight") ? "ffn_up_exps.weight" : "ffn_gate_exps.weight");
        alt = [`${base}ffn_gate_up_exps.weight`, `${base}ffn_up_exps.weight`];
    } else if (name.includes("ffn_gate_up_exps.weight")) alt = [`${cut("ffn_gate_up_exps.weight")}ffn_up_exps.weight`];
    else if (name.includes("ffn_gate.weight")) alt = [`${cut("ffn_gate.weight")}ffn_up.weight`];
    else if (name.includes(".attn_v_b.weight")) alt = [`${cut(".attn_v_b.weight")}.attn_kv_b.weight`];
    else if (name.includes(".attn_kv_b.weight")) alt = [`${cut(".attn_kv_b.weight")}.attn_v_b.weight`];
    return alt.find(has);
}

export interface ImatrixResolution {
    uses: { tensor: string; entry: string }[];
    notes: string[]; // the reference's "did not find weights for X" and size-mismatch notices
}

/** Which imatrix entry feeds each quantized tensor; throws as the reference does on size mismatches and on
 *  very-low-bit tensors left without importance data. */
export function resolveImatrix(plan: QuantPlan, entries: Map<string, number>, ignoreRules: boolean): ImatrixResolution {
    const uses: ImatrixResolution["uses"] = [];
    const notes: string[] = [];
    for (const t of plan.tensors) {
        if (!t.quantize) continue;
        let found = false;
        if (entries.size > 0) {
            const entry = imatrixEntryFor(t.name, (n) => entries.has(n));
            const want = (t.shape[0] ?? 1) * (t.shape[2] ?? 1);
            if (entry === undefined) notes.push(`did not find weights for ${t.name}`);
            else if (entries.get(entry) !== want) {
                const msg = `imatrix size ${entries.get(entry)} is different from tensor size ${want} for ${t.name}`;
                if (t.name !== "token_embd.weight") throw new IklError("IKL_E_INVALID", msg, "is the imatrix computed for this model?");
                notes.push(msg);
            } else {
                uses.push({ tensor: t.name, entry });
                found = true;
            }
        }
        if (!found && !ignoreRules && needsImatrixType(t.to, plan.ftype) && t.name !== "token_embd.weight" && t.name !== "output.weight") {
            throw new IklError("IKL_E_INVALID", `Missing importance matrix for tensor ${t.name} in a very low-bit quantization`,
                "provide an importance matrix that covers it (--imatrix), or pass --ignore-imatrix-rules");
        }
    }
    return { uses, notes };
}

/** Tensors whose planned type has no quantizer in this build → one error naming the type(s). */
export function checkQuantizers(plan: QuantPlan, have: Set<string>): string | undefined {
    const missing = new Map<string, string[]>();
    for (const t of plan.tensors) {
        if (!t.quantize || have.has(t.to)) continue;
        missing.set(t.to, [...(missing.get(t.to) ?? []), t.name]);
    }
    if (missing.size === 0) return undefined;
    return [...missing].map(([ty, names]) => `${ty} (${names.length} tensor${names.length === 1 ? "" : "s"}, e.g. ${names[0]})`).join(", ");
}

export interface RunOptions {
    src: QuantizeSource;
    dst: string;
    plan: QuantPlan;
    threads: number;
    imatrixPath?: string;
    imatrixUse?: { tensor: string; entry: string }[];
    kv?: { key: string; str?: string; int?: number }[];
    signal?: AbortSignal;
    onProgress?: (p: QuantizeProgress) => void;
    pollMs?: number;
}

/** Runs the native job; polls progress every pollMs; an aborted signal stops it (IKL_E_CANCELLED, no output). */
export async function runQuantize(o: RunOptions): Promise<QuantizeSummary> {
    let job;
    try {
        job = new (loadNative().QuantizeJob)();
    } catch (e) {
        throw fromNative(e);
    }
    const onAbort = (): void => job.abort();
    o.signal?.addEventListener("abort", onAbort, { once: true });
    const timer = o.onProgress === undefined ? undefined : setInterval(() => o.onProgress?.(job.progress()), o.pollMs ?? 200);
    try {
        const params = {
            src: o.src.path,
            dst: o.dst,
            types: o.plan.tensors.map((t) => t.to),
            threads: o.threads,
            // COPY keeps the source's recipe id, as the reference's only_copy does.
            ftype: o.plan.ftypeId >= 0 ? o.plan.ftypeId : firstNumber(metaValue(o.src.info, "general.file_type")),
            ...(o.imatrixPath !== undefined ? { imatrixPath: o.imatrixPath, imatrixUse: o.imatrixUse ?? [] } : {}),
            ...(o.kv !== undefined ? { kv: o.kv } : {})
        };
        const s = await job.run(params);
        o.onProgress?.(job.progress());
        return s;
    } catch (e) {
        throw fromNative(e);
    } finally {
        if (timer !== undefined) clearInterval(timer);
        o.signal?.removeEventListener("abort", onAbort);
    }
}
