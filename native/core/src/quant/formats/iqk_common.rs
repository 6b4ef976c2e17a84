//! Shared pieces of the IQK non-linear family (spec/quants.md §3.2–3.6, §6, §13.4): value tables, the
//! reference's nearest-level lookups, its importance-weight guard (`QHelper`), the per-block scale search, and
//! the generic decode-based dequantize / vec_dot every IQK type module plugs its block decoder into.
//!
//! Upstream @ 8337e4cd: ggml/src/ggml-common.h (`iq2nl_values`, `iq3nl_values`, `iq4k_values`, `iq5nl_values`,
//! `iq6nl_values`, `iq2kl_values`), ggml/src/iqk/iqk_quantize.cpp (`QHelper`, `best_index_iq5nl`,
//! `best_index_iq6nl`, the shared body of `quantize_row_iq{4,5,6}_k_impl*`).

use super::common::{rd_f16, rd_f32};
use super::q8::{q8k_d, q8k_q, Q8_K_BYTES};
use super::values::best_index_iq4nl;

pub const QK_K: usize = 256;

/// §3.2: base then shifted (+5).
pub const IQ2NL: [i8; 8] = [-31, -13, 1, 17, -26, -8, 6, 22];
/// §3.3: base then shifted (+4).
pub const IQ3NL: [i8; 16] = [-63, -40, -23, -10, 1, 13, 28, 47, -59, -36, -19, -6, 5, 17, 32, 51];
/// §3.1: base (= IQ4_NL) then shifted (+4).
pub const IQ4K: [i8; 32] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113, //
    -123, -100, -79, -61, -45, -31, -18, -6, 5, 17, 29, 42, 57, 73, 93, 117,
];
/// §3.4: base then shifted (+2).
pub const IQ5NL: [i8; 64] = [
    -126, -114, -103, -92, -83, -74, -65, -57, -50, -43, -36, -30, -24, -18, -12, -6, -1, 5, 11, 17, 23, 29, 36, 43, 51, 59, 68, 77, 87,
    97, 109, 121, //
    -124, -112, -101, -90, -81, -72, -63, -55, -48, -41, -34, -28, -22, -16, -10, -4, 1, 7, 13, 19, 25, 31, 38, 45, 53, 61, 70, 79, 89, 99,
    111, 123,
];
/// §3.5: base then shifted (+1).
pub const IQ6NL: [i8; 128] = [
    -127, -121, -115, -109, -104, -98, -93, -88, -84, -79, -74, -70, -66, -62, -58, -54, -51, -47, -44, -40, -37, -34, -31, -28, -25, -22,
    -19, -16, -13, -11, -8, -5, -2, 0, 3, 6, 9, 12, 14, 17, 20, 23, 27, 30, 33, 36, 40, 44, 47, 51, 55, 59, 63, 68, 72, 77, 82, 87, 92, 98,
    103, 109, 115, 121, //
    -126, -120, -114, -108, -103, -97, -92, -87, -83, -78, -73, -69, -65, -61, -57, -53, -50, -46, -43, -39, -36, -33, -30, -27, -24, -21,
    -18, -15, -12, -10, -7, -4, -1, 1, 4, 7, 10, 13, 15, 18, 21, 24, 28, 31, 34, 37, 41, 45, 48, 52, 56, 60, 64, 69, 73, 78, 83, 88, 93,
    99, 104, 110, 116, 122,
];
/// §3.6: pair codes, low byte = first weight, high byte = second (both i8).
pub const IQ2KL: [u16; 32] = [
    0xe9c1, 0x0dc1, 0xc1d8, 0xf6d8, 0x0dd8, 0x2fd8, 0xd8e9, 0xe9e9, 0x01e9, 0x0de9, 0x1ce9, 0xc1f6, 0x01f6, 0x0df6, 0x2ff6, 0xe901, 0xf601,
    0x0101, 0x0d01, 0x1c01, 0xd80d, 0xe90d, 0xf60d, 0x010d, 0x0d0d, 0xc11c, 0xe91c, 0x011c, 0x1c1c, 0x2f1c, 0xe92f, 0x0d2f,
];

/// f32 copy of a value table (the quantizers compute with `float q = values[l]`).
pub fn f32_table<const N: usize>(t: &[i8; N]) -> [f32; N] {
    core::array::from_fn(|i| t[i] as f32)
}

// ---------------------------------------------------------------- nearest-level lookups

/// `best_index_iq4nl` on the base (`shifted = false`) or shifted half of `IQ4K`.
#[inline]
pub fn best_iq4(shifted: bool, x: f32) -> usize {
    let t: &[i8; 16] = if shifted { &IQ4K_HI } else { &IQ4K_LO };
    best_index_iq4nl(t, x)
}
pub const IQ4K_LO: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
pub const IQ4K_HI: [i8; 16] = [-123, -100, -79, -61, -45, -31, -18, -6, 5, 17, 29, 42, 57, 73, 93, 117];

