//! Q6_0, Q8_0 and the activation types Q8_1 and Q8_K (spec/quants.md §4.7–§4.9, §5.6, §9).
//!
//! Upstream @ 8337e4cd: ggml/src/ggml-quants.c (`quantize_row_q6_0_ref`, `quantize_row_q6_0_impl`,
//! `quantize_row_q8_0_ref`, `quantize_row_q8_1_ref`, `quantize_row_q8_K_ref`, dequantizers),
//! ggml/src/iqk/iqk_quantize.cpp (`iqk_quantize_row_q8_K_T`: the ik `sum` field), ggml/src/ggml-common.h.
//!
//! Block layouts (byte offsets):
//! * Q6_0: d f16 @0, qh[8] @2, qs[16] @10 (26 B)   * Q8_0: d f16 @0, qs i8[32] @2 (34 B)
//! * Q8_1: d f16 @0, s f16 @2, qs i8[32] @4 (36 B)
//! * Q8_K: d f32 @0, sum f32 @4, qs i8[256] @8, bsums i16[16] @264 (296 B, ik layout)
//!
//! vec_dot order (Q6_0, Q8_0 with Q8_0): per block exact i32 `sumi`, `sumf += (dx·dy)·sumi`, f32, in order.

use super::common::{pack_n16, rd_f16, rd_f32, rd_i16, rows, sum_sq, unpack_n16, wr_f16, wr_f32};
use super::search::make_qx_quants;
use crate::quant::convert::nearest_int;
use crate::quant::QType;

const QK: usize = 32;
const QK_K: usize = 256;
pub const Q6_0_BYTES: usize = 26;
pub const Q8_0_BYTES: usize = 34;
pub const Q8_1_BYTES: usize = 36;
pub const Q8_K_BYTES: usize = 296;
const _: () = assert!(Q6_0_BYTES == QType::Q6_0.traits().type_size);
const _: () = assert!(Q8_0_BYTES == QType::Q8_0.traits().type_size);
const _: () = assert!(Q8_1_BYTES == QType::Q8_1.traits().type_size);
const _: () = assert!(Q8_K_BYTES == QType::Q8_K.traits().type_size);
/// Q8_K field offsets.
pub const Q8K_SUM: usize = 4;
pub const Q8K_QS: usize = 8;
pub const Q8K_BSUMS: usize = 264;

// ---------------------------------------------------------------- Q6_0

/// The 32 unsigned levels (0..63) of one Q6_0 block.
pub fn unpack_q6_0(b: &[u8]) -> [u8; 32] {
    let mut q = unpack_n16(&b[10..26]);
    for j in 0..16 {
        let h = b[2 + j % 8] >> (4 * (j / 8));
        q[j] |= (h << 4) & 0x30;
        q[j + 16] |= (h << 2) & 0x30;
    }
    q
}

fn pack_q6_0(l: &[u8; 32], b: &mut [u8]) {
    pack_n16(l, &mut b[10..26]);
    b[2..10].fill(0);
    for j in 0..16 {
        let h = (l[j] >> 4) | ((l[j + 16] >> 4) << 2);
        b[2 + j % 8] |= h << (4 * (j / 8));
    }
}

pub fn dequantize_q6_0(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q6_0_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = rd_f16(b, 0);
        for (yi, q) in y.iter_mut().zip(unpack_q6_0(b)) {
            *yi = (q as i32 - 32) as f32 * d;
        }
    }
}

/// `quantize_row_q6_0_ref` (activation / online path, §4.7): trunc rounding, then a weighted LS refit of d.
#[allow(dead_code)] // the activation-path twin of the file quantizer, kept as spec (§4.7)
pub fn quantize_row_q6_0_ref(x: &[f32], y: &mut [u8]) {
    for (xb, b) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q6_0_BYTES)) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in xb {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -32.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut l = [0u8; QK];
        let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
        for j in 0..16 {
            let (x0, x1) = (xb[j] * id, xb[j + 16] * id);
            let (w0, w1) = (x0 * x0, x1 * x1);
            l[j] = ((x0 + 32.5) as i8 as i32).min(63) as u8;
            l[j + 16] = ((x1 + 32.5) as i8 as i32).min(63) as u8;
            let (q0, q1) = (l[j] as f32 - 32.0, l[j + 16] as f32 - 32.0);
            sumqx += w0 * xb[j] * q0 + w1 * xb[j + 16] * q1;
            sumq2 += w0 * q0 * q0 + w1 * q1 * q1;
        }
        pack_q6_0(&l, b);
        wr_f16(b, 0, if sumq2 > 0.0 { sumqx / sumq2 } else { d });
    }
}

/// File quantizer (`quantize_q6_0` → `quantize_row_q6_0_impl`, always the search path): `make_qx_quants`
/// with nmax 32, weights x² or `qw·sqrt(σ² + x²)`.
pub fn quantize_q6_0(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let row_bytes = ne0 / QK * Q6_0_BYTES;
    for (x, y) in rows(src, dst, ne0, row_bytes) {
        let sigma2 = if imatrix.is_some() { sum_sq(x) / ne0 as f32 } else { 0.0 };
        for (ib, (xb, b)) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q6_0_BYTES)).enumerate() {
            let mut w = [0.0f32; QK];
            for j in 0..QK {
                w[j] = match imatrix {
                    Some(qw) => qw[QK * ib + j] * xb[j].mul_add(xb[j], sigma2).sqrt(),
                    None => xb[j] * xb[j],
                };
            }
            let mut l = [0i8; QK];
            let d = make_qx_quants(xb, 32, &mut l, 1, Some(&w));
            wr_f16(b, 0, d);
            pack_q6_0(&l.map(|v| v as u8), b);
        }
    }
}

