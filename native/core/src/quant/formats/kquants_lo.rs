//! Q2_K and Q3_K (spec/quants.md §5.1, §5.2): dequantize, the reference quantizers (`quantize_row_q2_K_ref`,
//! `quantize_row_q3_K_ref`) and imatrix paths (`quantize_row_q2_K_impl`, `quantize_row_q3_K_impl`), scalar
//! vec_dot with Q8_K.
//!
//! Upstream: ggml/src/ggml-quants.c @ 8337e4cd (same function names; `ggml_vec_dot_q2_K_q8_K` generic tail).
//!
//! Block layouts (byte offsets):
//! * Q2_K: scales[16] @0, qs[64] @16, d f16 @80, dmin f16 @82 (84 B)
//! * Q3_K: hmask[32] @0, qs[64] @32, scales[12] @96, d f16 @108 (110 B)
//!
//! vec_dot order: per super-block exact i32 sums `isum = Σ_k scale_k·Σ q·q8` (and `summs = Σ_k min_k·bsums_k`
//! for Q2_K), then `sumf += dall·isum − dmin·summs` with `dall = dy·dx`, `dmin = dy·dminx` (Q3_K:
//! `sumf += (dx·dy)·isum`), super-blocks in order, f32.

use super::common::{rd_f16, rows, sum_sq, wr_f16};
use super::q8::{q8k_bsum, q8k_d, q8k_q, Q8_K_BYTES};
use super::search::{make_q3_quants, make_qkx2_quants, make_qkx3_quants, make_qp_quants, make_qx_quants};
use crate::quant::convert::nearest_int;
use crate::quant::QType;

const QK_K: usize = 256;
pub const Q2_K_BYTES: usize = 84;
pub const Q3_K_BYTES: usize = 110;
const _: () = assert!(Q2_K_BYTES == QType::Q2_K.traits().type_size);
const _: () = assert!(Q3_K_BYTES == QType::Q3_K.traits().type_size);

/// C32 packing of 256 2-bit levels into 64 bytes: byte `32h + l` holds weights `128h + l + 32t` at bits 2t.
pub fn pack_c32(l: &[u8; QK_K], qs: &mut [u8]) {
    for h in 0..2 {
        for i in 0..32 {
            let e = 128 * h + i;
            qs[32 * h + i] = l[e] | (l[e + 32] << 2) | (l[e + 64] << 4) | (l[e + 96] << 6);
        }
    }
}

/// Low 2 bits of weight `e` in C32 packing.
#[inline]
pub fn c32_at(qs: &[u8], e: usize) -> u8 {
    (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3
}

// ---------------------------------------------------------------- Q2_K

pub fn dequantize_q2_k(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q2_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let (d, min) = (rd_f16(b, 80), rd_f16(b, 82));
        for k in 0..16 {
            let sc = b[k];
            let dl = d * (sc & 15) as f32;
            let ml = min * (sc >> 4) as f32;
            for e in 16 * k..16 * k + 16 {
                y[e] = dl * c32_at(&b[16..80], e) as f32 - ml;
            }
        }
    }
}

/// Re-quantize with the stored (f16-rounded) scales; sub-blocks whose scale is 0 keep their search levels.
fn q2k_requant(x: &[f32], b: &[u8], l: &mut [u8; QK_K]) {
    let (d, dmin) = (rd_f16(b, 80), rd_f16(b, 82));
    for j in 0..16 {
        let dl = d * (b[j] & 15) as f32;
        if dl == 0.0 {
            continue;
        }
        let dm = dmin * (b[j] >> 4) as f32;
        for i in 16 * j..16 * j + 16 {
            l[i] = nearest_int((x[i] + dm) / dl).clamp(0, 3) as u8;
        }
    }
}