/// Bucket table of `best_index_iq5nl`, keyed on `trunc(x) − values[0]`: `< 32` = level, `32 + i` = between
/// level i and i+1. Reproduced so that bucket-boundary choices match the reference.
const IQ5NL_INDEX: [u8; 248] = [
    0, 0, 0, 0, 0, 0, 32, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 33, 33, 2, 2, 2, 2, 2, 2, 2, 2, 2, 34, 34, 3, 3, 3, 3, 3, 3, 3, 3, 35, 35, 4, 4, 4,
    4, 4, 4, 4, 36, 36, 5, 5, 5, 5, 5, 5, 5, 37, 37, 6, 6, 6, 6, 6, 6, 6, 38, 7, 7, 7, 7, 7, 7, 39, 39, 8, 8, 8, 8, 8, 40, 40, 9, 9, 9, 9,
    9, 41, 41, 10, 10, 10, 10, 10, 42, 11, 11, 11, 11, 11, 43, 12, 12, 12, 12, 12, 44, 13, 13, 13, 13, 13, 45, 14, 14, 14, 14, 14, 46, 15,
    15, 15, 15, 47, 47, 16, 16, 16, 16, 48, 17, 17, 17, 17, 17, 49, 18, 18, 18, 18, 18, 50, 19, 19, 19, 19, 19, 51, 20, 20, 20, 20, 20, 52,
    21, 21, 21, 21, 21, 53, 53, 22, 22, 22, 22, 22, 54, 54, 23, 23, 23, 23, 23, 23, 55, 24, 24, 24, 24, 24, 24, 24, 56, 25, 25, 25, 25, 25,
    25, 25, 57, 57, 26, 26, 26, 26, 26, 26, 26, 58, 58, 27, 27, 27, 27, 27, 27, 27, 27, 59, 28, 28, 28, 28, 28, 28, 28, 28, 28, 60, 29, 29,
    29, 29, 29, 29, 29, 29, 29, 29, 61, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 62, 31, 31, 31, 31, 31, 31,
];

/// Same idea for the 64 IQ6 levels, keyed on `trunc(x − values[0])` (note: subtract before truncating).
const IQ6NL_INDEX: [u8; 249] = [
    0, 0, 0, 64, 1, 1, 1, 1, 1, 65, 2, 2, 2, 2, 2, 66, 3, 3, 3, 3, 67, 67, 4, 4, 4, 4, 68, 5, 5, 5, 5, 69, 69, 6, 6, 6, 70, 70, 7, 7, 7,
    71, 8, 8, 8, 72, 72, 9, 9, 9, 73, 73, 10, 10, 10, 74, 11, 11, 11, 75, 12, 12, 12, 76, 13, 13, 13, 77, 14, 14, 14, 78, 15, 15, 79, 79,
    16, 16, 80, 17, 17, 81, 81, 18, 18, 82, 19, 19, 83, 83, 20, 84, 84, 21, 85, 85, 22, 86, 86, 23, 87, 87, 24, 88, 88, 25, 89, 89, 26, 90,
    90, 27, 91, 91, 28, 92, 29, 93, 93, 30, 94, 94, 31, 95, 95, 32, 96, 33, 97, 97, 34, 98, 98, 35, 99, 99, 36, 100, 100, 37, 101, 38, 102,
    102, 39, 103, 103, 40, 104, 104, 41, 41, 105, 42, 42, 106, 106, 43, 107, 107, 44, 108, 108, 45, 45, 109, 46, 46, 46, 110, 47, 47, 111,
    111, 48, 48, 112, 49, 49, 49, 113, 50, 50, 50, 114, 51, 51, 51, 115, 52, 52, 52, 116, 116, 53, 53, 53, 117, 54, 54, 54, 118, 118, 55,
    55, 55, 119, 119, 56, 56, 56, 120, 120, 57, 57, 57, 121, 121, 58, 58, 58, 58, 122, 59, 59, 59, 59, 123, 123, 60, 60, 60, 60, 124, 61,
    61, 61, 61, 61, 125, 62, 62, 62, 62, 62, 126, 63, 63, 63,
];

/// Resolve a bucket entry: `< n` is a level, otherwise compare the two neighbours (ties go up, as in C).
#[inline]
fn resolve(e: usize, n: usize, values: &[f32], x: f32) -> usize {
    if e < n {
        return e;
    }
    let lo = e - n;
    if x - values[lo] < values[lo + 1] - x {
        lo
    } else {
        lo + 1
    }
}

