// Quantize policy (STYLE §1.2/§1.5): tensors × recipe × rules → the per-tensor type plan that ik_llama.cpp's
// llama-quantize would produce (spec/quants.md §10–§11, cli.md §8). Pure: no I/O, no native calls; the native
// quantizer (native/core/src/quantize.rs) only executes the plan. Reference: src/llama-quantize.cpp
// (llama_model_quantize_internal, llama_tensor_get_type) and examples/quantize/quantize.cpp @ 8337e4cd; the
// transcription of the mixing rules lives in recipes/policy.ts, the preset table in recipes/ftypes.ts.
// Custom rules (--custom-q) use the -ot rule model: comma-separated REGEX=TYPE, first match wins, regex searched
// anywhere in the tensor name; they refine the recipe (not applied with --pure, as in the reference).
import { usageError } from "./errors.js";
import type { QTypeInfo } from "./native.js";
import { parseRule, splitTopLevel } from "../options/parsers.js";
import { findPreset, PRESET_NAMES } from "./recipes/ftypes.js";
import { changeTypeIfNecessary, interleaved, mixType } from "./recipes/policy.js";
import type { KindOverrides, PolicyState } from "./recipes/policy.js";

export { PRESET_NAMES } from "./recipes/ftypes.js";

export interface PlanInputTensor {
    name: string;
    shape: number[]; // ne, innermost first
    type: string; // ggml name of the source type
}

export interface PlanModelMeta {
    arch: string; // general.architecture
    n_layer: number;
    n_expert?: number;
    n_head: number; // of layer 0
    n_head_kv: number; // of layer 0
    n_vocab?: number;
    modelType?: string; // llama.cpp's model size class ("8B", "70B"); only Q5_K_S/IQ5_K(S) use it
}

export interface CustomQRule {
    regex: string | RegExp;
    type: string;
}

export interface PlanOptions {
    ftype: string; // preset name or LLAMA_FTYPE id, case-insensitive ("Q4_K_M", "iq4_k_r4", "15")
    customQ?: string | CustomQRule[]; // "re1=type1,re2=type2" or parsed rules
    pure?: boolean;
    outputTensorType?: string;
    tokenEmbeddingType?: string;
    perLayerTokenEmbeddingType?: string;
    ffnGateInpType?: string;
    attnQType?: string;
    attnKType?: string;
    attnVType?: string;
    attnQkvType?: string;
    attnOutputType?: string;
    ffnGateType?: string;
    ffnDownType?: string;
    ffnUpType?: string;
    leaveOutputTensor?: boolean;
    allowRequantize?: boolean;
    imatrixPresent?: boolean;
    ignoreImatrixRules?: boolean;
    includeWeights?: string[]; // substrings: only these tensors use the imatrix
    excludeWeights?: string[]; // substrings: these tensors do not use the imatrix
}

export interface PlannedTensor {
    name: string;
    shape: number[];
    from: string;
    to: string;
    quantize: boolean;
    rule: string;
    bytes: number;
}

export interface QuantPlan {
    ftype: string; // canonical preset name
    ftypeId: number;
    tensors: PlannedTensor[];
    totalBytes: number;
    bpw: number; // over all tensors
    warnings: string[];
}

const INT_TYPES = new Set(["i8", "i16", "i32", "i64"]);
const FLOAT_TYPES = new Set(["f32", "f16", "bf16", "bf16_r16", "f64"]);
const isQuantizedType = (t: string): boolean => !FLOAT_TYPES.has(t) && !INT_TYPES.has(t);

// main() refuses these recipes without an imatrix (unless --ignore-imatrix-rules).
const NEEDS_IMATRIX_FTYPE = ["IQ2_XS", "IQ2_XXS", "IQ2_S", "IQ2_XXS_R4", "Q2_K_S", "IQ2_XS_R4", "IQ1_S", "IQ1_S_R4", "IQ1_M_R4", "IQ1_M"];
// llama_model_quantize_internal refuses these tensor types without imatrix data for the tensor.
const VERY_LOW_BPW = new Set(["iq2_xxs", "iq2_xxs_r4", "iq2_xs", "iq2_xs_r4", "iq2_s", "iq2_s_r4", "iq1_s", "iq1_s_r4", "iq1_m",
    "iq1_m_r4", "iq1_kt", "iq2_kt"]);

