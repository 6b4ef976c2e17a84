//! Q8_K_R8 weights against Q8_K activations (AVX2 + bit-identical scalar twin), and the lossy conversion of
//! IQ4_XS into Q8_K_R8 that the large-batch path uses (docs/batch-path.md).
//!
//! Layout (spec/quants.md §8.3, ik `block_q8_k_r8`): per 256 columns of a group of 8 rows, 2064 bytes — `d[8]`
//! (f16) then `q[2048]` with `q[128c + 32t + 4k + i]` = column `16c + 4t + i` of row `k`.
//!
//! Arithmetic of ik's AVX2 kernel @ 8337e4cd (`mul_mat_q8_k_r8_q8_k`, non-VNNI): per 256-block and row the exact
//! i32 dot (|q| ≤ 127 on both sides: `maddubs` pairs never saturate), then
//! `acc[k] = fma(f16(d[k]) · d8, f32(isum), acc[k])` in block order (`d8` = the Q8_K block's f32 scale).
//!
//! Conversion (ik `iqk_convert_iq4_xs_q8_k_r8` + `convert_to_q8_k_r8`, iqk_common.h): per 256-block and row,
//! `q16 = value · (ls − 32)` (i16), `dnew = max|q16| · f32(1/127)`; when `dnew < 1` the levels are `q16` as is
//! and `dnew = 1`, else `rint(q16 · (1/dnew))` (nearest-even); the stored scale is `f16(d · dnew)` (nearest).

use super::check_gemm;
use crate::quant::convert::{f16_to_f32, f32_to_f16};

const QK_K: usize = 256;
/// Bytes of one 256-column block of an 8-row group.
const R8_BLOCK: usize = 2064;
/// Q8_K activation block: f32 d, f32 sum, i8[256], i16 bsums[16].
const Q8K_BYTES: usize = 296;
const Q8K_QS: usize = 8;
/// spec/quants.md §3.1 kvalues_iq4nl.
const IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// Levels of one 256-column row block and its new scale factor (`convert_to_q8_k_r8`, module doc).
fn requant(q16: &[i32; QK_K]) -> ([i8; QK_K], f32) {
    let max = q16.iter().map(|v| v.abs()).max().unwrap_or(0);
    let dnew = max as f32 * (1.0f32 / 127.0);
    if dnew < 1.0 {
        return (q16.map(|v| v.clamp(-128, 127) as i8), 1.0);
    }
    let scale = 1.0 / dnew;
    // why the magic constant: 1.5·2²³ added and subtracted rounds |v| < 2²² to nearest-even (default rounding
    // mode), as `_mm256_round_ps(…, _MM_ROUND_NEAREST)`, without a libm call
    const RND: f32 = 12_582_912.0;
    (q16.map(|v| ((scale * v as f32 + RND) - RND).clamp(-128.0, 127.0) as i8), dnew)
}