/// `best_index_iq5nl` on one 32-entry half (`values`) of `IQ5NL`.
#[inline]
pub fn best_iq5(values: &[f32], x: f32) -> usize {
    // C `(int)x` truncates toward zero; `as i32` saturates where C would be undefined (never hit).
    let ix = (x as i32) - values[0] as i32;
    if !(0..247).contains(&ix) {
        return if ix < 0 { 0 } else { 31 };
    }
    resolve(IQ5NL_INDEX[ix as usize] as usize, 32, values, x)
}

/// `best_index_iq6nl` on one 64-entry half (`values`) of `IQ6NL`.
#[inline]
pub fn best_iq6(values: &[f32], x: f32) -> usize {
    let ix = (x - values[0]) as i32;
    if !(0..249).contains(&ix) {
        return if ix < 0 { 0 } else { 63 };
    }
    resolve(IQ6NL_INDEX[ix as usize] as usize, 64, values, x)
}

// ---------------------------------------------------------------- importance weights

/// `QHelper::row_weights`: the imatrix row, except that blocks of `bs` whose weights, values or weighted values
/// all (nearly) vanish get the constant 1e-9 instead (so that the searches never divide by zero).
pub fn row_weights(imatrix: Option<&[f32]>, x: &[f32], bs: usize, out: &mut Vec<f32>) -> bool {
    const EPS: f32 = 1e-9;
    let Some(im) = imatrix else { return false };
    out.clear();
    out.extend_from_slice(&im[..x.len()]);
    let lim = bs as f32 * (EPS * EPS);
    for (wb, xb) in out.chunks_exact_mut(bs).zip(x.chunks_exact(bs)) {
        let (mut sw2, mut sx2, mut swx) = (0.0f32, 0.0f32, 0.0f32);
        for (w, v) in wb.iter().zip(xb) {
            sw2 += w * w;
            sx2 += v * v;
            swx += w * v.abs();
        }
        if !(sw2 > lim && sx2 > lim && swx > lim) {
            wb.fill(EPS);
        }
    }
    true
}

/// σ² of the super-block searches: `Σx² · (2/256)` (IQ4 family; factor formed first).
pub fn sigma2_a(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |s, &v| s + v * v) * (2.0 / x.len() as f32)
}

/// σ² of IQ5_K/IQ6_K/IQ2_K/IQ3_K: `2·Σx² / 256` (multiply, then divide).
pub fn sigma2_b(x: &[f32]) -> f32 {
    2.0 * x.iter().fold(0.0f32, |s, &v| s + v * v) / x.len() as f32
}

// ---------------------------------------------------------------- block scale search (§13.4 step 1–2)

/// One candidate table pair for [`block_search`]: the base and shifted level tables and their nearest-level
/// function.
pub struct Levels<'a> {
    pub base: &'a [f32],
    pub shifted: &'a [f32],
    pub best: fn(&[f32], f32) -> usize,
}

/// `Σ w·q·x`, `Σ w·q²` for the assignment of `id·x` (and of `−id·x`) to `t`.
#[inline]
fn sums(xb: &[f32], w: &[f32], t: &[f32], best: fn(&[f32], f32) -> usize, id: f32) -> [f32; 4] {
    let (mut qx_p, mut q2_p, mut qx_m, mut q2_m) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
    for (&x, &wj) in xb.iter().zip(w) {
        let al = id * x;
        let q = t[best(t, al)];
        qx_p += wj * q * x;
        q2_p += wj * q * q;
        let q = t[best(t, -al)];
        qx_m += wj * q * x;
        q2_m += wj * q * q;
    }
    [qx_p, q2_p, qx_m, q2_m]
}

