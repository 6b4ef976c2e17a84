// Pure analysis behind `ikl gguf-dump`: the summary card (sizes, bpw, type histogram, hparams, MLA/MoE facts),
// the per-group byte summary grouped the way -ot rules think, and the engine-compatibility verdict.
// Field names are snake_case on purpose: they are the stable `--json` schema (docs/gguf-dump-json.md) and mirror
// GGUF key words (n_embd, kv_lora_rank, …). Input: the addon's GgufInspect plus its quant-type registry.
import type { GgufInspect, MetaEntry, MetaValue, QTypeInfo, TensorEntry } from "../../engine/index.js";
import { ftypeInfo } from "../../engine/ftypes.js";

export type MlaForm = "none" | "attn_kv_b" | "split_2d" | "split_3d" | "attn_kv_b+split_2d" | "attn_kv_b+split_3d" | "split_mixed";

export interface TypeStat { type: string; tensors: number; bytes: number; fraction: number }

export interface MlaFacts {
    q_lora_rank: number | null; // null: no Q compression (plain attn_q, "lite" models)
    kv_lora_rank: number | null;
    rope_dim: number | null;
    key_length: number | null;
    value_length: number | null;
    key_length_mla: number | null; // only in mainline's convention B
    value_length_mla: number | null;
    mla_form: MlaForm;
}

export interface MoeFacts {
    expert_count: number;
    expert_used_count: number | null;
    expert_shared_count: number | null;
    expert_feed_forward_length: number | null;
    leading_dense_block_count: number | null;
    gating_func: string; // "softmax" | "sigmoid" | "sqrt-softplus" | "softmax (default)" | "unknown (N)"
    expert_weights_scale: number | null;
    expert_weights_norm: boolean | null;
    exp_probs_b: boolean;
}

export interface GgufSummary {
    architecture: string | null;
    name: string | null;
    n_params: number;
    file_size: number;
    bits_per_weight: number;
    file_type: { id: number; enum_name: string | null; description: string | null } | null;
    types: TypeStat[]; // by bytes, descending
    context_length: number | null;
    embedding_length: number | null;
    block_count: number | null;
    head_count: number | string | null; // string: per-layer array summarised, e.g. "32–64 (per layer)"
    head_count_kv: number | string | null;
    attention: MlaFacts | null; // MLA models (deepseek2 family)
    moe: MoeFacts | null; // expert_count > 0
    rope: { dimension_count: number | null; freq_base: number | null; scaling_type: string | null; scaling_factor: number | null; original_context_length: number | null };
    tokenizer: { model: string | null; pre: string | null; vocab_size: number | null; bos_token_id: number | null; eos_token_id: number | null; chat_template: { present: boolean; length: number } };
    split_count: number;
}

export interface GroupStat { group: string; tensors: number; layers: number; bytes: number; fraction: number; types: string[] }

export interface CompatVerdict {
    ik_llama: { ok: boolean; unknown_types: string[] };
    mainline: { ok: boolean; ik_only_types: string[]; reasons: string[] };
    cuda_unsupported: { type: string; tensors: number; reason: string }[]; // types the reference runs only on the CPU (no CUDA matmul kernel)
    mla_form: MlaForm;
    f16_tensors: number;
    bf16_tensors: number;
}

export interface GgufReport { inspect: GgufInspect; summary: GgufSummary; groups: GroupStat[]; compat: CompatVerdict }

/** Metadata lookup helpers over the entry list. */
export class Meta {
    private readonly byKey: Map<string, MetaEntry>;
    constructor(entries: readonly MetaEntry[], readonly arch: string | null = null) {
        this.byKey = new Map(entries.map((e) => [e.key, e]));
    }
    entry(key: string): MetaEntry | undefined {
        return this.byKey.get(key.replace(/^\{arch\}/, this.arch ?? "?"));
    }
    num(key: string): number | null {
        const v = this.entry(key)?.value;
        if (typeof v === "number") return v;
        if (typeof v === "string" && /^-?\d+$/.test(v)) return Number(v);
        return null;
    }
    str(key: string): string | null {
        const v = this.entry(key)?.value;
        return typeof v === "string" ? v : null;
    }
    bool(key: string): boolean | null {
        const v = this.entry(key)?.value;
        return typeof v === "boolean" ? v : null;
    }
    /** A scalar, or a per-layer array summarised as "min–max (per layer)". */
    perLayer(key: string): number | string | null {
        const e = this.entry(key);
        if (e === undefined || !Array.isArray(e.value)) return this.num(key);
        const nums = (e.value as MetaValue[]).filter((x): x is number => typeof x === "number");
        if (nums.length === 0) return null;
        const lo = Math.min(...nums);
        const hi = Math.max(...nums);
        return lo === hi && e.truncated !== true ? lo : `${lo}–${hi} (per layer)`;
    }
}