/// IQ4_XS → Q8_K_R8: `nrows` (a multiple of 8) rows of `n` columns, row stride `bx`, into `dst`
/// (`cpu::kernels::q8_r8::ConvertFn`).
pub fn convert_iq4_xs(n: usize, x: &[u8], bx: usize, nrows: usize, dst: &mut [u8]) {
    const BYTES: usize = 136;
    assert!(n % QK_K == 0 && nrows % 8 == 0, "IQ4_XS → Q8_K_R8 conversion of {nrows} rows of {n}");
    let nb = n / QK_K;
    assert!(nrows == 0 || x.len() >= (nrows - 1) * bx + nb * BYTES, "conversion source too short");
    assert!(dst.len() >= nrows / 8 * nb * R8_BLOCK, "conversion scratch too short");
    for g in 0..nrows / 8 {
        for ib in 0..nb {
            let y = &mut dst[(g * nb + ib) * R8_BLOCK..][..R8_BLOCK];
            for k in 0..8 {
                let b = &x[(8 * g + k) * bx + ib * BYTES..][..BYTES];
                let d = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
                let sh = u16::from_le_bytes([b[2], b[3]]) as i32;
                let q16: [i32; QK_K] = std::array::from_fn(|e| {
                    let (ib32, j) = (e / 32, e % 32);
                    let ls = (((b[4 + ib32 / 2] as i32 >> (4 * (ib32 % 2))) & 15) | (((sh >> (2 * ib32)) & 3) << 4)) - 32;
                    let qb = b[8 + 16 * ib32 + j % 16];
                    IQ4NL[(if j < 16 { qb & 15 } else { qb >> 4 }) as usize] as i32 * ls
                });
                let (q, dnew) = requant(&q16);
                y[2 * k..2 * k + 2].copy_from_slice(&f32_to_f16(d * dnew).to_le_bytes());
                for c in 0..16 {
                    for t in 0..4 {
                        for i in 0..4 {
                            y[16 + 128 * c + 32 * t + 4 * k + i] = q[16 * c + 4 * t + i] as u8;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;
    use super::{Q8K_BYTES, Q8K_QS, QK_K, R8_BLOCK};

    /// `nx` (a multiple of 8) Q8_K_R8 rows (stride `bx`; a group of 8 rows is contiguous) × NY Q8_K rows.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm<const NY: usize>(n: usize, x: *const u8, bx: usize, nx: usize, y: *const u8, by: usize, out: *mut f32, ldo: usize) {
        let nb = n / QK_K;
        let m1 = _mm256_set1_epi16(1);
        for g in (0..nx).step_by(8) {
            let xg = x.add(g * bx);
            let mut acc = [_mm256_setzero_ps(); NY];
            for ibl in 0..nb {
                let b = xg.add(ibl * R8_BLOCK);
                let d4 = _mm256_cvtph_ps(_mm_loadu_si128(b as *const __m128i));
                let mut isum = [_mm256_setzero_si256(); NY];
                for c in 0..16 {
                    let q: [__m256i; 4] = std::array::from_fn(|t| _mm256_loadu_si256(b.add(16 + 128 * c + 32 * t) as *const __m256i));
                    let s: [__m256i; 4] = std::array::from_fn(|t| _mm256_sign_epi8(q[t], q[t]));
                    for (iy, is) in isum.iter_mut().enumerate() {
                        let y128 = _mm_loadu_si128(y.add(iy * by + ibl * Q8K_BYTES + Q8K_QS + 16 * c) as *const __m128i);
                        let yy = _mm256_set_m128i(y128, y128);
                        let p = |t: usize, v: __m256i| _mm256_madd_epi16(m1, _mm256_maddubs_epi16(s[t], _mm256_sign_epi8(v, q[t])));
                        let s1 = _mm256_add_epi32(p(0, _mm256_shuffle_epi32(yy, 0x00)), p(1, _mm256_shuffle_epi32(yy, 0x55)));
                        let s2 = _mm256_add_epi32(p(2, _mm256_shuffle_epi32(yy, 0xaa)), p(3, _mm256_shuffle_epi32(yy, 0xff)));
                        *is = _mm256_add_epi32(*is, _mm256_add_epi32(s1, s2));
                    }
                }
                for (iy, a) in acc.iter_mut().enumerate() {
                    let d8 = (y.add(iy * by + ibl * Q8K_BYTES) as *const f32).read_unaligned();
                    *a = _mm256_fmadd_ps(_mm256_mul_ps(d4, _mm256_set1_ps(d8)), _mm256_cvtepi32_ps(isum[iy]), *a);
                }
            }
            for (iy, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.add(iy * ldo + g), *a);
            }
        }
    }
}

/// Bytes per row of Q8_K_R8 for `n` columns.
fn row_bytes(n: usize) -> usize {
    n / QK_K * (R8_BLOCK / 8)
}

super::avx2_entry!(
    /// AVX2 GEMM of Q8_K_R8 weights (`nx` a multiple of 8, groups contiguous) × NY Q8_K activation rows.
    gemm_q8_k_r8, group 8, blk QK_K, row |n| row_bytes(n), act n / QK_K * Q8K_BYTES, kernel imp::gemm::<NY>
);

/// Scalar twin of `gemm_q8_k_r8` (bit-identical results; module doc).
#[allow(clippy::too_many_arguments)]
pub fn twin_q8_k_r8(n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, out: &mut [f32], ldo: usize) {
    assert!(nx % 8 == 0, "Q8_K_R8 GEMM on {nx} rows (not whole groups of 8)");
    check_gemm(n, QK_K, row_bytes(n), n / QK_K * Q8K_BYTES, x, bx, nx, y, by, ny, out, ldo);
    assert!(nx == 0 || x.len() >= nx * bx, "weight slice too short");
    let nb = n / QK_K;
    for g in (0..nx).step_by(8) {
        let xg = &x[g * bx..(g + 8) * bx];
        for iy in 0..ny {
            let mut acc = [0.0f32; 8];
            for ibl in 0..nb {
                let yb = &y[iy * by + ibl * Q8K_BYTES..][..Q8K_BYTES];
                let d8 = f32::from_le_bytes([yb[0], yb[1], yb[2], yb[3]]);
                let b = &xg[ibl * R8_BLOCK..][..R8_BLOCK];
                for (k, a) in acc.iter_mut().enumerate() {
                    let dx = f16_to_f32(u16::from_le_bytes([b[2 * k], b[2 * k + 1]]));
                    let mut isum = 0i32;
                    for c in 0..16 {
                        for t in 0..4 {
                            for i in 0..4 {
                                isum += b[16 + 128 * c + 32 * t + 4 * k + i] as i8 as i32 * yb[Q8K_QS + 16 * c + 4 * t + i] as i8 as i32;
                            }
                        }
                    }
                    *a = (dx * d8).mul_add(isum as f32, *a);
                }
            }
            out[iy * ldo + g..iy * ldo + g + 8].copy_from_slice(&acc);
        }
    }
}