/// The reference's per-block scale search: initial `−max/T[0]` fit of both signs, then `itry = −ntry…ntry`
/// inverse scales `(itry·step + T[0])/max` on the base and shifted tables; `refit` adds the final LS refit with
/// the chosen table (IQ5_K, IQ6_K, IQ5_KS). Returns `(scale, shifted)`; `(0, false)` for a vanishing block.
pub fn block_search(xb: &[f32], w: &[f32], lv: &Levels, ntry: i32, step: f32, refit: bool) -> (f32, bool) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &x in xb {
        if x.abs() > amax {
            amax = x.abs();
            max = x;
        }
    }
    // why 1e-16: the reference's "block is zero" threshold
    if amax < 1e-16 {
        return (0.0, false);
    }
    let t0 = lv.base[0];
    let mut d = -max / t0;
    let [qx_p, q2_p, qx_m, q2_m] = sums(xb, w, lv.base, lv.best, 1.0 / d);
    // IQ3_K guards this first fit with `q2 > 0`; the other types do not, but q2 > 0 always holds for them
    // (the max-magnitude weight has w > 0 and a non-zero level), so one guarded form serves all.
    let mut best = 0.0f32;
    if q2_p > 0.0 {
        d = qx_p / q2_p;
        best = d * qx_p;
    }
    if q2_m > 0.0 && qx_m * qx_m > best * q2_m {
        d = qx_m / q2_m;
        best = d * qx_m;
    }
    let mut shifted = false;
    for itry in -ntry..=ntry {
        for (is_shift, t) in [(false, lv.base), (true, lv.shifted)] {
            let id = (itry as f32 * step + t[0]) / max;
            let [qx_p, q2_p, qx_m, q2_m] = sums(xb, w, t, lv.best, id);
            if q2_p > 0.0 && qx_p * qx_p > best * q2_p {
                d = qx_p / q2_p;
                best = d * qx_p;
                shifted = is_shift;
            }
            if q2_m > 0.0 && qx_m * qx_m > best * q2_m {
                d = qx_m / q2_m;
                best = d * qx_m;
                shifted = is_shift;
            }
        }
    }
    if refit && d != 0.0 {
        let t = if shifted { lv.shifted } else { lv.base };
        let id = 1.0 / d;
        let (mut qx, mut q2) = (0.0f32, 0.0f32);
        for (&x, &wj) in xb.iter().zip(w) {
            let q = t[(lv.best)(t, id * x)];
            qx += wj * q * x;
            q2 += wj * q * q;
        }
        if q2 > 0.0 {
            d = qx / q2;
        }
    }
    (d, shifted)
}

// ---------------------------------------------------------------- generic decode-based dequantize / vec_dot

/// Where a type keeps its scale: per super-block f16 `d` at offset 0 (`_K` types) or once per row.
#[derive(Clone, Copy, PartialEq)]
pub enum RowScale {
    None,
    F16,
    F32,
}

impl RowScale {
    pub const fn bytes(self) -> usize {
        match self {
            RowScale::None => 0,
            RowScale::F16 => 2,
            RowScale::F32 => 4,
        }
    }
    fn read(self, row: &[u8]) -> f32 {
        match self {
            RowScale::None => 0.0,
            RowScale::F16 => rd_f16(row, 0),
            RowScale::F32 => rd_f32(row, 0),
        }
    }
}

/// Decode one 256-weight block into its level values and its integer scale per 16-weight sub-block
/// (32-block types repeat each scale twice); returns the block's own `d` for `_K` types, `None` for row-scale
/// types.
pub type DecodeFn = fn(b: &[u8], v: &mut [i8; QK_K], sc: &mut [i32; 16]) -> Option<f32>;

/// Dequantize rows: `y = (d · sc) · v` per element (§6; the scale is formed first, then multiplied).
pub fn dequant_rows(src: &[u8], dst: &mut [f32], ne0: usize, rs: RowScale, bytes: usize, dec: DecodeFn) {
    let row_bytes = rs.bytes() + ne0 / QK_K * bytes;
    debug_assert!(src.len() % row_bytes == 0 && dst.len() == src.len() / row_bytes * ne0);
    let (mut v, mut sc) = ([0i8; QK_K], [0i32; 16]);
    for (row, yr) in src.chunks_exact(row_bytes).zip(dst.chunks_exact_mut(ne0)) {
        let drow = rs.read(row);
        for (b, y) in row[rs.bytes()..].chunks_exact(bytes).zip(yr.chunks_exact_mut(QK_K)) {
            let d = dec(b, &mut v, &mut sc).unwrap_or(drow);
            for (k, yk) in y.chunks_exact_mut(16).enumerate() {
                let dl = d * sc[k] as f32;
                for (yi, &q) in yk.iter_mut().zip(&v[16 * k..16 * k + 16]) {
                    *yi = dl * q as f32;
                }
            }
        }
    }
}

/// Scalar dot with a Q8_K row: per block exact `isum = Σ_k sc_k · Σ v·q8`, then `sumf += (d·d8)·isum`.
pub fn vec_dot_rows(n: usize, x: &[u8], y: &[u8], rs: RowScale, bytes: usize, dec: DecodeFn) -> f32 {
    let drow = rs.read(x);
    let (mut v, mut sc) = ([0i8; QK_K], [0i32; 16]);
    let mut sumf = 0.0f32;
    for (bx, by) in x[rs.bytes()..].chunks_exact(bytes).zip(y.chunks_exact(Q8_K_BYTES)).take(n / QK_K) {
        let d = dec(bx, &mut v, &mut sc).unwrap_or(drow);
        let mut isum = 0i32;
        for k in 0..16 {
            let s: i32 = (16 * k..16 * k + 16).map(|j| v[j] as i32 * q8k_q(by, j)).sum();
            isum += sc[k] * s;
        }
        sumf += (d * q8k_d(by)) * isum as f32;
    }
    sumf
}
