//! Q8_0_R8 weights against Q8_2_X4 activations (AVX2 + bit-identical scalar twin), and the lossless conversion
//! of 32-weight block types into Q8_0_R8 that the large-batch path uses (docs/batch-path.md).
//!
//! Layout (spec/quants.md §8, ik `block_q8_0_r8`): per 32-column block of a group of 8 rows, 272 bytes —
//! `d[8]` (f16, one per row) then `qs[256]`, where u32 word `8·l + k` holds quants `4l..4l+3` of row `k` and
//! word `32 + 8·l + k` quants `16+4l..16+4l+3`.
//!
//! Arithmetic of ik's AVX2 kernel @ 8337e4cd (`mul_mat_q8_0_r8_q8_2`, non-AVX512 branch), rewritten: for each
//! block `b` and row `k` the exact i32 dot of the 32 signed quants with the activation quants (|q| ≤ 127, i16
//! `maddubs` pairs never saturate), then `acc[k] = fma(f16(d[k])·bf16(dy_b), f32(isum), acc[k])` in block order,
//! one f32 lane per weight row, no horizontal sum. The scalar twin (`twin_q8_0_r8`) repeats exactly that.
//!
//! Conversion (ik `iqk_convert_legacy_quants_q8_r8`: `iqk_convert_q80_q80_r8`, `iqk_convert_qX_q80_r8` with
//! `Q4_0_Dequantizer`, `Q5_0_Dequantizer`, `Q6_0_Dequantizer`, `IQ4_NL_DequantizerS`): the block's f16 scale is
//! copied and its levels written as signed int8 (Q4_0: q−8, Q5_0: q−16, Q6_0: q−32, IQ4_NL: the table value,
//! Q8_0: as is), so it is exact and a converted weight multiplies to the same numbers as a stored Q8_0_R8.

use super::act::q8_2_offsets;
use super::check_gemm;
use crate::quant::convert::{bf16_to_f32, f16_to_f32, f32_to_f16};
use crate::quant::formats::{unpack_q5_0, unpack_q6_0};
use crate::quant::QType;

const QK: usize = 32;
/// Bytes of one 32-column block of an 8-row group.
const R8_BLOCK: usize = 272;
/// Bytes per Q8_0 (and Q8_0_R8) row block.
const Q8_0_BYTES: usize = 34;
/// Q8_2_X4 bytes per 32 activations.
const ACT_BYTES: usize = 36;
/// spec/quants.md §3.1 kvalues_iq4nl.
const IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// Convert `nrows` (a multiple of 8) rows of `n` columns, row stride `bx`, into Q8_0_R8 groups at `dst`
/// (`nrows × n/32 × 34` bytes; group `g` starts at `g · 8 · n/32 · 34`).
pub type ConvertFn = fn(n: usize, x: &[u8], bx: usize, nrows: usize, dst: &mut [u8]);

/// Signed levels of one block of each source type.
fn lv_q8_0(b: &[u8]) -> [i8; QK] {
    std::array::from_fn(|j| b[2 + j] as i8)
}
fn nib(b: &[u8], j: usize) -> u8 {
    if j < 16 {
        b[2 + j] & 15
    } else {
        b[2 + j - 16] >> 4
    }
}
fn lv_q4_0(b: &[u8]) -> [i8; QK] {
    std::array::from_fn(|j| nib(b, j) as i8 - 8)
}
fn lv_iq4_nl(b: &[u8]) -> [i8; QK] {
    std::array::from_fn(|j| IQ4NL[nib(b, j) as usize])
}
fn lv_q5_0(b: &[u8]) -> [i8; QK] {
    unpack_q5_0(b).map(|q| q as i8 - 16)
}
fn lv_q6_0(b: &[u8]) -> [i8; QK] {
    unpack_q6_0(b).map(|q| q as i8 - 32)
}

fn convert_with(n: usize, x: &[u8], bx: usize, nrows: usize, dst: &mut [u8], bytes: usize, lv: fn(&[u8]) -> [i8; QK]) {
    assert!(n % QK == 0 && nrows % 8 == 0, "Q8_0_R8 conversion of {nrows} rows of {n}");
    let nb = n / QK;
    assert!(nrows == 0 || x.len() >= (nrows - 1) * bx + nb * bytes, "conversion source too short");
    assert!(dst.len() >= nrows * nb * Q8_0_BYTES, "conversion scratch too short");
    for g in 0..nrows / 8 {
        for ib in 0..nb {
            let y = &mut dst[(g * nb + ib) * R8_BLOCK..(g * nb + ib + 1) * R8_BLOCK];
            for k in 0..8 {
                let b = &x[(8 * g + k) * bx + ib * bytes..];
                y[2 * k..2 * k + 2].copy_from_slice(&b[..2]);
                let q = lv(b);
                for l in 0..4 {
                    for i in 0..4 {
                        y[16 + 32 * l + 4 * k + i] = q[4 * l + i] as u8;
                        y[144 + 32 * l + 4 * k + i] = q[16 + 4 * l + i] as u8;
                    }
                }
            }
        }
    }
}

