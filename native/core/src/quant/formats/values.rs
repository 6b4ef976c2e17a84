//! Shared value tables of the basic formats (spec/quants.md §3.1, §3.7, §1.3).
//!
//! Upstream: ggml/src/ggml-common.h (`kvalues_iq4nl`, `kvalues_mxfp4`), ggml/src/ggml-quants.c (`iq4nl_index`,
//! `best_index_iq4nl`), ggml/src/ggml-impl.h (`ggml_e8m0_to_fp32_half`), ik_llama.cpp @ 8337e4cd.

/// IQ4_NL / IQ4_XS non-linear 4-bit levels (§3.1, base table).
pub const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// MXFP4 levels: E2M1 magnitudes ×2 so that the "half" E8M0 scale can be used (§3.7); bit 3 = sign.
pub const KVALUES_MXFP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// Nearest-level lookup used by the reference IQ4 quantizer, keyed on `trunc(x) − values[0]` (0…240). Entries
/// < 16 are the level index; `16 + i` means "between level i and i+1, compare distances". Reproduced from the
/// reference so that the quantizer picks the same level on its (heuristic) bucket boundaries.
const IQ4NL_INDEX: [i8; 241] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 16, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 17, 17, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 18, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 19, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 20, 5, 5,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 21, 21, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 22, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 23, 23, 8, 8, 8, 8, 8, 8, 8,
    8, 8, 8, 24, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 25, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 26, 26, 11, 11, 11, 11, 11, 11, 11, 11,
    11, 11, 11, 11, 27, 27, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 28, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13,
    13, 13, 13, 13, 29, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 30, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15,
];

/// ggml `best_index_iq4nl`: the level of `values` (a 16-entry table starting at −127) nearest to `x`, via the
/// reference's bucket table. Requires `values[0] == −127` layout like `KVALUES_IQ4NL`.
#[inline]
pub fn best_index_iq4nl(values: &[i8; 16], x: f32) -> usize {
    // C `(int)x` truncates toward zero (saturating here; the reference only sees finite, in-range values).
    let ix = (x as i32) - values[0] as i32;
    if !(0..241).contains(&ix) {
        return if ix < 0 { 0 } else { 15 };
    }
    let e = IQ4NL_INDEX[ix as usize] as usize;
    if e < 16 {
        return e;
    }
    let lo = e - 16;
    // Ties go to the upper level, as in the reference (`x − lo < hi − x ? lo : hi`).
    if x - (values[lo] as f32) < (values[lo + 1] as f32) - x {
        lo
    } else {
        lo + 1
    }
}

/// E8M0 exponent → f32 "half" scale `2^(e−128)` (§1.3), bit-exact including e = 0, 1.
#[inline]
pub fn e8m0_to_f32_half(e: u8) -> f32 {
    let bits = match e {
        0 => 0x0020_0000, // 2^-128, subnormal
        1 => 0x0040_0000, // 2^-127, subnormal
        _ => (e as u32 - 1) << 23,
    };
    f32::from_bits(bits)
}
