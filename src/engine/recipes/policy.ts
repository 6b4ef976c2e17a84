// The per-tensor mixing policy of ik_llama.cpp llama-quantize: a transcription of llama_tensor_get_type,
// change_type_if_necessary and interleaved_properties (src/llama-quantize.cpp @ 8337e4cd). Branch order and
// substring tests are kept exactly as in the reference, because they decide which rule a name falls into
// (e.g. DeepSeek's attn_kv_b / attn_kv_a_mqa contain "attn_k" and take the attn_k rules). Pure.

export interface PolicyState {
    arch: string;
    nLayer: number;
    nExpert: number; // hparams.n_expert (0 for dense models)
    nGqa: number; // n_head / n_head_kv (0 when n_head_kv is 0)
    nVocab: number;
    modelType: string; // "8B", "70B", … ("" when unknown)
    hasOutput: boolean;
    hasImatrix: boolean;
    nAttentionWv: number;
    iAttentionWv: number;
    iFfnDown: number;
    iFfnGate: number;
    iFfnUp: number;
}

/** Per-kind overrides that llama_tensor_get_type consults (--attn-v-type, …); undefined = not given. */
export interface KindOverrides {
    output?: string;
    tokenEmbd?: string;
    perLayerTokenEmbd?: string;
    attnQ?: string;
    attnK?: string;
    attnV?: string;
    attnQkv?: string;
    attnOutput?: string;
    ffnGate?: string;
    ffnDown?: string;
    ffnUp?: string;
}

export interface Decision {
    type: string;
    why: string; // the rule that set the type ("" when the base type was kept)
}

export function useMoreBits(iLayer: number, nLayers: number): boolean {
    const e = Math.trunc(nLayers / 8);
    return iLayer < e || iLayer >= Math.trunc((7 * nLayers) / 8) || (iLayer - e) % 3 === 2;
}

const D = (n: number, d: number): number => Math.trunc(n / d);

/** interleaved_properties: row-interleaved type → [base type, rows]; others → [type, 1]. */
const INTERLEAVED: Record<string, [string, number]> = {
    q4_0_4x4: ["q4_0", 4], q4_0_4x8: ["q4_0", 4], q4_0_8x8: ["q4_0", 8], q4_0_r8: ["q4_0", 8], q5_0_r4: ["q5_0", 4],
    q6_0_r4: ["q6_0", 4], q8_0_r8: ["q8_0", 8], q2_k_r4: ["q2_K", 4], q3_k_r4: ["q3_K", 4], q4_k_r4: ["q4_K", 4],
    q5_k_r4: ["q5_K", 4], q6_k_r4: ["q6_K", 4], iq2_xxs_r4: ["iq2_xxs", 4], iq2_xs_r4: ["iq2_xs", 4], iq2_s_r4: ["iq2_s", 4],
    iq3_xxs_r4: ["iq3_xxs", 4], iq3_s_r4: ["iq3_s", 4], iq4_xs_r8: ["iq4_xs", 8], iq4_nl_r4: ["iq4_nl", 4],
    iq1_s_r4: ["iq1_s", 4], iq1_m_r4: ["iq1_m", 4], iq2_bn_r4: ["iq2_bn", 4], iq2_k_r4: ["iq2_k", 4], iq3_k_r4: ["iq3_k", 4],
    iq4_k_r4: ["iq4_k", 4], iq4_ks_r4: ["iq4_ks", 4], iq5_ks_r4: ["iq5_ks", 4], iq5_k_r4: ["iq5_k", 4], mxfp4_r8: ["mxfp4", 8],
    q8_KV_r8: ["q8_KV", 8], q8_k_r8: ["q8_0", 8], bf16_r16: ["bf16", 16]
};

export function interleaved(type: string): [string, number] {
    return INTERLEAVED[type] ?? [type, 1];
}