const GROUP_ORDER = ["embd", "attn", "ffn", "router", "shexp", "exps", "norm", "output", "other"] as const;

/** The -ot way of thinking about a tensor: which group of placement rules it belongs to. */
export function tensorGroup(name: string): string {
    if (name.startsWith("token_embd")) return "embd";
    if (name.startsWith("output.") || name === "output") return "output";
    if (/_norm\b|_norm\./.test(name) || name.startsWith("output_norm")) return "norm";
    if (name.includes("_exps")) return "exps";
    if (name.includes("_shexp")) return "shexp";
    if (name.includes("ffn_gate_inp") || name.includes("exp_probs_b")) return "router";
    if (name.includes(".attn_")) return "attn";
    if (name.includes(".ffn_")) return "ffn";
    return "other";
}

function layerOf(name: string): number | null {
    const m = /^blk\.(\d+)\./.exec(name);
    return m === null ? null : Number(m[1]);
}

export function groupStats(tensors: readonly TensorEntry[]): GroupStat[] {
    const total = tensors.reduce((s, t) => s + t.bytes, 0);
    const acc = new Map<string, { tensors: number; bytes: number; layers: Set<number>; types: Set<string> }>();
    for (const t of tensors) {
        const g = tensorGroup(t.name);
        const a = acc.get(g) ?? { tensors: 0, bytes: 0, layers: new Set<number>(), types: new Set<string>() };
        a.tensors++;
        a.bytes += t.bytes;
        const il = layerOf(t.name);
        if (il !== null) a.layers.add(il);
        a.types.add(t.type);
        acc.set(g, a);
    }
    return GROUP_ORDER.flatMap((group) => {
        const a = acc.get(group);
        if (a === undefined) return [];
        return [{ group, tensors: a.tensors, layers: a.layers.size, bytes: a.bytes, fraction: total > 0 ? a.bytes / total : 0, types: [...a.types].sort() }];
    });
}

export function typeStats(tensors: readonly TensorEntry[]): TypeStat[] {
    const total = tensors.reduce((s, t) => s + t.bytes, 0);
    const acc = new Map<string, TypeStat>();
    for (const t of tensors) {
        const s = acc.get(t.type) ?? { type: t.type, tensors: 0, bytes: 0, fraction: 0 };
        s.tensors++;
        s.bytes += t.bytes;
        acc.set(t.type, s);
    }
    const stats = [...acc.values()];
    for (const s of stats) s.fraction = total > 0 ? s.bytes / total : 0;
    return stats.sort((a, b) => b.bytes - a.bytes || a.type.localeCompare(b.type));
}

/** Which MLA tensor layout the file carries (spec/gguf.md §15.1, §15.4). */
export function mlaForm(tensors: readonly TensorEntry[]): MlaForm {
    const kvB = tensors.some((t) => /\.attn_kv_b\.weight$/.test(t.name));
    const dims = new Set(tensors.filter((t) => /\.attn_[kv]_b\.weight$/.test(t.name)).map((t) => t.ne.length));
    const split = dims.size === 0 ? null : dims.size > 1 ? "mixed" : dims.has(3) ? "3d" : "2d";
    if (split === "mixed") return "split_mixed";
    if (split === null) return kvB ? "attn_kv_b" : "none";
    return kvB ? (`attn_kv_b+split_${split}` as MlaForm) : (`split_${split}` as MlaForm);
}

const GATING: Record<number, string> = { 1: "softmax", 2: "sigmoid", 4: "sqrt-softplus" };

function moeFacts(m: Meta, tensors: readonly TensorEntry[]): MoeFacts | null {
    const n = m.num("{arch}.expert_count");
    if (n === null || n <= 0) return null;
    const g = m.num("{arch}.expert_gating_func");
    return {
        expert_count: n,
        expert_used_count: m.num("{arch}.expert_used_count"),
        expert_shared_count: m.num("{arch}.expert_shared_count"),
        expert_feed_forward_length: m.num("{arch}.expert_feed_forward_length"),
        leading_dense_block_count: m.num("{arch}.leading_dense_block_count"),
        gating_func: g === null ? "softmax (default)" : (GATING[g] ?? `unknown (${g})`),
        expert_weights_scale: m.num("{arch}.expert_weights_scale"),
        expert_weights_norm: m.bool("{arch}.expert_weights_norm"),
        exp_probs_b: tensors.some((t) => t.name.includes(".exp_probs_b"))
    };
}

function mlaFacts(m: Meta, tensors: readonly TensorEntry[]): MlaFacts | null {
    const kvLora = m.num("{arch}.attention.kv_lora_rank");
    const form = mlaForm(tensors);
    if (kvLora === null && form === "none") return null;
    return {
        q_lora_rank: m.num("{arch}.attention.q_lora_rank"),
        kv_lora_rank: kvLora,
        rope_dim: m.num("{arch}.rope.dimension_count"),
        key_length: m.num("{arch}.attention.key_length"),
        value_length: m.num("{arch}.attention.value_length"),
        key_length_mla: m.num("{arch}.attention.key_length_mla"),
        value_length_mla: m.num("{arch}.attention.value_length_mla"),
        mla_form: form
    };
}

