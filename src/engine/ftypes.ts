// LLAMA_FTYPE table of ik_llama.cpp (enum llama_ftype in include/llama.h @ 8337e4cd; spec/quants.md §10): the
// `general.file_type` recipe id → enum name, the loader's descriptive name and the llama-quantize CLI name.
// Informational only (tensors carry their own types); ids ≥ 135 and 33–35/38/41 differ from mainline.

export interface FtypeInfo {
    id: number;
    enumName: string; // "MOSTLY_Q4_K_M" (without the LLAMA_FTYPE_ prefix)
    description: string; // what the loader prints, e.g. "Q4_K - Medium"; "" where ik has none
    userName: string; // llama-quantize spelling, e.g. "Q4_K_M"
}

type Row = [number, string, string, string];

const ROWS: Row[] = [
    [0, "ALL_F32", "all F32", "F32"],
    [1, "MOSTLY_F16", "F16", "F16"],
    [2, "MOSTLY_Q4_0", "Q4_0", "Q4_0"],
    [3, "MOSTLY_Q4_1", "Q4_1", "Q4_1"],
    [7, "MOSTLY_Q8_0", "Q8_0", "Q8_0"],
    [8, "MOSTLY_Q5_0", "Q5_0", "Q5_0"],
    [9, "MOSTLY_Q5_1", "Q5_1", "Q5_1"],
    [10, "MOSTLY_Q2_K", "Q2_K - Medium", "Q2_K"],
    [11, "MOSTLY_Q3_K_S", "Q3_K - Small", "Q3_K_S"],
    [12, "MOSTLY_Q3_K_M", "Q3_K - Medium", "Q3_K_M"],
    [13, "MOSTLY_Q3_K_L", "Q3_K - Large", "Q3_K_L"],
    [14, "MOSTLY_Q4_K_S", "Q4_K - Small", "Q4_K_S"],
    [15, "MOSTLY_Q4_K_M", "Q4_K - Medium", "Q4_K_M"],
    [16, "MOSTLY_Q5_K_S", "Q5_K - Small", "Q5_K_S"],
    [17, "MOSTLY_Q5_K_M", "Q5_K - Medium", "Q5_K_M"],
    [18, "MOSTLY_Q6_K", "Q6_K", "Q6_K"],
    [19, "MOSTLY_IQ2_XXS", "IQ2_XXS - 2.0625 bpw", "IQ2_XXS"],
    [20, "MOSTLY_IQ2_XS", "IQ2_XS - 2.3125 bpw", "IQ2_XS"],
    [21, "MOSTLY_Q2_K_S", "Q2_K - Small", "Q2_K_S"],
    [22, "MOSTLY_IQ3_XS", "IQ3_XS - 3.3 bpw", "IQ3_XS"],
    [23, "MOSTLY_IQ3_XXS", "IQ3_XXS - 3.0625 bpw", "IQ3_XXS"],
    [24, "MOSTLY_IQ1_S", "IQ1_S - 1.5625 bpw", "IQ1_S"],
    [25, "MOSTLY_IQ4_NL", "IQ4_NL - 4.5 bpw", "IQ4_NL"],
    [26, "MOSTLY_IQ3_S", "IQ3_S - 3.4375 bpw", "IQ3_S"],
    [27, "MOSTLY_IQ3_M", "IQ3_S mix - 3.66 bpw", "IQ3_M"],
    [28, "MOSTLY_IQ2_S", "IQ2_S - 2.5 bpw", "IQ2_S"],
    [29, "MOSTLY_IQ2_M", "IQ2_M - 2.7 bpw", "IQ2_M"],
    [30, "MOSTLY_IQ4_XS", "IQ4_XS - 4.25 bpw", "IQ4_XS"],
    [31, "MOSTLY_IQ1_M", "IQ1_M - 1.75 bpw", "IQ1_M"],
    [32, "MOSTLY_BF16", "BF16", "BF16"],
    [33, "MOSTLY_Q4_0_4_4", "Q4_0_4_4", "Q4_0_4_4"],
    [34, "MOSTLY_Q4_0_4_8", "Q4_0_4_8", "Q4_0_4_8"],
    [35, "MOSTLY_Q4_0_8_8", "Q4_0_8_8", "Q4_0_8_8"],
    [38, "MOSTLY_MXFP4", "MXFP4 - 4.25 bpw", "MXFP4"],
    [41, "MOSTLY_Q1_0_G128", "Q1_0_G128 - 1.125 bpw", "Q1_0_G128"],
    [135, "MOSTLY_Q6_0", "Q6_0", "Q6_0"],
    [136, "MOSTLY_IQ1_BN", "IQ1_BN - 1.625 bpw Bitnet", "IQ1_BN"],
    [137, "MOSTLY_IQ2_BN", "IQ2_BN - 2.00 bpw Bitnet", "IQ2_BN"],
    [138, "MOSTLY_IQ2_K", "IQ2_K - 2.375 bpw", "IQ2_K"],
    [139, "MOSTLY_IQ3_K", "IQ3_K - 3.4325 bpw", "IQ3_K"],
    [140, "MOSTLY_IQ4_K", "IQ4_K - 4.5 bpw", "IQ4_K"],
    [141, "MOSTLY_IQ5_K", "IQ5_K - 5.5 bpw", "IQ5_K"],
    [142, "MOSTLY_IQ6_K", "IQ6_K - 6.6 bpw", "IQ6_K"],
    [145, "MOSTLY_IQ4_KS", "IQ4_KS - 4.25 bpw", "IQ4_KS"],
    [146, "MOSTLY_IQ3_KL", "IQ3_KL - 4 bpw", "IQ3_KL"],
    [147, "MOSTLY_IQ2_KS", "IQ2_KS - 2.1875 bpw", "IQ2_KS"],
    [148, "MOSTLY_IQ4_KSS", "IQ4_KSS - 4.0 bpw", "IQ4_KSS"],
    [149, "MOSTLY_Q8_KV", "Q8_KV", "Q8_KV"],
    [150, "MOSTLY_IQ5_KS", "IQ5_KS - 5.25 bpw", "IQ5_KS"],
    [151, "MOSTLY_IQ2_KT", "IQ2_KT - 2.125 bpw", "IQ2_KT"],
    [152, "MOSTLY_IQ3_KT", "IQ3_KT - 3.125 bpw", "IQ3_KT"],
    [153, "MOSTLY_IQ4_KT", "IQ4_KT - 4.0 bpw", "IQ4_KT"],
    [154, "MOSTLY_IQ3_KS", "IQ3_KS - 3.1875 bpw", "IQ3_KS"],
    [155, "MOSTLY_IQ2_KL", "IQ2_KL - 2.6875 bpw", "IQ2_KL"],
    [156, "MOSTLY_IQ1_KT", "IQ1_KT - 1.75 bpw", "IQ1_KT"],
    [202, "MOSTLY_Q4_0_R8", "Q4_0_R8 - 4.5 bpw", "Q4_0_R8"],
    [207, "MOSTLY_Q8_0_R8", "Q8_0_R8 - 8.5 bpw", "Q8_0_R8"],
    [208, "MOSTLY_Q5_0_R4", "Q5_0_R4 - 5.5 bpw", "Q5_0_R4"],
    [210, "MOSTLY_Q2_K_R4", "Q2_K_R4", "Q2_K_R4"],
    [211, "MOSTLY_Q3_K_R4", "Q3_K_R4", "Q3_K_R4"],
    [214, "MOSTLY_Q4_K_R4", "Q4_K_R4", "Q4_K_R4"],
    [216, "MOSTLY_Q5_K_R4", "Q5_K_R4", "Q5_K_R4"],
    [218, "MOSTLY_Q6_K_R4", "Q6_K_R4", "Q6_K_R4"],
    [219, "MOSTLY_IQ2_XXS_R4", "IQ2_XXS_R4 - 2.0625 bpw", "IQ2_XXS_R4"],
    [220, "MOSTLY_IQ2_XS_R4", "IQ2_XS_R4 - 2.3125 bpw", "IQ2_XS_R4"],
    [223, "MOSTLY_IQ3_XXS_R4", "IQ3_XXS_R4 - 3.0625 bpw", "IQ3_XXS_R4"],
    [224, "MOSTLY_IQ1_S_R4", "IQ1_S_R4 - 1.5 bpw", "IQ1_S_R4"],
    [225, "MOSTLY_IQ4_NL_R4", "IQ4_NL_R4 - 4.5 bpw", "IQ4_NL_R4"],
    [226, "MOSTLY_IQ3_S_R4", "IQ3_S_R4 - 3.4375 bpw", "IQ3_S_R4"],
    [229, "MOSTLY_IQ2_M_R4", "IQ2_M_R4 - 2.7 bpw", "IQ2_M_R4"],
    [230, "MOSTLY_IQ4_XS_R8", "IQ4_XS_R8 - 4.25 bpw", "IQ4_XS_R8"],
    [231, "MOSTLY_IQ1_M_R4", "IQ1_M_R4 - 1.75 bpw", "IQ1_M_R4"],
    [232, "MOSTLY_BF16_R16", "BF16_R16", "BF16_R16"],
    [335, "MOSTLY_Q6_0_R4", "Q6_0_R4 - 6.5 bpw", "Q6_0_R4"],
    [337, "MOSTLY_IQ2_BN_R4", "IQ2_BN_R4 - 2.00 bpw Bitnet", "IQ2_BN_R4"],
    [338, "MOSTLY_IQ2_K_R4", "IQ2_K_R4 - 2.375 bpw", "IQ2_K_R4"],
    [339, "MOSTLY_IQ3_K_R4", "IQ3_K_R4 - 3.4325 bpw", "IQ3_K_R4"],
    [340, "MOSTLY_IQ4_K_R4", "IQ4_K_R4 - 4.5 bpw", "IQ4_K_R4"],
    [341, "MOSTLY_IQ5_K_R4", "IQ5_K_R4 - 5.5 bpw", "IQ5_K_R4"],
    [345, "MOSTLY_IQ4_KS_R4", "IQ4_KS_R4 - 4.25 bpw", "IQ4_KS_R4"],
    [350, "MOSTLY_IQ5_KS_R4", "IQ5_KS_R4 - 5.25 bpw", "IQ5_KS_R4"],
    [351, "MOSTLY_MXFP4_R8", "", "MXFP4_R8"],
    [398, "MOSTLY_Q8_KV_R8", "Q8_KV_R8", "Q8_KV_R8"],
    [399, "MOSTLY_Q8_K_R8", "Q8_K_R8", "Q8_K_R8"],
    [1024, "GUESSED", "", "GUESSED"],
];

export const FTYPES: ReadonlyMap<number, FtypeInfo> = new Map(
    ROWS.map(([id, enumName, description, userName]) => [id, { id, enumName, description, userName }])
);

/** Looks up a `general.file_type` id; undefined for ids ik_llama.cpp does not define (e.g. mainline-only 36/37/39/40). */
export function ftypeInfo(id: number): FtypeInfo | undefined {
    return FTYPES.get(id);
}

/** "15 (MOSTLY_Q4_K_M, Q4_K - Medium)" or "36 (unknown to ik_llama.cpp)". */
export function formatFtype(id: number): string {
    const info = FTYPES.get(id);
    if (info === undefined) return `${id} (unknown to ik_llama.cpp)`;
    return info.description === "" ? `${id} (${info.enumName})` : `${id} (${info.enumName}, ${info.description})`;
}