macro_rules! converters {
    ($($name:ident, $bytes:expr, $lv:ident;)+) => {$(
        /// `ConvertFn` of one source type (module doc).
        pub fn $name(n: usize, x: &[u8], bx: usize, nrows: usize, dst: &mut [u8]) {
            convert_with(n, x, bx, nrows, dst, $bytes, $lv)
        }
    )+};
}
converters! {
    convert_q8_0, 34, lv_q8_0;
    convert_q4_0, 18, lv_q4_0;
    convert_q5_0, 22, lv_q5_0;
    convert_q6_0, 26, lv_q6_0;
    convert_iq4_nl, 18, lv_iq4_nl;
}

/// Q6_K → Q8_0_R8 (ik `iqk_convert_q6_k_q8_0_r8`, lossy): per 32 weights `q16 = (q − 32)·sc` for the two
/// 16-weight scales, `max = max|q16| / 127` (f32), levels `rint(q16 · (1/max))` (nearest-even, as
/// `_mm256_round_ps`), new scale `f16(d · max)` (nearest); an all-zero block (`max ≤ 1e-9`) gives zero levels.
pub fn convert_q6_k(n: usize, x: &[u8], bx: usize, nrows: usize, dst: &mut [u8]) {
    const BYTES: usize = 210;
    assert!(n % 256 == 0 && nrows % 8 == 0, "Q6_K → Q8_0_R8 conversion of {nrows} rows of {n}");
    let (nsb, nb) = (n / 256, n / QK);
    assert!(nrows == 0 || x.len() >= (nrows - 1) * bx + nsb * BYTES, "conversion source too short");
    assert!(dst.len() >= nrows * nb * Q8_0_BYTES, "conversion scratch too short");
    for g in 0..nrows / 8 {
        for i in 0..nsb {
            for k in 0..8 {
                let b = &x[(8 * g + k) * bx + i * BYTES..][..BYTES];
                let d = f16_to_f32(u16::from_le_bytes([b[208], b[209]]));
                for ib32 in 0..8 {
                    let (h, j) = (ib32 / 4, ib32 % 4);
                    let q16: [i32; QK] = std::array::from_fn(|e| {
                        let (ql, qh) = (b[64 * h + 32 * (j % 2) + e], b[128 + 32 * h + e]);
                        let lo = if j < 2 { ql & 15 } else { ql >> 4 };
                        let q = (lo | ((qh >> (2 * j)) & 3) << 4) as i32 - 32;
                        q * b[192 + 2 * ib32 + e / 16] as i8 as i32
                    });
                    let max = q16.iter().map(|v| v.abs()).max().unwrap_or(0) as f32 / 127.0;
                    let y = &mut dst[((g * nb) + 8 * i + ib32) * R8_BLOCK..][..R8_BLOCK];
                    y[2 * k..2 * k + 2].copy_from_slice(&f32_to_f16(d * max).to_le_bytes());
                    let scale = 1.0 / max;
                    // why the magic constant: 1.5·2²³ added and subtracted rounds |v| < 2²² to nearest-even
                    // in the default rounding mode (= `_mm256_round_ps` nearest) without a libm call.
                    const RND: f32 = 12_582_912.0;
                    let lv = |e: usize| if max > 1e-9 { ((scale * q16[e] as f32 + RND) - RND).clamp(-128.0, 127.0) as i8 as u8 } else { 0 };
                    for l in 0..4 {
                        for t in 0..4 {
                            y[16 + 32 * l + 4 * k + t] = lv(4 * l + t);
                            y[144 + 32 * l + 4 * k + t] = lv(16 + 4 * l + t);
                        }
                    }
                }
            }
        }
    }
}

