//! Plain float types F32, F16, BF16 (spec/quants.md §4.1): conversions and scalar dot products.
//!
//! Upstream @ 8337e4cd: ggml/src/ggml.c (`ggml_vec_dot_f32/f16/bf16` scalar paths, `ggml_fp32_to_fp16_row`,
//! `ggml_fp32_to_bf16_row_ref`), ggml/src/ggml-impl.h (conversions, in quant/convert.rs).
//!
//! vec_dot order: each product in f32 (after exact widening), accumulated in f64 in element order
//! (`ggml_float`), rounded to f32 once at the end.

use crate::quant::convert::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use crate::quant::QType;

const _: () = assert!(QType::F32.traits().type_size == 4);
const _: () = assert!(QType::F16.traits().type_size == 2);
const _: () = assert!(QType::BF16.traits().type_size == 2);

#[inline]
fn halves(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]))
}

pub fn dequantize_f32(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (y, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *y = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

pub fn quantize_f32(src: &[f32], dst: &mut [u8], _ne0: usize, _imatrix: Option<&[f32]>) {
    for (c, &x) in dst.chunks_exact_mut(4).zip(src) {
        c.copy_from_slice(&x.to_le_bytes());
    }
}

pub fn vec_dot_f32(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let f = |c: &[u8]| f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    let mut s = 0.0f64;
    for (a, b) in x.chunks_exact(4).zip(y.chunks_exact(4)).take(n) {
        s += (f(a) * f(b)) as f64;
    }
    s as f32
}

pub fn dequantize_f16(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (y, h) in dst.iter_mut().zip(halves(src)) {
        *y = f16_to_f32(h);
    }
}

pub fn quantize_f16(src: &[f32], dst: &mut [u8], _ne0: usize, _imatrix: Option<&[f32]>) {
    for (c, &x) in dst.chunks_exact_mut(2).zip(src) {
        c.copy_from_slice(&f32_to_f16(x).to_le_bytes());
    }
}

pub fn vec_dot_f16(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut s = 0.0f64;
    for (a, b) in halves(x).zip(halves(y)).take(n) {
        s += (f16_to_f32(a) * f16_to_f32(b)) as f64;
    }
    s as f32
}

pub fn dequantize_bf16(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (y, h) in dst.iter_mut().zip(halves(src)) {
        *y = bf16_to_f32(h);
    }
}

/// Round-to-nearest-even with the NaN rule (§1.3).
pub fn quantize_bf16(src: &[f32], dst: &mut [u8], _ne0: usize, _imatrix: Option<&[f32]>) {
    for (c, &x) in dst.chunks_exact_mut(2).zip(src) {
        c.copy_from_slice(&f32_to_bf16(x).to_le_bytes());
    }
}

pub fn vec_dot_bf16(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut s = 0.0f64;
    for (a, b) in halves(x).zip(halves(y)).take(n) {
        s += (bf16_to_f32(a) * bf16_to_f32(b)) as f64;
    }
    s as f32
}
