//! Legacy 32-weight types Q4_0, Q4_1, Q5_0, Q5_1 (spec/quants.md §4.3–§4.6): dequantize, the reference
//! quantizers (`quantize_row_q4_0_ref` … bit-exact) and the imatrix paths, scalar vec_dot with Q8_0 / Q8_1.
//!
//! Upstream: ggml/src/ggml-quants.c @ 8337e4cd (`quantize_row_q4_0_ref`, `quantize_row_q4_0_impl`,
//! `dequantize_row_q4_0`, … and the generic `ggml_vec_dot_q4_0_q8_0` tails).
//!
//! Block layouts (byte offsets):
//! * Q4_0: d f16 @0, qs[16] @2 (18 B)        * Q4_1: d f16 @0, m f16 @2, qs[16] @4 (20 B)
//! * Q5_0: d f16 @0, qh u32 @2, qs[16] @6 (22 B)  * Q5_1: d f16 @0, m f16 @2, qh u32 @4, qs[16] @8 (24 B)
//!
//! vec_dot order: per block an exact i32 `sumi = Σ q·y`, then `sumf += (dx·dy)·sumi` (+ `mx·sy` for the
//! affine types against Q8_1), blocks in order, f32 accumulation.

use super::common::{pack_n16, rd_f16, rd_u32, rows, sum_sq, unpack_n16, wr_f16};
use super::q8::{Q8_0_BYTES, Q8_1_BYTES};
use super::search::{make_qkx3_quants, make_qx_quants};
use crate::quant::QType;

pub const QK: usize = 32;
pub const Q4_0_BYTES: usize = 18;
pub const Q4_1_BYTES: usize = 20;
pub const Q5_0_BYTES: usize = 22;
pub const Q5_1_BYTES: usize = 24;
const _: () = assert!(Q4_0_BYTES == QType::Q4_0.traits().type_size);
const _: () = assert!(Q4_1_BYTES == QType::Q4_1.traits().type_size);
const _: () = assert!(Q5_0_BYTES == QType::Q5_0.traits().type_size);
const _: () = assert!(Q5_1_BYTES == QType::Q5_1.traits().type_size);

/// Signed value of largest magnitude (first one wins), the reference's `amax < |v|` scan.
#[inline]
fn signed_absmax(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

#[inline]
fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// C `MIN(cap, (int8_t)v)` stored to `uint8_t`: truncation toward zero, then the int8 → u8 wrap.
#[inline]
fn trunc_level(v: f32, cap: i32) -> u8 {
    ((v as i8) as i32).min(cap) as u8
}

/// 5-bit levels → (qs nibbles, qh bits).
#[inline]
fn pack_5bit(levels: &[u8; 32], qs: &mut [u8]) -> u32 {
    pack_n16(levels, qs);
    let mut qh = 0u32;
    for j in 0..16 {
        qh |= ((levels[j] as u32 & 0x10) >> 4) << j;
        qh |= ((levels[j + 16] as u32 & 0x10) >> 4) << (j + 16);
    }
    qh
}

#[inline]
fn unpack_5bit(qs: &[u8], qh: u32) -> [u8; 32] {
    let mut q = unpack_n16(qs);
    for j in 0..16 {
        q[j] |= (((qh >> j) << 4) & 0x10) as u8;
        q[j + 16] |= ((qh >> (j + 12)) & 0x10) as u8;
    }
    q
}

/// Importance weights of the legacy imatrix paths: `qw_j · sqrt(σ² + x_j²)`, σ² = Σx²/ne0 over the row. The
/// reference build computes `σ² + x²` as one FMA (GCC contraction under `-march=native`), so do we.
#[inline]
fn legacy_weights(xb: &[f32], qw: &[f32], sigma2: f32) -> [f32; QK] {
    let mut w = [0.0f32; QK];
    for j in 0..QK {
        w[j] = qw[j] * xb[j].mul_add(xb[j], sigma2).sqrt();
    }
    w
}

// ---------------------------------------------------------------- Q4_0

pub fn dequantize_q4_0(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q4_0_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = rd_f16(b, 0);
        for (yi, q) in y.iter_mut().zip(unpack_n16(&b[2..18])) {
            *yi = (q as i32 - 8) as f32 * d;
        }
    }
}