/** True when llama_model_quantize_internal refuses `type` without importance data for the tensor (recipe `ftype`). */
export function needsImatrixType(type: string, ftype: string): boolean {
    return VERY_LOW_BPW.has(type) || (type === "q2_K" && ftype === "Q2_K_S");
}

function nDims(shape: number[]): number {
    for (let i = shape.length - 1; i >= 1; i--) if (shape[i] !== 1) return i + 1;
    return 1;
}

function typeLookup(qtypes: QTypeInfo[]): (text: string, what: string) => string {
    const weights = qtypes.filter((q) => q.role === "weight");
    const byLower = new Map(weights.map((q) => [q.name.toLowerCase(), q.name]));
    return (text: string, what: string): string => {
        const t = byLower.get(text.trim().toLowerCase());
        if (t === undefined) {
            throw usageError(`unknown quantization type '${text}' in ${what}`, `valid types: ${weights.map((q) => q.name).join(", ")}`);
        }
        return t;
    };
}

function rowBytes(info: QTypeInfo | undefined, ne0: number, name: string): number {
    if (info === undefined) throw usageError(`type of ${name} is not in the quant-type registry`);
    return info.rowMeta + Math.ceil(ne0 / info.block) * info.typeSize;
}

interface ParsedRule {
    source: string;
    pattern: RegExp;
    type: string;
}

function parseCustom(spec: string | CustomQRule[] | undefined, toType: (t: string, what: string) => string): ParsedRule[] {
    if (spec === undefined) return [];
    const items: { source: string; regex: string | RegExp; type: string }[] =
        typeof spec === "string"
            ? splitTopLevel(spec).filter((s) => s.trim() !== "").map((s) => {
                const text = s.trim();
                const eq = text.lastIndexOf("=");
                if (eq <= 0 || eq === text.length - 1) throw usageError(`--custom-q rule '${text}' must look like REGEX=TYPE (e.g. ffn_down_exps=iq4_k).`);
                return { source: text, regex: text.slice(0, eq), type: text.slice(eq + 1).trim() };
            })
            : spec.map((r) => ({ source: `${typeof r.regex === "string" ? r.regex : r.regex.source}=${r.type}`, regex: r.regex, type: r.type }));
    return items.map((it, i) => {
        const what = `--custom-q rule #${i + 1} '${it.source}'`;
        let pattern: RegExp;
        if (typeof it.regex === "string") {
            try {
                pattern = parseRule(`${it.regex}=x`, (x) => x).pattern;
            } catch (e) {
                throw usageError(`invalid regular expression in ${what}: ${e instanceof Error ? e.message : String(e)}`);
            }
        } else pattern = it.regex;
        return { source: it.source, pattern, type: toType(it.type, what) };
    });
}

