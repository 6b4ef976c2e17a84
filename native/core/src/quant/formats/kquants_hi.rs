//! Q4_K, Q5_K and Q6_K (spec/quants.md §5.3–§5.5): dequantize, reference quantizers
//! (`quantize_row_q{4,5,6}_K_ref`) and imatrix paths (`quantize_row_q{4,5,6}_K_impl`), scalar vec_dot with Q8_K.
//!
//! Upstream: ggml/src/ggml-quants.c @ 8337e4cd (same function names, `get_scale_min_k4`).
//!
//! Block layouts (byte offsets):
//! * Q4_K: d f16 @0, dmin f16 @2, scales[12] @4, qs[128] @16 (144 B)
//! * Q5_K: d f16 @0, dmin f16 @2, scales[12] @4, qh[32] @16, qs[128] @48 (176 B)
//! * Q6_K: ql[128] @0, qh[64] @128, scales i8[16] @192, d f16 @208 (210 B)
//!
//! vec_dot order: per super-block exact i32 `isum = Σ_j sc_j·Σ q·q8` and `summs = Σ_j m_j·(bsum_2j + bsum_2j+1)`,
//! then `sumf += (dy·dx)·isum − (dy·dminx)·summs` (Q6_K: `sumf += (dx·dy)·isum`), in order, f32.

use super::common::{rd_f16, rows, sum_sq, wr_f16};
use super::q8::{q8k_bsum, q8k_d, q8k_q, Q8_K_BYTES};
use super::search::{make_qkx2_quants, make_qkx3_quants, make_qp_quants, make_qx_quants, GROUP_MAX_EPS};
use crate::quant::convert::nearest_int;
use crate::quant::QType;

const QK_K: usize = 256;
pub const Q4_K_BYTES: usize = 144;
pub const Q5_K_BYTES: usize = 176;
pub const Q6_K_BYTES: usize = 210;
const _: () = assert!(Q4_K_BYTES == QType::Q4_K.traits().type_size);
const _: () = assert!(Q5_K_BYTES == QType::Q5_K.traits().type_size);
const _: () = assert!(Q6_K_BYTES == QType::Q6_K.traits().type_size);

/// ggml `get_scale_min_k4`: 6-bit scale and min of 32-block `j` from the 12 packed bytes.
#[inline]
pub fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

fn pack_scale_min_k4(ls: &[u8; 8], lm: &[u8; 8], q: &mut [u8]) {
    for j in 0..8 {
        if j < 4 {
            q[j] = ls[j];
            q[j + 4] = lm[j];
        } else {
            q[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4);
            q[j - 4] |= (ls[j] >> 4) << 6;
            q[j] |= (lm[j] >> 4) << 6;
        }
    }
}

/// Level (0…15 or 0…31) of weight `e` for Q4_K (`qh = None`) / Q5_K.
#[inline]
fn q45_at(qs: &[u8], qh: Option<&[u8]>, e: usize) -> u8 {
    let byte = qs[32 * (e / 64) + e % 32];
    let low = if e % 64 < 32 { byte & 15 } else { byte >> 4 };
    match qh {
        Some(h) => low + 16 * ((h[e % 32] >> (e / 32)) & 1),
        None => low,
    }
}

fn dequantize_q45(b: &[u8], y: &mut [f32], qh: Option<&[u8]>, qs: &[u8]) {
    let (d, min) = (rd_f16(b, 0), rd_f16(b, 2));
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &b[4..16]);
        let (d1, m1) = (d * sc as f32, min * m as f32);
        for e in 32 * j..32 * j + 32 {
            y[e] = d1 * q45_at(qs, qh, e) as f32 - m1;
        }
    }
}

pub fn dequantize_q4_k(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q4_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        dequantize_q45(b, y, None, &b[16..144]);
    }
}

pub fn dequantize_q5_k(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q5_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        dequantize_q45(b, y, Some(&b[16..48]), &b[48..176]);
    }
}