/// `quantize_row_q4_0_ref` on one row (bit-exact, §4.3).
pub fn quantize_row_q4_0_ref(x: &[f32], y: &mut [u8]) {
    for (xb, b) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q4_0_BYTES)) {
        let d = signed_absmax(xb) / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        wr_f16(b, 0, d);
        let mut l = [0u8; QK];
        for j in 0..QK {
            // why 8.5: offset 8 plus 0.5 so that truncation rounds half up (reference rounding)
            l[j] = trunc_level(xb[j].mul_add(id, 8.5), 15);
        }
        pack_n16(&l, &mut b[2..18]);
    }
}

pub fn quantize_q4_0(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let row_bytes = ne0 / QK * Q4_0_BYTES;
    for (x, y) in rows(src, dst, ne0, row_bytes) {
        let Some(qw) = imatrix else {
            quantize_row_q4_0_ref(x, y);
            continue;
        };
        let sigma2 = sum_sq(x) / ne0 as f32;
        for (ib, (xb, b)) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q4_0_BYTES)).enumerate() {
            let w = legacy_weights(xb, &qw[QK * ib..], sigma2);
            let mut l = [0i8; QK];
            let d = make_qx_quants(xb, 8, &mut l, 1, Some(&w));
            wr_f16(b, 0, d);
            pack_n16(&l.map(|v| v as u8), &mut b[2..18]);
        }
    }
}

pub fn vec_dot_q4_0_q8_0(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(Q4_0_BYTES).zip(y.chunks_exact(Q8_0_BYTES)).take(n / QK) {
        let q = unpack_n16(&bx[2..18]);
        let sumi: i32 = (0..QK).map(|j| (q[j] as i32 - 8) * by[2 + j] as i8 as i32).sum();
        sumf += (rd_f16(bx, 0) * rd_f16(by, 0)) * sumi as f32;
    }
    sumf
}

// ---------------------------------------------------------------- Q4_1

pub fn dequantize_q4_1(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q4_1_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let (d, m) = (rd_f16(b, 0), rd_f16(b, 2));
        for (yi, q) in y.iter_mut().zip(unpack_n16(&b[4..20])) {
            *yi = q as f32 * d + m;
        }
    }
}

/// `quantize_row_q4_1_ref` on one row (bit-exact, §4.4).
pub fn quantize_row_q4_1_ref(x: &[f32], y: &mut [u8]) {
    for (xb, b) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q4_1_BYTES)) {
        let (min, max) = min_max(xb);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        wr_f16(b, 0, d);
        wr_f16(b, 2, min);
        let mut l = [0u8; QK];
        for j in 0..QK {
            l[j] = trunc_level((xb[j] - min).mul_add(id, 0.5), 15);
        }
        pack_n16(&l, &mut b[4..20]);
    }
}

pub fn quantize_q4_1(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let row_bytes = ne0 / QK * Q4_1_BYTES;
    for (x, y) in rows(src, dst, ne0, row_bytes) {
        let Some(qw) = imatrix else {
            quantize_row_q4_1_ref(x, y);
            continue;
        };
        let sigma2 = sum_sq(x) / ne0 as f32;
        for (ib, (xb, b)) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q4_1_BYTES)).enumerate() {
            let w = legacy_weights(xb, &qw[QK * ib..], sigma2);
            let mut l = [0u8; QK];
            // why -0.9/0.05/36: the reference's imatrix search grid for affine 4/5-bit levels (§13.2)
            let (d, the_min) = make_qkx3_quants(xb, 15, Some(&w), &mut l, -0.9, 0.05, 36, false);
            wr_f16(b, 0, d);
            wr_f16(b, 2, -the_min);
            pack_n16(&l, &mut b[4..20]);
        }
    }
}

pub fn vec_dot_q4_1_q8_1(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(Q4_1_BYTES).zip(y.chunks_exact(Q8_1_BYTES)).take(n / QK) {
        let q = unpack_n16(&bx[4..20]);
        let sumi: i32 = (0..QK).map(|j| q[j] as i32 * by[4 + j] as i8 as i32).sum();
        sumf += (rd_f16(bx, 0) * rd_f16(by, 0)) * sumi as f32 + rd_f16(bx, 2) * rd_f16(by, 2);
    }
    sumf
}

// ---------------------------------------------------------------- Q5_0

/// The 32 unsigned levels (0..31) of one Q5_0 block.
pub fn unpack_q5_0(b: &[u8]) -> [u8; 32] {
    unpack_5bit(&b[6..22], rd_u32(b, 2))
}

pub fn dequantize_q5_0(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q5_0_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = rd_f16(b, 0);
        for (yi, q) in y.iter_mut().zip(unpack_q5_0(b)) {
            *yi = (q as i32 - 16) as f32 * d;
        }
    }
}