// change_type_if_necessary: types needing ne0 % 256 == 0, and the substitute when it is not.
const QK_K_FALLBACK: Record<string, string> = {};
for (const t of ["iq2_xxs", "iq2_xxs_r4", "iq2_xs", "iq2_xs_r4", "iq2_ks", "iq2_s", "iq2_s_r4", "iq3_xxs", "iq3_xxs_r4", "iq3_s",
    "iq3_s_r4", "iq1_s", "iq1_m", "q2_K", "q2_k_r4", "q3_K", "q3_k_r4", "iq2_k", "iq2_k_r4", "iq2_kl", "iq3_ks", "iq3_k", "iq3_k_r4",
    "iq4_kss", "iq4_ks", "iq4_ks_r4", "iq4_xs_r8", "iq1_kt", "iq2_kt", "iq3_kt", "iq4_kt", "iq4_xs"]) QK_K_FALLBACK[t] = "iq4_nl";
for (const t of ["iq4_k", "iq4_k_r4", "q4_k_r4", "iq5_ks", "iq5_ks_r4", "q4_K"]) QK_K_FALLBACK[t] = "q5_0";
for (const t of ["iq5_k", "iq5_k_r4", "q5_k_r4", "q5_K"]) QK_K_FALLBACK[t] = "q6_0";
for (const t of ["iq6_k", "q6_k_r4", "q8_k_r8", "q6_K"]) QK_K_FALLBACK[t] = "q8_0";
const BN_TYPES = new Set(["iq1_bn", "iq2_bn", "iq2_bn_r4"]);

/** Returns [type, reason] after the row-length fallback, or throws for Bitnet types without a fallback. */
export function changeTypeIfNecessary(type: string, ne0: number, name: string): [string, string] {
    const fb = QK_K_FALLBACK[type];
    if (fb !== undefined && ne0 % 256 !== 0) return [fb, `fallback: ${ne0} % 256 ≠ 0 → ${fb}`];
    if (BN_TYPES.has(type) && ne0 % 64 !== 0) {
        throw new Error(`Unsupported tensor size encountered: ${name} has ${ne0} columns, not a multiple of 64 required by ${type}`);
    }
    return [type, ""];
}

const oneOf = (f: string, list: string[]): boolean => list.includes(f);