/// `quantize_row_q2_K_ref` over `x` (all rows at once, like the reference, because the TriNet check looks at
/// the whole chunk).
fn quantize_q2_k_ref(x: &[f32], y: &mut [u8]) {
    // TriNet detection: the whole chunk is ternary up to <10 % relative squared error.
    let max = x.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
    let (mut mse0, mut mse) = (0.0f32, 0.0f32);
    let tern = |v: f32| {
        if v < -0.5 * max {
            -1i32
        } else if v < 0.5 * max {
            0
        } else {
            1
        }
    };
    for &v in x {
        mse0 += v * v;
        let diff = v - max * tern(v) as f32;
        mse += diff * diff;
    }
    if mse < 0.1 * mse0 {
        for (xb, b) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q2_K_BYTES)) {
            wr_f16(b, 80, max);
            wr_f16(b, 82, max);
            b[..16].fill(0x11); // scale 1, min 1: y = max·q − max with q ∈ {0, 1, 2}
            let mut l = [0u8; QK_K];
            for (li, &v) in l.iter_mut().zip(xb) {
                *li = (tern(v) + 1) as u8;
            }
            pack_c32(&l, &mut b[16..80]);
        }
        return;
    }
    // why 15: 4-bit sub-block scales and mins
    let q4scale = 15.0f32;
    for (xb, b) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q2_K_BYTES)) {
        let mut l = [0u8; QK_K];
        let (mut scales, mut mins) = ([0.0f32; 16], [0.0f32; 16]);
        let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
        for j in 0..16 {
            let xs = &xb[16 * j..16 * j + 16];
            let w: [f32; 16] = core::array::from_fn(|i| xs[i].abs());
            // why -0.5/0.1/15 and MAD: the reference's Q2_K search grid and error metric
            (scales[j], mins[j]) = make_qkx2_quants(xs, 3, &w, &mut l[16 * j..], -0.5, 0.1, 15, true);
            max_scale = if scales[j] > max_scale { scales[j] } else { max_scale };
            max_min = if mins[j] > max_min { mins[j] } else { max_min };
        }
        if max_scale > 0.0 {
            let iscale = q4scale / max_scale;
            for j in 0..16 {
                b[j] = nearest_int(iscale * scales[j]) as u8;
            }
            wr_f16(b, 80, max_scale / q4scale);
        } else {
            b[..16].fill(0);
            wr_f16(b, 80, 0.0);
        }
        if max_min > 0.0 {
            let iscale = q4scale / max_min;
            for j in 0..16 {
                b[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
            }
            wr_f16(b, 82, max_min / q4scale);
        } else {
            wr_f16(b, 82, 0.0);
        }
        q2k_requant(xb, b, &mut l);
        pack_c32(&l, &mut b[16..80]);
    }
}

/// `quantize_row_q2_K_impl` (imatrix path) on one row.
fn quantize_row_q2_k_impl(x: &[f32], y: &mut [u8], qw: &[f32]) {
    for (i, (xb, b)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q2_K_BYTES)).enumerate() {
        // why 0.75: the reference's σ² scaling for Q2_K importance weights
        let sigma2 = 0.75 * sum_sq(xb) / QK_K as f32;
        let mut l = [0u8; QK_K];
        let (mut scales, mut mins, mut sw) = ([0.0f32; 16], [0.0f32; 16], [0.0f32; 16]);
        for j in 0..16 {
            let xs = &xb[16 * j..16 * j + 16];
            let q = &qw[QK_K * i + 16 * j..];
            let w: [f32; 16] = core::array::from_fn(|k| q[k] * (sigma2 + xs[k] * xs[k]).sqrt());
            sw[j] = w.iter().fold(0.0f32, |s, &v| s + v);
            (scales[j], mins[j]) = make_qkx3_quants(xs, 3, Some(&w), &mut l[16 * j..], -0.9, 0.05, 36, false);
        }
        let (mut ls, mut lm) = ([0u8; 16], [0u8; 16]);
        let dm = make_qp_quants(&scales, 15, &mut ls, &sw);
        let mm = make_qp_quants(&mins, 15, &mut lm, &sw);
        wr_f16(b, 80, dm);
        wr_f16(b, 82, mm);
        for j in 0..16 {
            let d = dm * ls[j] as f32;
            let m = mm * lm[j] as f32;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            for k in 16 * j..16 * j + 16 {
                l[k] = nearest_int((xb[k] + m) * id).clamp(0, 3) as u8;
            }
            b[j] = ls[j] | (lm[j] << 4);
        }
        pack_c32(&l, &mut b[16..80]);
    }
}

pub fn quantize_q2_k(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let row_bytes = ne0 / QK_K * Q2_K_BYTES;
    match imatrix {
        None => quantize_q2_k_ref(src, dst),
        Some(qw) => {
            for (x, y) in rows(src, dst, ne0, row_bytes) {
                quantize_row_q2_k_impl(x, y, qw);
            }
        }
    }
}