/// The converter of a source type into Q8_0_R8, where the conversion exists.
pub fn converter_q8_0_r8(q: QType) -> Option<ConvertFn> {
    Some(match q {
        QType::Q8_0 => convert_q8_0,
        QType::Q4_0 => convert_q4_0,
        QType::Q5_0 => convert_q5_0,
        QType::Q6_0 => convert_q6_0,
        QType::IQ4_NL => convert_iq4_nl,
        QType::Q6_K => convert_q6_k,
        _ => return None,
    })
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;
    use super::{q8_2_offsets, QK, R8_BLOCK};

    /// Σ of 16 activation quants at `qy` against the four 32-byte words `q` (8 rows × 4 quants each): lane k = row k.
    #[inline(always)]
    unsafe fn dot16(q: &[__m256i], s: &[__m256i], qy: *const u8) -> __m256i {
        let m1 = _mm256_set1_epi16(1);
        let y = _mm_loadu_si128(qy as *const __m128i);
        let y = _mm256_set_m128i(y, y);
        let p = |j: usize, yy: __m256i| _mm256_madd_epi16(m1, _mm256_maddubs_epi16(s[j], _mm256_sign_epi8(yy, q[j])));
        let s1 = _mm256_add_epi32(p(0, _mm256_shuffle_epi32(y, 0x00)), p(1, _mm256_shuffle_epi32(y, 0x55)));
        let s2 = _mm256_add_epi32(p(2, _mm256_shuffle_epi32(y, 0xaa)), p(3, _mm256_shuffle_epi32(y, 0xff)));
        _mm256_add_epi32(s1, s2)
    }

    /// `nx` (a multiple of 8) Q8_0_R8 rows (stride `bx`; a group of 8 rows is contiguous) × NY Q8_2_X4 rows.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm<const NY: usize>(n: usize, x: *const u8, bx: usize, nx: usize, y: *const u8, by: usize, out: *mut f32, ldo: usize) {
        let nb = n / QK;
        for g in (0..nx).step_by(8) {
            let xg = x.add(g * bx);
            let mut acc = [_mm256_setzero_ps(); NY];
            for ib in 0..nb {
                let (od, _, oq) = q8_2_offsets(nb, ib);
                let b = xg.add(ib * R8_BLOCK);
                let scales = _mm256_cvtph_ps(_mm_loadu_si128(b as *const __m128i));
                let mut q = [_mm256_setzero_si256(); 8];
                let mut s = [_mm256_setzero_si256(); 8];
                for j in 0..8 {
                    q[j] = _mm256_loadu_si256(b.add(16 + 32 * j) as *const __m256i);
                    s[j] = _mm256_sign_epi8(q[j], q[j]);
                }
                for (iy, a) in acc.iter_mut().enumerate() {
                    let yr = y.add(iy * by);
                    let sumi = _mm256_add_epi32(dot16(&q[..4], &s[..4], yr.add(oq)), dot16(&q[4..], &s[4..], yr.add(oq + 16)));
                    let dy = f32::from_bits((u16::from_le_bytes([*yr.add(od), *yr.add(od + 1)]) as u32) << 16);
                    let d4d8 = _mm256_mul_ps(scales, _mm256_set1_ps(dy));
                    *a = _mm256_fmadd_ps(d4d8, _mm256_cvtepi32_ps(sumi), *a);
                }
            }
            for (iy, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.add(iy * ldo + g), *a);
            }
        }
    }
}

super::avx2_entry!(
    /// AVX2 GEMM of Q8_0_R8 weights (`nx` a multiple of 8, groups contiguous) × NY Q8_2_X4 activation rows.
    gemm_q8_0_r8, group 8, blk QK, row |n| n / QK * Q8_0_BYTES, act n / QK * ACT_BYTES, kernel imp::gemm::<NY>
);

/// Scalar twin of `gemm_q8_0_r8` (bit-identical results; module doc).
#[allow(clippy::too_many_arguments)]
pub fn twin_q8_0_r8(n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, out: &mut [f32], ldo: usize) {
    assert!(nx % 8 == 0, "Q8_0_R8 GEMM on {nx} rows (not whole groups of 8)");
    check_gemm(n, QK, n / QK * Q8_0_BYTES, n / QK * ACT_BYTES, x, bx, nx, y, by, ny, out, ldo);
    assert!(nx == 0 || x.len() >= nx * bx, "weight slice too short");
    let nb = n / QK;
    for g in (0..nx).step_by(8) {
        let xg = &x[g * bx..(g + 8) * bx];
        for iy in 0..ny {
            let yr = &y[iy * by..];
            let mut acc = [0.0f32; 8];
            for ib in 0..nb {
                let (od, _, oq) = q8_2_offsets(nb, ib);
                let dy = bf16_to_f32(u16::from_le_bytes([yr[od], yr[od + 1]]));
                let b = &xg[ib * R8_BLOCK..(ib + 1) * R8_BLOCK];
                for (k, a) in acc.iter_mut().enumerate() {
                    let dx = f16_to_f32(u16::from_le_bytes([b[2 * k], b[2 * k + 1]]));
                    let mut isum = 0i32;
                    for l in 0..4 {
                        for i in 0..4 {
                            isum += b[16 + 32 * l + 4 * k + i] as i8 as i32 * yr[oq + 4 * l + i] as i8 as i32;
                            isum += b[144 + 32 * l + 4 * k + i] as i8 as i32 * yr[oq + 16 + 4 * l + i] as i8 as i32;
                        }
                    }
                    *a = (dx * dy).mul_add(isum as f32, *a);
                }
            }
            out[iy * ldo + g..iy * ldo + g + 8].copy_from_slice(&acc);
        }
    }
}