/// Shared Q4_K/Q5_K super-block quantizer: per-32 affine search, 6-bit scales/mins, re-quantization.
/// Returns the final levels (0…nmax); the caller packs them.
fn quantize_q45_block(xb: &[f32], qw: Option<&[f32]>, nmax: i32, hdr: &mut [u8]) -> [u8; QK_K] {
    let mut l = [0u8; QK_K];
    let (mut scales, mut mins) = ([0.0f32; 8], [0.0f32; 8]);
    let (mut ls, mut lm) = ([0u8; 8], [0u8; 8]);
    hdr[4..16].fill(0);
    match qw {
        None => {
            let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
            for j in 0..8 {
                let xs = &xb[32 * j..32 * j + 32];
                let av_x = (sum_sq(xs) / 32.0).sqrt();
                let w: [f32; 32] = core::array::from_fn(|i| av_x + xs[i].abs());
                // why these grids: Q4_K ref searches rmin −1, step 0.1, 20 steps; Q5_K −0.5, 0.1, 15
                let (rmin, nstep) = if nmax == 15 { (-1.0, 20) } else { (-0.5, 15) };
                (scales[j], mins[j]) = make_qkx2_quants(xs, nmax, &w, &mut l[32 * j..], rmin, 0.1, nstep, false);
                max_scale = if scales[j] > max_scale { scales[j] } else { max_scale };
                max_min = if mins[j] > max_min { mins[j] } else { max_min };
            }
            // why 63: 6-bit sub-block scales and mins
            let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
            let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
            for j in 0..8 {
                ls[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
                lm[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
            }
            pack_scale_min_k4(&ls, &lm, &mut hdr[4..16]);
            wr_f16(hdr, 0, max_scale / 63.0);
            wr_f16(hdr, 2, max_min / 63.0);
        }
        Some(qw) => {
            let sigma2 = 2.0 * sum_sq(xb) / QK_K as f32;
            let mut sw = [0.0f32; 8];
            for j in 0..8 {
                let xs = &xb[32 * j..32 * j + 32];
                let w: [f32; 32] = core::array::from_fn(|i| qw[32 * j + i] * (sigma2 + xs[i] * xs[i]).sqrt());
                sw[j] = w.iter().fold(0.0f32, |s, &v| s + v);
                (scales[j], mins[j]) = make_qkx3_quants(xs, nmax, Some(&w), &mut l[32 * j..], -0.9, 0.05, 36, false);
            }
            let d_block = make_qp_quants(&scales, 63, &mut ls, &sw);
            let m_block = make_qp_quants(&mins, 63, &mut lm, &sw);
            ls = ls.map(|v| v.min(63));
            lm = lm.map(|v| v.min(63));
            pack_scale_min_k4(&ls, &lm, &mut hdr[4..16]);
            wr_f16(hdr, 0, d_block);
            wr_f16(hdr, 2, m_block);
        }
    }
    let (d, dmin) = (rd_f16(hdr, 0), rd_f16(hdr, 2));
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &hdr[4..16]);
        let dl = d * sc as f32;
        if dl == 0.0 {
            continue;
        }
        let dm = dmin * m as f32;
        for i in 32 * j..32 * j + 32 {
            l[i] = nearest_int((xb[i] + dm) / dl).clamp(0, nmax) as u8;
        }
    }
    l
}

pub fn quantize_q4_k(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    for (x, y) in rows(src, dst, ne0, ne0 / QK_K * Q4_K_BYTES) {
        for (i, (xb, b)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q4_K_BYTES)).enumerate() {
            let l = quantize_q45_block(xb, imatrix.map(|q| &q[QK_K * i..]), 15, b);
            for c in 0..4 {
                for k in 0..32 {
                    b[16 + 32 * c + k] = l[64 * c + k] | (l[64 * c + 32 + k] << 4);
                }
            }
        }
    }
}

pub fn quantize_q5_k(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    for (x, y) in rows(src, dst, ne0, ne0 / QK_K * Q5_K_BYTES) {
        for (i, (xb, b)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q5_K_BYTES)).enumerate() {
            let l = quantize_q45_block(xb, imatrix.map(|q| &q[QK_K * i..]), 31, b);
            b[16..48].fill(0);
            for c in 0..4 {
                for k in 0..32 {
                    let (l1, l2) = (l[64 * c + k], l[64 * c + 32 + k]);
                    b[16 + k] |= ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1));
                    b[48 + 32 * c + k] = (l1 & 15) | ((l2 & 15) << 4);
                }
            }
        }
    }
}

fn vec_dot_q45(n: usize, x: &[u8], y: &[u8], bytes: usize, q5: bool) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(bytes).zip(y.chunks_exact(Q8_K_BYTES)).take(n / QK_K) {
        let (qh, qs) = if q5 { (Some(&bx[16..48]), &bx[48..176]) } else { (None, &bx[16..144]) };
        let (mut isum, mut summs) = (0i32, 0i32);
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, &bx[4..16]);
            let p: i32 = (32 * j..32 * j + 32).map(|e| q45_at(qs, qh, e) as i32 * q8k_q(by, e)).sum();
            isum += sc as i32 * p;
            summs += m as i32 * (q8k_bsum(by, 2 * j) + q8k_bsum(by, 2 * j + 1));
        }
        let d = q8k_d(by) * rd_f16(bx, 0);
        let dmin = q8k_d(by) * rd_f16(bx, 2);
        sumf += d * isum as f32 - dmin * summs as f32;
    }
    sumf
}