pub fn vec_dot_q2_k_q8_k(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(Q2_K_BYTES).zip(y.chunks_exact(Q8_K_BYTES)).take(n / QK_K) {
        let (mut summs, mut isum) = (0i32, 0i32);
        for k in 0..16 {
            summs += (bx[k] >> 4) as i32 * q8k_bsum(by, k);
            let s: i32 = (16 * k..16 * k + 16).map(|e| c32_at(&bx[16..80], e) as i32 * q8k_q(by, e)).sum();
            isum += (bx[k] & 15) as i32 * s;
        }
        let dall = q8k_d(by) * rd_f16(bx, 80);
        let dmin = q8k_d(by) * rd_f16(bx, 82);
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

// ---------------------------------------------------------------- Q3_K

/// The 16 signed 6-bit scales `s_k` (−32…31) of a Q3_K block.
fn q3k_scales(sc: &[u8]) -> [i32; 16] {
    core::array::from_fn(|k| {
        let low = if k < 8 { sc[k] & 15 } else { sc[k - 8] >> 4 };
        let high = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
        (low | (high << 4)) as i32 - 32
    })
}

/// 3-bit signed level (−4…3) of weight `e`.
#[inline]
fn q3k_at(b: &[u8], e: usize) -> i32 {
    let hb = (b[e % 32] >> (e / 32)) & 1;
    c32_at(&b[32..96], e) as i32 - if hb != 0 { 0 } else { 4 }
}

pub fn dequantize_q3_k(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q3_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d_all = rd_f16(b, 108);
        let s = q3k_scales(&b[96..108]);
        for k in 0..16 {
            let dl = d_all * s[k] as f32;
            for e in 16 * k..16 * k + 16 {
                y[e] = dl * q3k_at(b, e) as f32;
            }
        }
    }
}

/// Store biased 6-bit scales `ls[j]` (0…63), then re-quantize with them and pack hmask/qs.
fn q3k_finish(xb: &[f32], b: &mut [u8], ls: &[i32; 16], l: &mut [i8; QK_K]) {
    b[96..108].fill(0);
    for (j, &v) in ls.iter().enumerate() {
        let v = v as u8;
        if j < 8 {
            b[96 + j] = v & 15;
        } else {
            b[96 + j - 8] |= (v & 15) << 4;
        }
        b[96 + 8 + j % 4] |= (v >> 4) << (2 * (j / 4));
    }
    let d = rd_f16(b, 108);
    let s = q3k_scales(&b[96..108]);
    for j in 0..16 {
        let dl = d * s[j] as f32;
        if dl == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            l[i] = (nearest_int(xb[i] / dl).clamp(-4, 3) + 4) as i8;
        }
    }
    b[..32].fill(0);
    let mut lo = [0u8; QK_K];
    for (e, &v) in l.iter().enumerate() {
        let mut v = v as u8;
        if v > 3 {
            b[e % 32] |= 1 << (e / 32);
            v -= 4;
        }
        lo[e] = v;
    }
    pack_c32(&lo, &mut b[32..96]);
}

/// `quantize_row_q3_K_ref` on one row.
fn quantize_row_q3_k_ref(x: &[f32], y: &mut [u8]) {
    for (xb, b) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q3_K_BYTES)) {
        let mut l = [0i8; QK_K];
        let mut scales = [0.0f32; 16];
        let (mut amax, mut max_scale) = (0.0f32, 0.0f32);
        for j in 0..16 {
            scales[j] = make_q3_quants(&xb[16 * j..16 * j + 16], 4, &mut l[16 * j..], true);
            if scales[j].abs() > amax {
                amax = scales[j].abs();
                max_scale = scales[j];
            }
        }
        let mut ls = [0i32; 16];
        if max_scale != 0.0 {
            // why −32: the largest-magnitude scale maps to the most negative 6-bit value
            let iscale = -32.0 / max_scale;
            for j in 0..16 {
                ls[j] = (nearest_int(iscale * scales[j]) as i8 as i32).clamp(-32, 31) + 32;
            }
            wr_f16(b, 108, 1.0 / iscale);
        } else {
            wr_f16(b, 108, 0.0);
        }
        q3k_finish(xb, b, &ls, &mut l);
    }
}

/// `quantize_row_q3_K_impl` (imatrix path) on one row.
fn quantize_row_q3_k_impl(x: &[f32], y: &mut [u8], qw: &[f32]) {
    for (i, (xb, b)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q3_K_BYTES)).enumerate() {
        let sigma2 = 2.0 * sum_sq(xb) / QK_K as f32;
        let mut l = [0i8; QK_K];
        let (mut scales, mut sw) = ([0.0f32; 16], [0.0f32; 16]);
        for j in 0..16 {
            let xs = &xb[16 * j..16 * j + 16];
            let q = &qw[QK_K * i + 16 * j..];
            let w: [f32; 16] = core::array::from_fn(|k| q[k] * (sigma2 + xs[k] * xs[k]).sqrt());
            sw[j] = w.iter().fold(0.0f32, |s, &v| s + v);
            scales[j] = make_qx_quants(xs, 4, &mut l[16 * j..], 1, Some(&w));
        }
        let mut lsb = [0i8; 16];
        let d_block = make_qx_quants(&scales, 32, &mut lsb, 1, Some(&sw));
        wr_f16(b, 108, d_block);
        q3k_finish(xb, b, &lsb.map(|v| v as i32), &mut l);
    }
}

pub fn quantize_q3_k(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let row_bytes = ne0 / QK_K * Q3_K_BYTES;
    for (x, y) in rows(src, dst, ne0, row_bytes) {
        match imatrix {
            None => quantize_row_q3_k_ref(x, y),
            Some(qw) => quantize_row_q3_k_impl(x, y, qw),
        }
    }
}

pub fn vec_dot_q3_k_q8_k(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(Q3_K_BYTES).zip(y.chunks_exact(Q8_K_BYTES)).take(n / QK_K) {
        let s = q3k_scales(&bx[96..108]);
        let mut isum = 0i32;
        for k in 0..16 {
            let p: i32 = (16 * k..16 * k + 16).map(|e| q3k_at(bx, e) * q8k_q(by, e)).sum();
            isum += s[k] * p;
        }
        sumf += (rd_f16(bx, 108) * q8k_d(by)) * isum as f32;
    }
    sumf
}
