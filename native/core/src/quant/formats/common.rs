//! Small helpers shared by the basic format modules: little-endian scalar fields, row iteration, the N16
//! nibble packing (spec/quants.md §1.2, §1.5).

use crate::quant::convert::{f16_to_f32, f32_to_f16};

#[inline]
pub fn rd_f16(b: &[u8], off: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[off], b[off + 1]]))
}

#[inline]
pub fn wr_f16(b: &mut [u8], off: usize, v: f32) {
    b[off..off + 2].copy_from_slice(&f32_to_f16(v).to_le_bytes());
}

#[inline]
pub fn rd_f32(b: &[u8], off: usize) -> f32 {
    f32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[inline]
pub fn wr_f32(b: &mut [u8], off: usize, v: f32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[inline]
pub fn rd_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[inline]
pub fn rd_i16(b: &[u8], off: usize) -> i16 {
    i16::from_le_bytes([b[off], b[off + 1]])
}

/// Split `src` (k·ne0 floats) and `dst` (k rows of `row_bytes`) into row pairs.
#[inline]
pub fn rows<'a>(src: &'a [f32], dst: &'a mut [u8], ne0: usize, row_bytes: usize) -> impl Iterator<Item = (&'a [f32], &'a mut [u8])> {
    debug_assert!(ne0 > 0 && src.len() % ne0 == 0 && dst.len() >= src.len() / ne0 * row_bytes);
    src.chunks_exact(ne0).zip(dst.chunks_exact_mut(row_bytes))
}

/// N16 packing: byte j holds level j (low nibble) and level j+16 (high nibble).
#[inline]
pub fn pack_n16(levels: &[u8], qs: &mut [u8]) {
    for j in 0..16 {
        qs[j] = (levels[j] & 15) | ((levels[j + 16] & 15) << 4);
    }
}

/// Unpack N16 nibbles into 32 levels (0…15).
#[inline]
pub fn unpack_n16(qs: &[u8]) -> [u8; 32] {
    let mut q = [0u8; 32];
    for j in 0..16 {
        q[j] = qs[j] & 15;
        q[j + 16] = qs[j] >> 4;
    }
    q
}

/// Σ x·w over a row, f32 left to right (the reference's `sum_x2` loops when `w == x`).
#[inline]
pub fn sum_sq(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |s, &v| s + v * v)
}