pub fn vec_dot_q4_k_q8_k(n: usize, x: &[u8], y: &[u8]) -> f32 {
    vec_dot_q45(n, x, y, Q4_K_BYTES, false)
}

pub fn vec_dot_q5_k_q8_k(n: usize, x: &[u8], y: &[u8]) -> f32 {
    vec_dot_q45(n, x, y, Q5_K_BYTES, true)
}

// ---------------------------------------------------------------- Q6_K

/// Signed 6-bit level (−32…31) of weight `e`.
#[inline]
fn q6k_at(b: &[u8], e: usize) -> i32 {
    let (h, t, l) = (e / 128, (e % 128) / 32, e % 32);
    let ql = b[64 * h + 32 * (t & 1) + l];
    let low = if t < 2 { ql & 15 } else { ql >> 4 };
    let high = (b[128 + 32 * h + l] >> (2 * t)) & 3;
    (low | (high << 4)) as i32 - 32
}

pub fn dequantize_q6_k(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q6_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = rd_f16(b, 208);
        for (e, yi) in y.iter_mut().enumerate() {
            *yi = d * (b[192 + e / 16] as i8) as f32 * q6k_at(b, e) as f32;
        }
    }
}

/// `quantize_row_q6_K_ref` (`qw = None`, weights x²) / `_impl` (raw imatrix weights) on one super-block.
fn quantize_q6_k_block(xb: &[f32], qw: Option<&[f32]>, b: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    let (mut max_scale, mut max_abs) = (0.0f32, 0.0f32);
    for ib in 0..16 {
        let q = qw.map(|q| &q[16 * ib..16 * ib + 16]);
        scales[ib] = make_qx_quants(&xb[16 * ib..16 * ib + 16], 32, &mut l[16 * ib..], 1, q);
        if scales[ib].abs() > max_abs {
            max_abs = scales[ib].abs();
            max_scale = scales[ib];
        }
    }
    b.fill(0);
    if max_abs < GROUP_MAX_EPS {
        return;
    }
    // why −128: the largest-magnitude sub-block scale maps to the int8 extreme
    let iscale = -128.0 / max_scale;
    wr_f16(b, 208, 1.0 / iscale);
    for ib in 0..16 {
        b[192 + ib] = nearest_int(iscale * scales[ib]).min(127) as i8 as u8;
    }
    let d = rd_f16(b, 208);
    for j in 0..16 {
        let dl = d * (b[192 + j] as i8) as f32;
        if dl == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            l[i] = (nearest_int(xb[i] / dl).clamp(-32, 31) + 32) as i8;
        }
    }
    let l = l.map(|v| v as u8);
    for h in 0..2 {
        for k in 0..32 {
            let e = 128 * h + k;
            b[64 * h + k] = (l[e] & 15) | ((l[e + 64] & 15) << 4);
            b[64 * h + 32 + k] = (l[e + 32] & 15) | ((l[e + 96] & 15) << 4);
            b[128 + 32 * h + k] = (l[e] >> 4) | ((l[e + 32] >> 4) << 2) | ((l[e + 64] >> 4) << 4) | ((l[e + 96] >> 4) << 6);
        }
    }
}

pub fn quantize_q6_k(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    for (x, y) in rows(src, dst, ne0, ne0 / QK_K * Q6_K_BYTES) {
        for (i, (xb, b)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q6_K_BYTES)).enumerate() {
            quantize_q6_k_block(xb, imatrix.map(|q| &q[QK_K * i..]), b);
        }
    }
}

pub fn vec_dot_q6_k_q8_k(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(Q6_K_BYTES).zip(y.chunks_exact(Q8_K_BYTES)).take(n / QK_K) {
        let mut isum = 0i32;
        for k in 0..16 {
            let p: i32 = (16 * k..16 * k + 16).map(|e| q6k_at(bx, e) * q8k_q(by, e)).sum();
            isum += (bx[192 + k] as i8) as i32 * p;
        }
        sumf += (rd_f16(bx, 208) * q8k_d(by)) * isum as f32;
    }
    sumf
}