/** The reference's per-tensor decisions for quantizing `tensors` with `opts`; throws IklError (usage) on bad input. */
export function planQuantization(tensors: PlanInputTensor[], meta: PlanModelMeta, opts: PlanOptions, qtypes: QTypeInfo[]): QuantPlan {
    const copy = opts.ftype.trim().toUpperCase() === "COPY";
    const preset = copy ? { name: "COPY", id: -1, base: "" } : findPreset(opts.ftype);
    if (preset === undefined) throw usageError(`unknown quantization type '${opts.ftype}'`, `valid names: ${PRESET_NAMES.join(", ")}`);
    const ftype = preset.name;
    const toType = typeLookup(qtypes);
    const info = new Map(qtypes.map((q) => [q.name, q]));
    const opt = (v: string | undefined, what: string): string | undefined => (v === undefined ? undefined : toType(v, what));
    const ov: KindOverrides = {
        output: opt(opts.outputTensorType, "--output-tensor-type"),
        tokenEmbd: opt(opts.tokenEmbeddingType, "--token-embedding-type"),
        perLayerTokenEmbd: opt(opts.perLayerTokenEmbeddingType, "--per-layer-token-embedding-type"),
        attnQ: opt(opts.attnQType, "--attn-q-type"),
        attnK: opt(opts.attnKType, "--attn-k-type"),
        attnV: opt(opts.attnVType, "--attn-v-type"),
        attnQkv: opt(opts.attnQkvType, "--attn-qkv-type"),
        attnOutput: opt(opts.attnOutputType, "--attn-output-type"),
        ffnGate: opt(opts.ffnGateType, "--ffn-gate-type"),
        ffnDown: opt(opts.ffnDownType, "--ffn-down-type"),
        ffnUp: opt(opts.ffnUpType, "--ffn-up-type")
    };
    const gateInpType = opt(opts.ffnGateInpType, "--ffn-gate-inp-type");
    const rules = parseCustom(opts.customQ, toType);
    const warnings: string[] = [];
    if ((opts.includeWeights?.length ?? 0) > 0 && (opts.excludeWeights?.length ?? 0) > 0) {
        throw usageError("--include-weights and --exclude-weights cannot be used together");
    }

    // imatrix coverage: prepare_imatrix drops entries by substring (--exclude-weights) or keeps only matches (--include-weights).
    const hasImatrixFor = (name: string): boolean => {
        if (opts.imatrixPresent !== true) return false;
        if (opts.excludeWeights?.some((w) => name.includes(w)) === true) return false;
        if ((opts.includeWeights?.length ?? 0) > 0) return opts.includeWeights?.some((w) => name.includes(w)) === true;
        return true;
    };
    const hasImatrix = tensors.some((t) => hasImatrixFor(t.name));
    if (!copy && opts.ignoreImatrixRules !== true && !hasImatrix && NEEDS_IMATRIX_FTYPE.includes(ftype)) {
        throw usageError("Please do not use IQ1_S, IQ1_M, IQ2_S, IQ2_XXS, IQ2_XS or Q2_K_S quantization without an importance matrix",
            `${ftype} needs an importance matrix (--imatrix), or pass --ignore-imatrix-rules`);
    }

    const nHeadKv = meta.n_head_kv;
    const qs: PolicyState = {
        arch: meta.arch,
        nLayer: meta.n_layer,
        nExpert: meta.n_expert ?? 0,
        nGqa: nHeadKv > 0 ? Math.trunc(meta.n_head / nHeadKv) : 0,
        nVocab: meta.n_vocab ?? 0,
        modelType: meta.modelType ?? "",
        hasOutput: tensors.some((t) => t.name === "output.weight"),
        hasImatrix,
        nAttentionWv: tensors.filter((t) => t.name.includes("attn_v.weight") || t.name.includes("attn_qkv.weight")).length,
        iAttentionWv: 0,
        iFfnDown: 0,
        iFfnGate: 0,
        iFfnUp: 0
    };
    const baseIsQuantized = !copy && isQuantizedType(preset.base);

    const out: PlannedTensor[] = [];
    let totalBytes = 0;
    let totalElements = 0;
    for (const t of tensors) {
        const { name, shape } = t;
        const ne0 = shape[0] ?? 1;
        const ne1 = shape[1] ?? 1;
        const elements = shape.reduce((a, b) => a * b, 1);
        totalElements += elements;
        const keep = (rule: string): void => {
            const bytes = rowBytes(info.get(t.type), ne0, name) * (elements / ne0);
            totalBytes += bytes;
            out.push({ name, shape, from: t.type, to: t.type, quantize: false, rule, bytes });
        };

        let skip = "";
        if (INT_TYPES.has(t.type)) skip = "not quantized (integer tensor)";
        else if (!name.endsWith("weight")) skip = "not quantized (name does not end in 'weight')";
        else if (nDims(shape) < 2) skip = "not quantized (1-D)";
        else if (name.includes("_norm.weight")) skip = "not quantized (norm)";
        else if (opts.leaveOutputTensor === true && name === "output.weight") skip = "not quantized (--leave-output-tensor)";
        else if (copy) skip = "copied (COPY)";
        else if (name.includes("ffn_gate_inp.weight") && (gateInpType === undefined || gateInpType === t.type)) skip = "not quantized (MoE router ffn_gate_inp)";
        else if (name === "position_embd.weight" || name === "token_types.weight") skip = "not quantized (position / token-type embedding)";
        else if (name.includes("ssm_conv1d") || name.includes("ssm_x.weight") || name.includes("ssm_dt.weight")) skip = "not quantized (Mamba ssm tensor)";
        else if (name.includes("attn_rel_b.weight")) skip = "not quantized (T5 relative position bias)";
        if (skip !== "") {
            keep(skip);
            continue;
        }

        let type = preset.base;
        const reasons: string[] = [];
        if (opts.pure === true) {
            const [w, why] = changeTypeIfNecessary(type, ne0, name);
            type = w;
            reasons.push(`--pure ${ftype}: ${preset.base}`);
            if (why !== "") reasons.push(why);
        } else if (baseIsQuantized) {
            const ruleIdx = rules.findIndex((r) => r.pattern.test(name));
            const d = mixType(qs, preset.base, name, ne0, ftype, ov);
            type = d.type;
            reasons.push(d.why === "" ? `ftype ${ftype}: ${type}` : `ftype ${ftype}: ${d.why} → ${type}`);
            if (ruleIdx >= 0) {
                const r = rules[ruleIdx] as ParsedRule;
                type = r.type;
                reasons.splice(0, reasons.length, `custom-q #${ruleIdx + 1} '${r.source}'`);
            }
            const [w, why] = changeTypeIfNecessary(type, ne0, name);
            if (why !== "") reasons.push(why);
            type = w;
            if (name === "token_embd.weight" || name === "per_layer_token_embd.weight") {
                const base = interleaved(type)[0];
                if (base !== type) {
                    reasons.push(`token embeddings cannot be row-interleaved: ${type} → ${base}`);
                    type = base;
                }
            }
        } else {
            reasons.push(`ftype ${ftype}: ${type}`);
        }
        if (ov.tokenEmbd !== undefined && name === "token_embd.weight") {
            type = ov.tokenEmbd;
            reasons.push(`--token-embedding-type ${type}`);
        }
        if (ov.perLayerTokenEmbd !== undefined && name === "per_layer_token_embd.weight") {
            type = ov.perLayerTokenEmbd;
            reasons.push(`--per-layer-token-embedding-type ${type}`);
        }
        if (ov.output !== undefined && name === "output.weight") {
            type = ov.output;
            reasons.push(`--output-tensor-type ${type}`);
        }
        if (gateInpType !== undefined && name.includes("ffn_gate_inp.weight")) {
            type = gateInpType;
            reasons.push(`--ffn-gate-inp-type ${type}`);
        }
        // The reference compares these five with the bare names (never equal to a blk.N.* name) — kept for fidelity.
        const exact: [string | undefined, string][] = [[ov.attnQ, "attn_q.weight"], [ov.attnK, "attn_k.weight"],
            [ov.attnV, "attn_v.weight"], [ov.attnQkv, "attn_qkv.weight"], [ov.attnOutput, "attn_output.weight"]];
        for (const [o, n] of exact) if (o !== undefined && name === n) type = o;
        if (name === "token_embd.weight") {
            const base = interleaved(type)[0];
            if (base !== type) {
                reasons.push(`token embeddings cannot be row-interleaved: ${type} → ${base}`);
                type = base;
            }
        }
        if (type === t.type) {
            keep(`already ${type} (${reasons.join("; ")})`);
            continue;
        }
        if (isQuantizedType(t.type) && opts.allowRequantize !== true) {
            throw usageError(`requantizing from type ${t.type} is disabled: tensor ${name} is already quantized`,
                "pass --allow-requantize (quality will suffer), or quantize from an F32/F16/BF16 model");
        }
        if (opts.ignoreImatrixRules !== true && !hasImatrixFor(name) && name !== "token_embd.weight" && name !== "output.weight" &&
            (VERY_LOW_BPW.has(type) || (type === "q2_K" && ftype === "Q2_K_S"))) {
            throw usageError(`Missing importance matrix for tensor ${name} in a very low-bit quantization`,
                "provide an importance matrix (--imatrix) or pass --ignore-imatrix-rules");
        }
        const [work, rows] = interleaved(type);
        if (ne1 % rows !== 0) {
            reasons.push(`${ne1} rows % ${rows} ≠ 0 → ${work}`);
            type = work;
        }
        const bytes = rowBytes(info.get(type), ne0, name) * (elements / ne0);
        totalBytes += bytes;
        out.push({ name, shape, from: t.type, to: type, quantize: true, rule: reasons.join("; "), bytes });
    }
    const fallbacks = out.filter((p) => p.rule.includes("fallback:")).length;
    if (fallbacks > 0) warnings.push(`${fallbacks} of ${out.length} tensor(s) required fallback quantization (row length not a multiple of 256)`);
    return {
        ftype,
        ftypeId: preset.id,
        tensors: out,
        totalBytes,
        bpw: totalElements > 0 ? (totalBytes * 8) / totalElements : 0,
        warnings
    };
}