export function summarize(inspect: GgufInspect): GgufSummary {
    const arch = new Meta(inspect.metadata).str("general.architecture");
    const m = new Meta(inspect.metadata, arch);
    const nParams = inspect.tensors.reduce((s, t) => s + t.nElements, 0);
    const tensorBytes = inspect.tensors.reduce((s, t) => s + t.bytes, 0);
    const ft = m.num("general.file_type");
    const info = ft === null ? undefined : ftypeInfo(ft);
    const template = m.str("tokenizer.chat_template");
    return {
        architecture: arch,
        name: m.str("general.name"),
        n_params: nParams,
        file_size: inspect.fileSize,
        bits_per_weight: nParams > 0 ? (tensorBytes * 8) / nParams : 0,
        file_type: ft === null ? null : { id: ft, enum_name: info?.enumName ?? null, description: info?.description || null },
        types: typeStats(inspect.tensors),
        context_length: m.num("{arch}.context_length"),
        embedding_length: m.num("{arch}.embedding_length"),
        block_count: m.num("{arch}.block_count"),
        head_count: m.perLayer("{arch}.attention.head_count"),
        head_count_kv: m.perLayer("{arch}.attention.head_count_kv"),
        attention: mlaFacts(m, inspect.tensors),
        moe: moeFacts(m, inspect.tensors),
        rope: {
            dimension_count: m.num("{arch}.rope.dimension_count"),
            freq_base: m.num("{arch}.rope.freq_base"),
            scaling_type: m.str("{arch}.rope.scaling.type"),
            scaling_factor: m.num("{arch}.rope.scaling.factor"),
            original_context_length: m.num("{arch}.rope.scaling.original_context_length")
        },
        tokenizer: {
            model: m.str("tokenizer.ggml.model"),
            pre: m.str("tokenizer.ggml.pre"),
            vocab_size: m.num("{arch}.vocab_size") ?? m.entry("tokenizer.ggml.tokens")?.length ?? null,
            bos_token_id: m.num("tokenizer.ggml.bos_token_id"),
            eos_token_id: m.num("tokenizer.ggml.eos_token_id"),
            chat_template: { present: template !== null, length: template?.length ?? 0 }
        },
        split_count: inspect.files.length
    };
}

export function compatVerdict(inspect: GgufInspect, qtypes: readonly QTypeInfo[]): CompatVerdict {
    const byId = new Map(qtypes.map((q) => [q.id, q]));
    const count = new Map<string, number>();
    for (const t of inspect.tensors) count.set(t.type, (count.get(t.type) ?? 0) + 1);
    const used = [...new Map(inspect.tensors.map((t) => [t.typeId, t.type])).entries()];
    const unknown = used.filter(([id]) => !byId.has(id)).map(([, name]) => name).sort();
    const ikOnly = used.filter(([id]) => byId.get(id)?.mainline === false).map(([, name]) => name).sort();
    const form = mlaForm(inspect.tensors);
    const reasons: string[] = [];
    if (ikOnly.length > 0) reasons.push(`ik-only tensor types: ${ikOnly.join(", ")}`);
    if (unknown.length > 0) reasons.push(`unknown tensor types: ${unknown.join(", ")}`);
    if (form === "split_2d" || form === "attn_kv_b+split_2d" || form === "split_mixed") {
        reasons.push("attn_k_b/attn_v_b stored 2-D (ik convention); mainline expects 3-D");
    }
    const cuda: CompatVerdict["cuda_unsupported"] = [];
    for (const [id, name] of used) {
        const q = byId.get(id);
        if (q === undefined) continue;
        // The reference's CUDA backend rejects these types (registry column `cuda`); IQK _R4 types do run on CUDA.
        const reason = q.cuda !== "no" ? null : q.interleave > 1 ? `row-interleaved x${q.interleave}, no CUDA kernel` : "no CUDA kernel";
        if (reason !== null) cuda.push({ type: name, tensors: count.get(name) ?? 0, reason });
    }
    return {
        ik_llama: { ok: unknown.length === 0, unknown_types: unknown },
        mainline: { ok: reasons.length === 0, ik_only_types: ikOnly, reasons },
        cuda_unsupported: cuda.sort((a, b) => a.type.localeCompare(b.type)),
        mla_form: form,
        f16_tensors: count.get("f16") ?? 0,
        bf16_tensors: count.get("bf16") ?? 0
    };
}

export function analyzeGguf(inspect: GgufInspect, qtypes: readonly QTypeInfo[]): GgufReport {
    return { inspect, summary: summarize(inspect), groups: groupStats(inspect.tensors), compat: compatVerdict(inspect, qtypes) };
}
