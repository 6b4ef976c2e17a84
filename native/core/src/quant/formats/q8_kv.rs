//! Q8_KV, Q8_KV_R8 and Q8_K_R8: int8 types with one scale per row / per 256 columns (spec/quants.md §7.4, §8.3,
//! §8.4).
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`iqk_quantize_row_q8_KV` AVX2 path,
//! `iqk_quantize_row_q8_K_T<1>` AVX2 path, `repack_q8_KV`, `repack_q8_k`, `quantize_q8_KV_r8`,
//! `quantize_q8_k_r8`, `dequantize_row_q8_KV`, `dequantize_row_q8_KV_r8`, `dequantize_row_q8_k_r8`).
//!
//! Layouts: Q8_KV row = f32 d, i32 sum, i8[ne0]. Q8_KV_R8 group = f32 d[8], then per 16 columns 128 bytes
//! `q[128c + 32l + 4k + i]` = column `16c + 4l + i` of row k. Q8_K_R8 super-block (8 rows × 256) = f16 d[8],
//! `qs[32j + 4k + i]` = column `4j + i` of row k.
//!
//! Why the x86 arithmetic: the reference library is an AVX2 build, whose quantizers form `d = amax/127` and
//! scale by `1/d` (Q8_KV) or by `127/amax` (Q8_K_R8) and round to nearest-even; the portable C fallbacks differ
//! (Q8_K_R8's uses `d = max/−127`), and files are produced by x86 builds.

use super::common::{rd_f16, rd_f32, wr_f16, wr_f32};
use super::Format;
use crate::quant::QType;

#[inline]
fn round_i8(v: f32) -> i8 {
    // _mm256_round_ps(nearest) + cvtps + saturating packs.
    v.round_ties_even().clamp(-128.0, 127.0) as i8
}

fn amax(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, v| m.max(v.abs()))
}

/// One Q8_KV row (`8 + ne0` bytes).
fn quantize_row_q8_kv(x: &[f32], y: &mut [u8]) {
    let m = amax(x);
    if m == 0.0 {
        y.fill(0);
        return;
    }
    let d = m / 127.0;
    let id = 1.0 / d;
    let mut sum = 0i32;
    for (v, q) in x.iter().zip(&mut y[8..]) {
        let i = round_i8(id * v);
        sum += i as i32;
        *q = i as u8;
    }
    wr_f32(y, 0, d);
    y[4..8].copy_from_slice(&sum.to_le_bytes());
}

fn quantize_q8_kv(src: &[f32], dst: &mut [u8], ne0: usize, _im: Option<&[f32]>) {
    for (x, y) in src.chunks_exact(ne0).zip(dst.chunks_exact_mut(8 + ne0)) {
        quantize_row_q8_kv(x, y);
    }
}

fn dequantize_q8_kv(src: &[u8], dst: &mut [f32], ne0: usize) {
    for (x, y) in src.chunks_exact(8 + ne0).zip(dst.chunks_exact_mut(ne0)) {
        let d = rd_f32(x, 0);
        for (q, v) in x[8..].iter().zip(y.iter_mut()) {
            *v = d * (*q as i8) as f32;
        }
    }
}

/// 8 Q8_KV rows → one Q8_KV_R8 group (the per-row sums are dropped).
pub(super) fn repack_q8_kv_r8(x: &[u8], y: &mut [u8], ne0: usize) {
    let rx = 8 + ne0;
    for k in 0..8 {
        y[4 * k..4 * k + 4].copy_from_slice(&x[k * rx..k * rx + 4]);
    }
    for c in 0..ne0 / 16 {
        for k in 0..8 {
            for l in 0..4 {
                let s = k * rx + 8 + 16 * c + 4 * l;
                let d = 32 + 128 * c + 32 * l + 4 * k;
                y[d..d + 4].copy_from_slice(&x[s..s + 4]);
            }
        }
    }
}