/// `quantize_row_q5_0_ref` on one row (bit-exact, §4.5).
pub fn quantize_row_q5_0_ref(x: &[f32], y: &mut [u8]) {
    for (xb, b) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q5_0_BYTES)) {
        let d = signed_absmax(xb) / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        wr_f16(b, 0, d);
        let mut l = [0u8; QK];
        for j in 0..QK {
            l[j] = trunc_level(xb[j].mul_add(id, 16.5), 31);
        }
        let qh = pack_5bit(&l, &mut b[6..22]);
        b[2..6].copy_from_slice(&qh.to_le_bytes());
    }
}

pub fn quantize_q5_0(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let row_bytes = ne0 / QK * Q5_0_BYTES;
    for (x, y) in rows(src, dst, ne0, row_bytes) {
        let Some(qw) = imatrix else {
            quantize_row_q5_0_ref(x, y);
            continue;
        };
        let sigma2 = sum_sq(x) / ne0 as f32;
        for (ib, (xb, b)) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q5_0_BYTES)).enumerate() {
            let w = legacy_weights(xb, &qw[QK * ib..], sigma2);
            let mut l = [0i8; QK];
            let d = make_qx_quants(xb, 16, &mut l, 1, Some(&w));
            wr_f16(b, 0, d);
            let qh = pack_5bit(&l.map(|v| v as u8), &mut b[6..22]);
            b[2..6].copy_from_slice(&qh.to_le_bytes());
        }
    }
}

pub fn vec_dot_q5_0_q8_0(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(Q5_0_BYTES).zip(y.chunks_exact(Q8_0_BYTES)).take(n / QK) {
        let q = unpack_q5_0(bx);
        let sumi: i32 = (0..QK).map(|j| (q[j] as i32 - 16) * by[2 + j] as i8 as i32).sum();
        sumf += (rd_f16(bx, 0) * rd_f16(by, 0)) * sumi as f32;
    }
    sumf
}

// ---------------------------------------------------------------- Q5_1

/// The 32 unsigned levels (0..31) of one Q5_1 block.
pub fn unpack_q5_1(b: &[u8]) -> [u8; 32] {
    unpack_5bit(&b[8..24], rd_u32(b, 4))
}

pub fn dequantize_q5_1(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(Q5_1_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let (d, m) = (rd_f16(b, 0), rd_f16(b, 2));
        for (yi, q) in y.iter_mut().zip(unpack_q5_1(b)) {
            *yi = q as f32 * d + m;
        }
    }
}

/// `quantize_row_q5_1_ref` on one row (bit-exact, §4.6; no clamp, C float → uint8 conversion).
pub fn quantize_row_q5_1_ref(x: &[f32], y: &mut [u8]) {
    for (xb, b) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q5_1_BYTES)) {
        let (min, max) = min_max(xb);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        wr_f16(b, 0, d);
        wr_f16(b, 2, min);
        let mut l = [0u8; QK];
        for j in 0..QK {
            l[j] = (xb[j] - min).mul_add(id, 0.5) as u8;
        }
        let qh = pack_5bit(&l, &mut b[8..24]);
        b[4..8].copy_from_slice(&qh.to_le_bytes());
    }
}

pub fn quantize_q5_1(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let row_bytes = ne0 / QK * Q5_1_BYTES;
    for (x, y) in rows(src, dst, ne0, row_bytes) {
        let Some(qw) = imatrix else {
            quantize_row_q5_1_ref(x, y);
            continue;
        };
        let sigma2 = sum_sq(x) / ne0 as f32;
        for (ib, (xb, b)) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q5_1_BYTES)).enumerate() {
            let w = legacy_weights(xb, &qw[QK * ib..], sigma2);
            let mut l = [0u8; QK];
            let (d, the_min) = make_qkx3_quants(xb, 31, Some(&w), &mut l, -0.9, 0.05, 36, false);
            wr_f16(b, 0, d);
            wr_f16(b, 2, -the_min);
            let qh = pack_5bit(&l, &mut b[8..24]);
            b[4..8].copy_from_slice(&qh.to_le_bytes());
        }
    }
}

pub fn vec_dot_q5_1_q8_1(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(Q5_1_BYTES).zip(y.chunks_exact(Q8_1_BYTES)).take(n / QK) {
        let q = unpack_q5_1(bx);
        let sumi: i32 = (0..QK).map(|j| q[j] as i32 * by[4 + j] as i8 as i32).sum();
        sumf += (rd_f16(bx, 0) * rd_f16(by, 0)) * sumi as f32 + rd_f16(bx, 2) * rd_f16(by, 2);
    }
    sumf
}