pub fn vec_dot_q6_0_q8_0(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(Q6_0_BYTES).zip(y.chunks_exact(Q8_0_BYTES)).take(n / QK) {
        let q = unpack_q6_0(bx);
        let sumi: i32 = (0..QK).map(|j| (q[j] as i32 - 32) * by[2 + j] as i8 as i32).sum();
        sumf += (rd_f16(bx, 0) * rd_f16(by, 0)) * sumi as f32;
    }
    sumf
}

// ---------------------------------------------------------------- Q8_0 (weight and activation)

pub fn dequantize_q8_0(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q8_0_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = rd_f16(b, 0);
        for (yi, &q) in y.iter_mut().zip(&b[2..34]) {
            *yi = (q as i8) as f32 * d;
        }
    }
}

/// `d = amax/127`, `qs = roundf(x/d)` (C `roundf`: half away from zero = Rust `f32::round`). Returns d.
fn q8_block(xb: &[f32], qs: &mut [u8]) -> f32 {
    let amax = xb.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    for (q, &v) in qs.iter_mut().zip(xb) {
        *q = (v * id).round() as i8 as u8;
    }
    d
}

/// `quantize_row_q8_0_ref` (bit-exact; the imatrix is ignored by the reference too).
pub fn quantize_q8_0(src: &[f32], dst: &mut [u8], ne0: usize, _imatrix: Option<&[f32]>) {
    for (x, y) in rows(src, dst, ne0, ne0 / QK * Q8_0_BYTES) {
        for (xb, b) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q8_0_BYTES)) {
            let d = q8_block(xb, &mut b[2..34]);
            wr_f16(b, 0, d);
        }
    }
}

pub fn vec_dot_q8_0_q8_0(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(Q8_0_BYTES).zip(y.chunks_exact(Q8_0_BYTES)).take(n / QK) {
        let sumi: i32 = (0..QK).map(|j| bx[2 + j] as i8 as i32 * by[2 + j] as i8 as i32).sum();
        sumf += (rd_f16(bx, 0) * rd_f16(by, 0)) * sumi as f32;
    }
    sumf
}

// ---------------------------------------------------------------- Q8_1 (activation)

pub fn dequantize_q8_1(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q8_1_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = rd_f16(b, 0);
        for (yi, &q) in y.iter_mut().zip(&b[4..36]) {
            *yi = (q as i8) as f32 * d;
        }
    }
}

/// `quantize_row_q8_1_ref`: as Q8_0 plus `s = f16(Σqs · d)`.
pub fn quantize_q8_1(src: &[f32], dst: &mut [u8], ne0: usize, _imatrix: Option<&[f32]>) {
    for (x, y) in rows(src, dst, ne0, ne0 / QK * Q8_1_BYTES) {
        for (xb, b) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q8_1_BYTES)) {
            let d = q8_block(xb, &mut b[4..36]);
            let sum: i32 = b[4..36].iter().map(|&q| q as i8 as i32).sum();
            wr_f16(b, 0, d);
            wr_f16(b, 2, sum as f32 * d);
        }
    }
}

// ---------------------------------------------------------------- Q8_K (activation)

pub fn dequantize_q8_k(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q8_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = rd_f32(b, 0);
        for (yi, &q) in y.iter_mut().zip(&b[Q8K_QS..Q8K_QS + QK_K]) {
            *yi = d * (q as i8) as f32;
        }
    }
}

/// `quantize_row_q8_K_ref` (`d = max/−127` with the signed max so the largest-magnitude weight maps to −127,
/// `bsums` per 16) plus ik's `sum = d·Σqs` as in `iqk_quantize_row_q8_K_T<0>`'s scalar path. All-zero blocks
/// are written as all-zero bytes.
pub fn quantize_q8_k(src: &[f32], dst: &mut [u8], ne0: usize, _imatrix: Option<&[f32]>) {
    for (x, y) in rows(src, dst, ne0, ne0 / QK_K * Q8_K_BYTES) {
        for (xb, b) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q8_K_BYTES)) {
            let (mut amax, mut max) = (0.0f32, 0.0f32);
            for &v in xb {
                if v.abs() > amax {
                    amax = v.abs();
                    max = v;
                }
            }
            if amax == 0.0 {
                b.fill(0);
                continue;
            }
            // why −127 (not −128): ik keeps |q| ≤ 127 so IQ2_XXS's AVX2 kernels can use sign tricks
            let iscale = -127.0 / max;
            for (q, &v) in b[Q8K_QS..Q8K_QS + QK_K].iter_mut().zip(xb) {
                *q = nearest_int(iscale * v).min(127) as i8 as u8;
            }
            let mut tot = 0i32;
            for k in 0..16 {
                let s: i32 = b[Q8K_QS + 16 * k..Q8K_QS + 16 * k + 16].iter().map(|&q| q as i8 as i32).sum();
                b[Q8K_BSUMS + 2 * k..Q8K_BSUMS + 2 * k + 2].copy_from_slice(&(s as i16).to_le_bytes());
                tot += s;
            }
            let d = 1.0 / iscale;
            wr_f32(b, 0, d);
            wr_f32(b, Q8K_SUM, d * tot as f32);
        }
    }
}

/// Q8_K block accessors for the K-quant dot products.
#[inline]
pub fn q8k_d(b: &[u8]) -> f32 {
    rd_f32(b, 0)
}
#[inline]
pub fn q8k_q(b: &[u8], i: usize) -> i32 {
    b[Q8K_QS + i] as i8 as i32
}
#[inline]
pub fn q8k_bsum(b: &[u8], k: usize) -> i32 {
    rd_i16(b, Q8K_BSUMS + 2 * k) as i32
}