fn quantize_q8_kv_r8(src: &[f32], dst: &mut [u8], ne0: usize, _im: Option<&[f32]>) {
    let mut tmp = vec![0u8; 8 * (8 + ne0)];
    for (x, y) in src.chunks_exact(8 * ne0).zip(dst.chunks_exact_mut(8 * (4 + ne0))) {
        quantize_q8_kv(x, &mut tmp, ne0, None);
        repack_q8_kv_r8(&tmp, y, ne0);
    }
}

fn dequantize_q8_kv_r8(src: &[u8], dst: &mut [f32], ne0: usize) {
    for (x, y) in src.chunks_exact(8 * (4 + ne0)).zip(dst.chunks_exact_mut(8 * ne0)) {
        for k in 0..8 {
            let d = rd_f32(x, 4 * k);
            for c in 0..ne0 / 16 {
                for l in 0..4 {
                    for i in 0..4 {
                        let q = x[32 + 128 * c + 32 * l + 4 * k + i] as i8;
                        y[k * ne0 + 16 * c + 4 * l + i] = d * q as f32;
                    }
                }
            }
        }
    }
}

/// 8 Q8_K rows (ik 296-byte blocks: f32 d, f32 sum, i8[256], i16 bsums[16]) → one Q8_K_R8 group.
pub(super) fn repack_q8_k_r8(x: &[u8], y: &mut [u8], ne0: usize) {
    let nb = ne0 / 256;
    for ibl in 0..nb {
        let yb = &mut y[2064 * ibl..2064 * (ibl + 1)];
        for k in 0..8 {
            let xb = &x[(k * nb + ibl) * 296..];
            wr_f16(yb, 2 * k, rd_f32(xb, 0));
            for j in 0..64 {
                let d = 16 + 32 * j + 4 * k;
                yb[d..d + 4].copy_from_slice(&xb[8 + 4 * j..12 + 4 * j]);
            }
        }
    }
}

fn quantize_q8_k_r8(src: &[f32], dst: &mut [u8], ne0: usize, _im: Option<&[f32]>) {
    let nb = ne0 / 256;
    for (x, y) in src.chunks_exact(8 * ne0).zip(dst.chunks_exact_mut(8 * nb * 258)) {
        for ibl in 0..nb {
            let yb = &mut y[2064 * ibl..2064 * (ibl + 1)];
            for k in 0..8 {
                let xb = &x[k * ne0 + 256 * ibl..k * ne0 + 256 * (ibl + 1)];
                let m = amax(xb);
                let id = if m != 0.0 { 127.0 / m } else { 0.0 };
                wr_f16(yb, 2 * k, m / 127.0);
                for (j, v) in xb.iter().enumerate() {
                    yb[16 + 32 * (j / 4) + 4 * k + j % 4] = round_i8(id * v) as u8;
                }
            }
        }
    }
}

fn dequantize_q8_k_r8(src: &[u8], dst: &mut [f32], ne0: usize) {
    let nb = ne0 / 256;
    for (x, y) in src.chunks_exact(8 * nb * 258).zip(dst.chunks_exact_mut(8 * ne0)) {
        for ibl in 0..nb {
            let xb = &x[2064 * ibl..];
            for k in 0..8 {
                let d = rd_f16(xb, 2 * k);
                for j in 0..256 {
                    let q = xb[16 + 32 * (j / 4) + 4 * k + j % 4] as i8;
                    y[k * ne0 + 256 * ibl + j] = d * q as f32;
                }
            }
        }
    }
}

pub static Q8_KV: Format =
    Format { qtype: QType::Q8_KV, dequantize: dequantize_q8_kv, quantize: Some(quantize_q8_kv), vec_dot_type: QType::Q8_KV, vec_dot: None };
pub static Q8_KV_R8: Format = Format {
    qtype: QType::Q8_KV_R8,
    dequantize: dequantize_q8_kv_r8,
    quantize: Some(quantize_q8_kv_r8),
    vec_dot_type: QType::Q8_KV,
    vec_dot: None,
};
pub static Q8_K_R8: Format = Format {
    qtype: QType::Q8_K_R8,
    dequantize: dequantize_q8_k_r8,
    quantize: Some(quantize_q8_k_r8),
    vec_dot_type: QType::Q8_K,
    vec_dot: None,
};