/** llama_tensor_get_type without the custom rules, the row fallback and the token_embd de-interleave. */
export function mixType(qs: PolicyState, base: string, name: string, ne0: number, ftype: string, ov: KindOverrides): Decision {
    let t = base;
    let why = "";
    const set = (type: string, reason: string): void => {
        t = type;
        why = reason;
    };
    const nExpert = Math.max(1, qs.nExpert);
    const layerInfo = (i: number, n: number): [number, number] => {
        if (nExpert > 1) {
            const m = /^blk\.(\d+)\./.exec(name);
            if (m === null) throw new Error(`Failed to determine layer for tensor ${name}`);
            const il = Number(m[1]);
            if (il >= n) throw new Error(`Bad layer ${il} for tensor ${name}. Must be in [0, ${n})`);
            return [il, n];
        }
        return [i, n];
    };
    const gqa = qs.nGqa;
    const big = qs.nVocab >= 127999 && (qs.modelType === "8B" || qs.modelType === "70B");
    const has = (s: string): boolean => name.includes(s);

    if (name === "output.weight" || (!qs.hasOutput && name === "token_embd.weight")) {
        if (ov.output !== undefined) set(ov.output, "--output-tensor-type");
        else if (qs.arch === "falcon" || ne0 % 256 !== 0) set("q8_0", `output: ${ne0} % 256 ≠ 0 → q8_0`);
        else if (oneOf(ftype, ["IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M", "IQ2_K", "IQ3_K", "IQ2_KS",
            "IQ3_K_R4", "IQ3_KS", "IQ2_K_R4", "IQ3_XXS_R4", "IQ2_KL", "IQ2_M_R4", "IQ1_S_R4", "IQ1_M_R4", "IQ2_KT", "IQ3_KT", "IQ1_KT"])) {
            set(!qs.hasOutput ? "iq4_k" : "q5_K", "output of a low-bit recipe");
        } else if (oneOf(ftype, ["IQ2_XXS_R4", "IQ2_XS_R4"])) set(!qs.hasOutput ? "iq4_k_r4" : "q5_k_r4", "output of a low-bit recipe");
        else if (oneOf(ftype, ["IQ3_S", "IQ3_M", "IQ3_KL", "IQ4_XS", "IQ3_S_R4", "IQ4_KS", "IQ4_KSS", "IQ4_KS_R4"]) && !qs.hasOutput) {
            set("iq5_k", "tied output/token_embd");
        } else if (!["q8_0", "q8_0_r8", "iq6_k", "q6_k_r4", "q8_k_r8", "q8_KV", "q8_KV_r8"].includes(t)) set("q6_K", "output → q6_K");
    } else if (name === "token_embd.weight" || name === "per_layer_token_embd.weight") {
        const pl = name !== "token_embd.weight";
        const o = pl ? ov.perLayerTokenEmbd : ov.tokenEmbd;
        if (o !== undefined) set(o, pl ? "--per-layer-token-embedding-type" : "--token-embedding-type");
        else if (oneOf(ftype, ["IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M", "IQ2_XXS_R4", "IQ2_XS_R4", "IQ1_S_R4", "IQ1_M_R4"])) set("q2_K", "token_embd of a low-bit recipe");
        else if (oneOf(ftype, ["IQ2_S", "IQ2_M", "IQ2_M_R4", "IQ3_XXS", "IQ3_KT"])) set("iq3_s", "token_embd of a low-bit recipe");
        else if (ftype === "IQ3_XXS_R4") set("iq3_k", "token_embd of a low-bit recipe");
        else if (oneOf(ftype, ["IQ1_BN", "IQ2_BN", "IQ2_BN_R4"])) set("iq4_nl", "token_embd of a Bitnet recipe");
    } else if (ftype === "IQ1_S_R4" || ftype === "IQ1_M_R4") {
        if (has("attn_v.weight")) {
            if (qs.nExpert >= 4 || gqa >= 4) set("iq4_k_r4", "attn_v (n_expert ≥ 4 or n_gqa ≥ 4)");
            else if (gqa >= 2) set("iq3_k_r4", "attn_v (n_gqa ≥ 2)");
            else set("q2_k_r4", "attn_v");
            ++qs.iAttentionWv;
        } else if (qs.nExpert >= 8 && has("attn_k")) set("q4_k_r4", "attn_k (n_expert ≥ 8)");
        else if (qs.nExpert >= 8 && (has("blk.0.ffn_down") || has("blk.0.ffn_gate") || has("blk.0.ffn_up"))) set("iq3_k_r4", "layer-0 ffn (n_expert ≥ 8)");
        else if (qs.nExpert >= 8 && has("attn_q")) set("q4_k_r4", "attn_q (n_expert ≥ 8)");
        else if (has("attn_qkv.weight")) set("iq2_k_r4", "attn_qkv");
        else if (has("_shexp.weight")) set("iq4_k_r4", "shared expert");
        else if (has("ffn_down")) {
            const [il, nl] = layerInfo(qs.iFfnDown, qs.nLayer);
            if (ov.ffnDown !== undefined) set(ov.ffnDown, "--ffn-down-type");
            else if (il < D(nl, 8)) set("q2_k_r4", `ffn_down layer ${il} < n_layer/8`);
            ++qs.iFfnDown;
        } else if (has("attn_output.weight")) set(qs.nExpert >= 4 ? "q5_k_r4" : "iq2_k_r4", "attn_output");
    } else if (ftype === "IQ2_KT") {
        if (has("attn_v.weight")) {
            if (qs.nExpert >= 4 || gqa >= 4) set("iq4_k", "attn_v (n_expert ≥ 4 or n_gqa ≥ 4)");
            else if (gqa >= 2) set("iq3_k", "attn_v (n_gqa ≥ 2)");
            else set("q2_K", "attn_v");
            ++qs.iAttentionWv;
        } else if (qs.nExpert >= 8 && has("attn_k")) set("q4_K", "attn_k (n_expert ≥ 8)");
        else if (qs.nExpert >= 8 && (has("blk.0.ffn_down") || has("blk.0.ffn_gate") || has("blk.0.ffn_up"))) set("iq3_k", "layer-0 ffn (n_expert ≥ 8)");
        else if (qs.nExpert >= 8 && has("attn_q")) set("q4_K", "attn_q (n_expert ≥ 8)");
        else if (has("attn_qkv.weight")) set("iq3_k", "attn_qkv");
        else if (has("_shexp.weight")) set("iq4_k", "shared expert");
        else if (has("ffn_down")) {
            const [il, nl] = layerInfo(qs.iFfnDown, qs.nLayer);
            if (ov.ffnDown !== undefined) set(ov.ffnDown, "--ffn-down-type");
            else if (il < D(nl, 8)) set("iq3_k", `ffn_down layer ${il} < n_layer/8`);
            ++qs.iFfnDown;
        } else if (has("attn_output.weight")) set(qs.nExpert >= 4 ? "q5_K" : "iq3_k", "attn_output");
    } else if (oneOf(ftype, ["IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M", "IQ2_KS", "IQ2_XXS_R4", "IQ2_XS_R4", "IQ2_M_R4"])) {
        const m = ftype === "IQ2_S" || ftype === "IQ2_M" || ftype === "IQ2_M_R4";
        if (has("attn_v.weight")) {
            if (gqa >= 4 || qs.nExpert >= 4) set("iq4_k", "attn_v (n_gqa ≥ 4 or n_expert ≥ 4)");
            else if (gqa >= 2 || qs.nExpert >= 2) set("iq3_k", "attn_v (n_gqa ≥ 2 or n_expert ≥ 2)");
            else set(m ? "iq3_s" : "q2_K", "attn_v");
            ++qs.iAttentionWv;
        } else if (qs.nExpert >= 8 && has("attn_k")) set("q4_K", "attn_k (n_expert ≥ 8)");
        else if (qs.nExpert >= 8 && has("attn_q")) set("q4_K", "attn_q (n_expert ≥ 8)");
        else if (has("attn_qkv.weight")) set(m ? "iq3_xxs" : "iq2_k", "attn_qkv");
        else if (has("ffn_down")) {
            if (qs.iFfnDown < D(qs.nLayer, 8)) set(m ? "iq3_s" : "q2_K", `ffn_down #${qs.iFfnDown} < n_layer/8`);
            ++qs.iFfnDown;
        } else if (has("attn_output.weight")) {
            if (ov.attnOutput !== undefined) set(ov.attnOutput, "--attn-output-type");
            else if (qs.nExpert >= 4) set("q5_K", "attn_output (n_expert ≥ 4)");
            else if (ftype === "IQ1_S" || ftype === "IQ1_M") set("iq2_k", "attn_output");
            else if (m) set("iq3_s", "attn_output");
        }
    } else if (has("attn_v.weight")) {
        const r = "attn_v";
        if (ov.attnV !== undefined) set(ov.attnV, "--attn-v-type");
        else if (qs.nExpert >= 4) set("q8_0", `${r} (n_expert ≥ 4)`);
        else if (qs.modelType === "70B") {
            if (t === "q3_K" || t === "q4_K") set("q5_K", `${r} (70B)`);
            if (t === "iq3_k") set("iq5_k", `${r} (70B)`);
        } else if (ftype === "Q2_K") set(gqa >= 4 ? "q4_K" : "q3_K", r);
        else if (ftype === "IQ2_K") set(gqa >= 2 ? "iq4_k" : "iq3_k", r);
        else if (ftype === "IQ2_K_R4") set(gqa >= 2 ? "iq4_k_r4" : "iq3_k_r4", r);
        else if (ftype === "Q2_K_S" && gqa >= 4) set("q4_K", `${r} (n_gqa ≥ 4)`);
        else if (ftype === "Q2_K_R4" && gqa >= 4) set("q4_k_r4", `${r} (n_gqa ≥ 4)`);
        else if (ftype === "IQ3_XXS") set(gqa >= 4 ? "q4_K" : gqa >= 2 ? "iq3_k" : !qs.hasImatrix ? "iq3_s" : "iq3_xxs", r);
        else if (ftype === "IQ3_KT") set(gqa >= 4 ? "iq4_k" : "iq3_k", r);
        else if (ftype === "IQ4_KT") set(gqa >= 4 ? "iq5_k" : "iq4_k", r);
        else if (ftype === "IQ3_XXS_R4") set(gqa >= 4 ? "q4_k_r4" : gqa >= 2 ? "iq3_k_r4" : !qs.hasImatrix ? "iq3_k_r4" : "iq3_xxs_r4", r);
        else if ((ftype === "IQ3_XS" || ftype === "IQ3_S") && gqa >= 2) set("iq4_k", `${r} (n_gqa ≥ 2)`);
        else if (ftype === "IQ3_S_R4" && gqa >= 2) set("iq4_k_r4", `${r} (n_gqa ≥ 2)`);
        else if (ftype === "IQ3_K" && gqa >= 2) set("iq4_k", `${r} (n_gqa ≥ 2)`);
        else if (ftype === "IQ3_KS" && gqa >= 2) set("iq4_ks", `${r} (n_gqa ≥ 2)`);
        else if (ftype === "IQ2_KL" && gqa >= 2) set("iq4_ks", `${r} (n_gqa ≥ 2)`);
        else if (ftype === "IQ3_K_R4" && gqa >= 2) set("iq4_k_r4", `${r} (n_gqa ≥ 2)`);
        else if (ftype === "IQ3_KL" || ftype === "IQ3_M") set(gqa >= 2 ? "iq5_k" : "iq4_k", r);
        else if (ftype === "Q3_K_M") set(qs.iAttentionWv < 2 ? "q5_K" : "q4_K", `${r} #${qs.iAttentionWv}`);
        else if (ftype === "Q3_K_L") set("q5_K", r);
        else if (oneOf(ftype, ["IQ4_NL", "IQ4_XS", "IQ4_NL_R4", "IQ4_XS_R8", "IQ4_KS", "IQ4_KSS"]) && gqa >= 2) set("iq5_k", `${r} (n_gqa ≥ 2)`);
        else if (ftype === "IQ4_KS_R4" && gqa >= 2) set("iq5_k_r4", `${r} (n_gqa ≥ 2)`);
        else if ((ftype === "IQ4_K" || ftype === "IQ4_K_R4") && gqa >= 2) set("iq5_k", `${r} (n_gqa ≥ 2)`);
        else if ((ftype === "Q4_K_M" || ftype === "Q5_K_M") && useMoreBits(qs.iAttentionWv, qs.nAttentionWv)) {
            set("q6_K", `${r} #${qs.iAttentionWv} (use_more_bits)`);
        } else if ((ftype === "Q4_K_S" || ftype === "Q4_K_R4") && qs.iAttentionWv < 4) set("q5_K", `${r} #${qs.iAttentionWv} < 4`);
        else if (ftype === "Q5_K_S") {
            if (big) set("q6_K", `${r} (8B/70B, n_vocab ≥ 127999)`);
        } else if (ftype === "IQ5_K" || ftype === "IQ5_KS") {
            if (big) set("iq6_k", `${r} (8B/70B, n_vocab ≥ 127999)`);
        } else if (gqa >= 4 && !(qs.arch === "dflash-draft" && (ftype === "Q4_K_M" || ftype === "Q5_K_M"))) {
            const bump: Record<string, string> = {
                q2_K: "iq3_s", iq3_xxs: "iq3_s", q2_k_r4: "iq3_k_r4", iq3_xxs_r4: "iq3_k_r4", q3_K: "q4_K", iq3_s: "q4_K",
                iq3_k: "iq4_k", iq3_ks: "iq4_ks", iq2_kl: "iq4_ks", iq3_s_r4: "q4_k_r4", q3_k_r4: "q4_k_r4", q4_K: "q5_K",
                iq4_xs: "q5_K", iq4_nl: "q5_K", iq4_k: "iq5_k", iq4_ks: "iq5_k", iq4_nl_r4: "q5_K", iq4_xs_r8: "q5_K",
                q5_K: "q6_K", iq5_k: "iq6_k", iq5_ks: "iq6_k"
            };
            const b = bump[t];
            if (b !== undefined) set(b, `${r} (n_gqa ≥ 4)`);
        }
        ++qs.iAttentionWv;
    } else if (has("attn_k")) {
        if (ov.attnK !== undefined) set(ov.attnK, "--attn-k-type");
        else if (qs.nExpert >= 4) set("q8_0", "attn_k* (n_expert ≥ 4)");
        else if (ftype === "IQ3_XS") set("iq3_xxs", "attn_k");
        else if (ftype === "IQ3_XXS" || ftype === "IQ3_XXS_R4") set("iq2_s", "attn_k");
    } else if (has("attn_q")) {
        if (ov.attnQ !== undefined) set(ov.attnQ, "--attn-q-type");
        else if (ftype === "IQ3_XS") set("iq3_xxs", "attn_q");
        else if (ftype === "IQ3_XXS" || ftype === "IQ3_XXS_R4") set("iq2_s", "attn_q");
        else if (ftype === "Q5_K_S") {
            if (big) set("q4_K", "attn_q (8B/70B, n_vocab ≥ 127999)");
        } else if (ftype === "IQ5_K") {
            if (big) set("iq4_k", "attn_q (8B/70B, n_vocab ≥ 127999)");
        } else if (ftype === "IQ5_KS") {
            if (big) set("iq4_ks", "attn_q (8B/70B, n_vocab ≥ 127999)");
        }
    } else if (has("ffn_down")) {
        const [il, nl] = layerInfo(qs.iFfnDown, qs.nLayer);
        const r = `ffn_down layer ${il}`;
        const mb = useMoreBits(il, nl);
        if (ov.ffnDown !== undefined) set(ov.ffnDown, "--ffn-down-type");
        else if (ftype === "Q2_K") set("q3_K", "ffn_down");
        else if (ftype === "Q2_K_S") {
            if (il < D(nl, 8)) set("q4_K", `${r} < n_layer/8`);
        } else if (ftype === "Q2_K_R4") {
            if (il < D(nl, 8)) set("q4_k_r4", `${r} < n_layer/8`);
        } else if (ftype === "IQ3_XXS" && !qs.hasImatrix) set(il < D(nl, 8) ? "q4_K" : "q3_K", `${r} (no imatrix)`);
        else if (ftype === "IQ3_KT" && !qs.hasImatrix) set(il < D(nl, 8) ? "iq4_k" : "iq3_k", `${r} (no imatrix)`);
        else if (ftype === "IQ3_XXS_R4" && !qs.hasImatrix) set(il < D(nl, 8) ? "q4_k_r4" : "iq3_k_r4", `${r} (no imatrix)`);
        else if (ftype === "Q3_K_M") {
            set(il < D(nl, 16) ? "q5_K" : qs.arch !== "falcon" || mb ? "q4_K" : "q3_K", r);
        } else if (ftype === "IQ3_M" && (il < D(nl, 8) || (qs.nExpert >= 4 && mb))) set("iq4_k", `${r} (use_more_bits)`);
        else if (ftype === "Q3_K_L") set(qs.arch === "falcon" ? "q4_K" : "q5_K", r);
        else if (ftype === "IQ3_KL") set(mb ? "iq4_ks" : "iq3_k", mb ? `${r} (use_more_bits)` : r);
        else if (ftype === "Q4_K_M") {
            if (qs.arch === "falcon") set(il < D(nl, 16) ? "q6_K" : mb ? "q5_K" : "q4_K", r);
            else if (mb) set("q6_K", `${r} (use_more_bits)`);
        } else if (il < D(nl, 8) && !qs.hasImatrix && oneOf(ftype, ["IQ4_NL", "IQ4_XS", "IQ4_KS", "IQ4_KSS", "IQ4_NL_R4", "IQ4_XS_R8"])) {
            set("q5_K", `${r} < n_layer/8 (no imatrix)`);
        } else if (ftype === "IQ4_KS_R4" && il < D(nl, 8) && !qs.hasImatrix) set("q5_k_r4", `${r} < n_layer/8 (no imatrix)`);
        else if (ftype === "Q5_K_M" && mb) set("q6_K", `${r} (use_more_bits)`);
        else if ((ftype === "Q4_K_S" || ftype === "Q4_K_R4") && qs.arch !== "falcon" && il < D(nl, 8)) set("q5_K", `${r} < n_layer/8`);
        else if ((ftype === "Q4_0" || ftype === "Q5_0") && qs.hasImatrix && il < D(nl, 8)) {
            set(ftype === "Q4_0" ? "q4_1" : "q5_1", `${r} < n_layer/8 (imatrix)`);
        } else if (ftype === "Q4_0_R8" && qs.hasImatrix && il < D(nl, 8)) set("iq4_nl_r4", `${r} < n_layer/8 (imatrix)`);
        ++qs.iFfnDown;
    } else if (has("attn_output.weight")) {
        if (ov.attnOutput !== undefined) set(ov.attnOutput, "--attn-output-type");
        else if (qs.arch !== "falcon") {
            if (qs.nExpert >= 4) {
                if (oneOf(ftype, ["Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S", "IQ3_M",
                    "IQ4_XS", "IQ4_K", "IQ4_KSS", "IQ4_KS", "IQ4_KS_R4", "IQ5_KS", "IQ5_KS_R4", "IQ2_K", "IQ3_K", "IQ3_KL", "Q4_K_R4",
                    "IQ4_NL_R4", "IQ4_XS_R8", "Q3_K_R4", "IQ3_KT", "IQ3_KS", "Q2_K_R4", "IQ4_K_R4", "IQ3_K_R4", "IQ2_K_R4",
                    "IQ3_XXS_R4", "IQ3_S_R4"])) set("q5_K", "attn_output (n_expert ≥ 4)");
                else if (ftype === "IQ2_KL") set("iq4_ks", "attn_output (n_expert ≥ 4)");
            } else {
                const m: Record<string, string> = {
                    Q2_K: "q3_K", IQ3_XXS: "iq3_s", IQ3_XXS_R4: "iq3_k_r4", Q3_K_M: "q4_K", Q3_K_L: "q5_K", IQ3_M: "iq4_k",
                    IQ2_K: "iq3_k", IQ2_K_R4: "iq3_k_r4", IQ3_KL: "iq4_ks"
                };
                if (ftype === "IQ3_KT") {
                    if (gqa >= 4) set("iq3_k", "attn_output (n_gqa ≥ 4)");
                } else if (m[ftype] !== undefined) set(m[ftype], "attn_output");
            }
        } else if (ftype === "Q3_K_L") set("q4_K", "attn_output (falcon)");
    } else if (has("attn_qkv.weight")) {
        if (ov.attnQkv !== undefined) set(ov.attnQkv, "--attn-qkv-type");
        else if (ftype === "Q3_K_M" || ftype === "Q3_K_L") set("q4_K", "attn_qkv");
        else if (ftype === "IQ3_M") set("iq4_k", "attn_qkv");
        else if (ftype === "Q4_K_M") set("q5_K", "attn_qkv");
        else if (ftype === "Q5_K_M") set("q6_K", "attn_qkv");
    } else if (has("ffn_gate") || has("ffn_up")) {
        const gate = has("ffn_gate");
        const [il, nl] = layerInfo(gate ? qs.iFfnGate : qs.iFfnUp, qs.nLayer);
        const o = gate ? ov.ffnGate : ov.ffnUp;
        const r = `${gate ? "ffn_gate" : "ffn_up"} layer ${il}`;
        if (o !== undefined) set(o, gate ? "--ffn-gate-type" : "--ffn-up-type");
        else if (ftype === "IQ3_XS" && il >= D(nl, 8) && il < D(7 * nl, 8)) set("iq3_xxs", r);
        else if (ftype === "IQ3_KL" && useMoreBits(il, nl)) set("iq4_ks", `${r} (use_more_bits)`);
        if (gate) ++qs.iFfnGate;
        else ++qs.iFfnUp;
    }
    return { type: t, why: t === base && why === "" ? "" : why };
}
