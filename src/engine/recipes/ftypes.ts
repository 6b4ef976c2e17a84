// llama-quantize's file-type presets (examples/quantize/quantize.cpp QUANT_OPTIONS, ik_llama.cpp @ 8337e4cd) and the
// base tensor type each uses (llama_model_quantize_internal's `default_type` switch); spec/quants.md §10.
// Type names are ggml names as in the native registry ("q4_K", "iq4_k_r4", "q8_KV").

export interface QuantPreset {
    name: string; // canonical CLI name, e.g. "Q4_K_M"
    id: number; // LLAMA_FTYPE id
    base: string; // ggml type used for the bulk of the weights
}

// [name, id, base] in the order llama-quantize --help lists them; "Q3_K"/"Q4_K"/"Q5_K" are aliases (same id).
const ROWS: [string, number, string][] = [
    ["Q4_0", 2, "q4_0"], ["Q4_1", 3, "q4_1"], ["Q5_0", 8, "q5_0"], ["Q5_1", 9, "q5_1"], ["Q6_0", 135, "q6_0"],
    ["MXFP4", 38, "mxfp4"], ["MXFP4_R8", 351, "mxfp4_r8"],
    ["IQ2_XXS", 19, "iq2_xxs"], ["IQ2_XXS_R4", 219, "iq2_xxs_r4"], ["IQ2_XS", 20, "iq2_xs"], ["IQ2_XS_R4", 220, "iq2_xs_r4"],
    ["IQ2_S", 28, "iq2_xs"], ["IQ2_M", 29, "iq2_s"], ["IQ2_M_R4", 229, "iq2_s_r4"],
    ["IQ1_S", 24, "iq1_s"], ["IQ1_S_R4", 224, "iq1_s_r4"], ["IQ1_M_R4", 231, "iq1_m_r4"], ["IQ1_M", 31, "iq1_m"],
    ["IQ1_BN", 136, "iq1_bn"], ["IQ2_BN", 137, "iq2_bn"], ["IQ2_BN_R4", 337, "iq2_bn_r4"],
    ["Q2_K", 10, "q2_K"], ["Q2_K_R4", 210, "q2_k_r4"], ["Q2_K_S", 21, "q2_K"],
    ["IQ3_XXS", 23, "iq3_xxs"], ["IQ3_KT", 152, "iq3_kt"], ["IQ4_KT", 153, "iq4_kt"], ["IQ3_XXS_R4", 223, "iq3_xxs_r4"],
    ["IQ3_S", 26, "iq3_s"], ["IQ3_S_R4", 226, "iq3_s_r4"], ["IQ3_M", 27, "iq3_s"],
    ["Q3_K", 12, "q3_K"], ["Q3_K_R4", 211, "q3_k_r4"], ["IQ3_XS", 22, "iq3_s"],
    ["Q3_K_S", 11, "q3_K"], ["Q3_K_M", 12, "q3_K"], ["Q3_K_L", 13, "q3_K"],
    ["IQ4_NL", 25, "iq4_nl"], ["IQ4_NL_R4", 225, "iq4_nl_r4"], ["IQ4_XS_R8", 230, "iq4_xs_r8"],
    ["Q4_0_R8", 202, "q4_0_r8"], ["Q5_0_R4", 208, "q5_0_r4"], ["Q6_0_R4", 335, "q6_0_r4"], ["Q8_0_R8", 207, "q8_0_r8"],
    ["Q8_KV", 149, "q8_KV"], ["IQ4_XS", 30, "iq4_xs"], ["IQ4_KS", 145, "iq4_ks"], ["IQ4_KS_R4", 345, "iq4_ks_r4"],
    ["IQ5_KS_R4", 350, "iq5_ks_r4"], ["IQ4_KSS", 148, "iq4_kss"], ["IQ5_KS", 150, "iq5_ks"],
    ["IQ2_K", 138, "iq2_k"], ["IQ2_K_R4", 338, "iq2_k_r4"], ["IQ2_KS", 147, "iq2_ks"], ["IQ1_KT", 156, "iq1_kt"],
    ["IQ2_KT", 151, "iq2_kt"], ["IQ2_KL", 155, "iq2_kl"], ["IQ3_KS", 154, "iq3_ks"], ["IQ3_K", 139, "iq3_k"],
    ["IQ3_K_R4", 339, "iq3_k_r4"], ["IQ3_KL", 146, "iq3_k"], ["IQ4_K", 140, "iq4_k"], ["IQ4_K_R4", 340, "iq4_k_r4"],
    ["IQ5_K", 141, "iq5_k"], ["IQ5_K_R4", 341, "iq5_k_r4"], ["IQ6_K", 142, "iq6_k"],
    ["Q4_K", 15, "q4_K"], ["Q4_K_R4", 214, "q4_k_r4"], ["Q4_K_S", 14, "q4_K"], ["Q4_K_M", 15, "q4_K"],
    ["Q5_K", 17, "q5_K"], ["Q5_K_R4", 216, "q5_k_r4"], ["Q5_K_S", 16, "q5_K"], ["Q5_K_M", 17, "q5_K"],
    ["Q6_K", 18, "q6_K"], ["Q6_K_R4", 218, "q6_k_r4"], ["Q8_K_R8", 399, "q8_k_r8"], ["Q8_KV_R8", 398, "q8_KV_r8"],
    ["Q8_0", 7, "q8_0"], ["Q4_0_4_4", 33, "q4_0_4x4"], ["Q4_0_4_8", 34, "q4_0_4x8"], ["Q4_0_8_8", 35, "q4_0_8x8"],
    ["F16", 1, "f16"], ["BF16", 32, "bf16"], ["BF16_R16", 232, "bf16_r16"], ["F32", 0, "f32"]
];

/** Aliases resolve to the canonical recipe name (the id's first full name: Q4_K → Q4_K_M). */
const ALIASES: Record<string, string> = { Q3_K: "Q3_K_M", Q4_K: "Q4_K_M", Q5_K: "Q5_K_M" };

export const PRESET_NAMES: readonly string[] = [...ROWS.map((r) => r[0]), "COPY"];

/** The QUANT_OPTIONS entry name try_parse_ftype reports for `text` (before aliasing: "q4_k" → "Q4_K", "15" → "Q4_K"). */
export function presetEntryName(text: string): string | undefined {
    const up = text.trim().toUpperCase();
    if (up === "COPY") return "COPY";
    const row = ROWS.find((r) => r[0] === up) ?? (/^\d+$/.test(up) ? ROWS.find((r) => r[1] === Number(up)) : undefined);
    return row?.[0];
}

/** Resolves a CLI preset (case-insensitive name or numeric id, as try_parse_ftype); undefined if unknown. */
export function findPreset(text: string): QuantPreset | undefined {
    const up = text.trim().toUpperCase();
    let row = ROWS.find((r) => r[0] === up);
    if (row === undefined && /^\d+$/.test(up)) row = ROWS.find((r) => r[1] === Number(up));
    if (row === undefined) return undefined;
    const name = ALIASES[row[0]] ?? row[0];
    return { name, id: row[1], base: row[2] };
}
