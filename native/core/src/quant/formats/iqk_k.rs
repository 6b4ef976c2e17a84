//! IQ2_K, IQ3_K, IQ4_K, IQ5_K, IQ6_K (spec/quants.md §6.1–6.5): block decoders (dequantize and Q8_K vec_dot
//! through `iqk_common`), IQ6_K's polynomial CPU dequantizer, and the IQ4_K / IQ5_K / IQ6_K file quantizers.
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`dequantize_row_iq{2,3,4,5,6}_k`,
//! `vec_dot_iq*_k_q8_k`, `quantize_row_iq4_k_impl_bs16`, `quantize_row_iq5_k_impl`, `quantize_row_iq6_k_impl`).
//!
//! Block layouts (byte offsets; every block starts with d f16 @0, extra u16 @2):
//! * IQ2_K:  scales[8] @4, qs[64] @12 (76 B)
//! * IQ3_K:  scales_h u16 @4, scales_l[8] @6, qs[64] @14, qh[32] @78 (110 B)
//! * IQ4_K:  scales_h[4] @4, scales_l[8] @8, qs[128] @16 (144 B)
//! * IQ5_K:  scales_h[4] @4, scales_l[8] @8, qs[128] @16, qh[32] @144 (176 B)
//! * IQ6_K:  scales i8[16] @4, qs[128] @20, qh[64] @148 (212 B)
//!
//! IQ6_K: ik has two dequantizers that differ (§6.5). `Format::dequantize` uses the table form
//! `(d·sc)·iq6nl_values[q + 64·shift]`, which the quantizer optimises against and every CPU matrix kernel and
//! CUDA kernel uses; [`dequantize_iq6_k_poly`] reproduces ggml's CPU `to_float` (cubic polynomial) bit for bit.

use super::common::{rd_f16, rows, wr_f16};
use super::iqk_common::{
    block_search, dequant_rows, f32_table, row_weights, sigma2_a, sigma2_b, vec_dot_rows, Levels, RowScale, IQ2NL, IQ3NL, IQ4K, IQ4K_HI,
    IQ4K_LO, IQ5NL, IQ6NL, QK_K,
};
use crate::quant::convert::nearest_int;
use crate::quant::QType;

pub const IQ2_K_BYTES: usize = 76;
pub const IQ3_K_BYTES: usize = 110;
pub const IQ4_K_BYTES: usize = 144;
pub const IQ5_K_BYTES: usize = 176;
pub const IQ6_K_BYTES: usize = 212;
const _: () = assert!(IQ2_K_BYTES == QType::IQ2_K.traits().type_size);
const _: () = assert!(IQ3_K_BYTES == QType::IQ3_K.traits().type_size);
const _: () = assert!(IQ4_K_BYTES == QType::IQ4_K.traits().type_size);
const _: () = assert!(IQ5_K_BYTES == QType::IQ5_K.traits().type_size);
const _: () = assert!(IQ6_K_BYTES == QType::IQ6_K.traits().type_size);

#[inline]
fn extra(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[2], b[3]])
}

/// 2-bit C32 index of weight `e` from a 64-byte `qs` (§1.5).
#[inline]
pub(super) fn c32(qs: &[u8], e: usize) -> u8 {
    let (b, p) = (e / 32, e % 32);
    (qs[32 * (b / 4) + p] >> (2 * (b % 4))) & 3
}

/// Low nibble of weight `e` in C64 packing (§1.5).
#[inline]
fn c64(qs: &[u8], e: usize) -> u8 {
    (qs[32 * (e / 64) + e % 32] >> (4 * ((e % 64) / 32))) & 15
}

/// The 6-bit scale of IQ4_K / IQ5_K sub-block `k` (`scales_h` @4, `scales_l` @8), minus 32.
#[inline]
fn sc6(b: &[u8], k: usize) -> i32 {
    let l = (b[8 + k / 2] >> (4 * (k % 2))) & 15;
    let h = (b[4 + k / 4] >> (2 * (k % 4))) & 3;
    (l | (h << 4)) as i32 - 32
}

// ---------------------------------------------------------------- decoders

fn decode_iq2_k(b: &[u8], v: &mut [i8; QK_K], sc: &mut [i32; 16]) -> Option<f32> {
    let ex = extra(b);
    for k in 0..16 {
        sc[k] = ((b[4 + k / 2] >> (4 * (k % 2))) & 15) as i32 - 8;
        let t = 4 * ((ex >> k) & 1) as usize;
        for e in 16 * k..16 * k + 16 {
            v[e] = IQ2NL[t + c32(&b[12..76], e) as usize];
        }
    }
    Some(rd_f16(b, 0))
}

fn decode_iq3_k(b: &[u8], v: &mut [i8; QK_K], sc: &mut [i32; 16]) -> Option<f32> {
    let (ex, sh) = (extra(b), u16::from_le_bytes([b[4], b[5]]));
    for k in 0..16 {
        let m = 2 * ((b[6 + k / 2] >> (4 * (k % 2))) & 15) as i32 + 1;
        sc[k] = if (sh >> k) & 1 != 0 { -m } else { m };
        let t = 8 * ((ex >> k) & 1) as usize;
        for e in 16 * k..16 * k + 16 {
            let h = (b[78 + e % 32] >> (e / 32)) & 1;
            v[e] = IQ3NL[t + (c32(&b[14..78], e) | (h << 2)) as usize];
        }
    }
    Some(rd_f16(b, 0))
}

fn decode_iq4_k(b: &[u8], v: &mut [i8; QK_K], sc: &mut [i32; 16]) -> Option<f32> {
    let ex = extra(b);
    for k in 0..16 {
        sc[k] = sc6(b, k);
        let t = 16 * ((ex >> k) & 1) as usize;
        for e in 16 * k..16 * k + 16 {
            let (bb, p) = (e / 32, e % 32);
            let q = (b[16 + 16 * bb + p % 16] >> (4 * (p / 16))) & 15;
            v[e] = IQ4K[t + q as usize];
        }
    }
    Some(rd_f16(b, 0))
}

fn decode_iq5_k(b: &[u8], v: &mut [i8; QK_K], sc: &mut [i32; 16]) -> Option<f32> {
    let ex = extra(b);
    for k in 0..16 {
        sc[k] = sc6(b, k);
        let t = 32 * ((ex >> k) & 1) as usize;
        for e in 16 * k..16 * k + 16 {
            let h = (b[144 + e % 32] >> (2 * (e / 64) + (e % 64) / 32)) & 1;
            v[e] = IQ5NL[t + (c64(&b[16..144], e) | (h << 4)) as usize];
        }
    }
    Some(rd_f16(b, 0))
}

/// IQ6_K 6-bit index of weight `e`.
#[inline]
fn q_iq6(b: &[u8], e: usize) -> usize {
    let c = e / 64;
    let h = (b[148 + 32 * (c / 2) + e % 32] >> (4 * (c % 2) + 2 * ((e % 64) / 32))) & 3;
    (c64(&b[20..148], e) | (h << 4)) as usize
}

fn decode_iq6_k(b: &[u8], v: &mut [i8; QK_K], sc: &mut [i32; 16]) -> Option<f32> {
    let ex = extra(b);
    for k in 0..16 {
        sc[k] = b[4 + k] as i8 as i32;
        let t = 64 * ((ex >> k) & 1) as usize;
        for e in 16 * k..16 * k + 16 {
            v[e] = IQ6NL[t + q_iq6(b, e)];
        }
    }
    Some(rd_f16(b, 0))
}

macro_rules! deq_dot {
    ($deq:ident, $dot:ident, $bytes:expr, $dec:ident) => {
        pub fn $deq(src: &[u8], dst: &mut [f32], ne0: usize) {
            dequant_rows(src, dst, ne0, RowScale::None, $bytes, $dec);
        }
        pub fn $dot(n: usize, x: &[u8], y: &[u8]) -> f32 {
            vec_dot_rows(n, x, y, RowScale::None, $bytes, $dec)
        }
    };
}
deq_dot!(dequantize_iq2_k, vec_dot_iq2_k_q8_k, IQ2_K_BYTES, decode_iq2_k);
deq_dot!(dequantize_iq3_k, vec_dot_iq3_k_q8_k, IQ3_K_BYTES, decode_iq3_k);
deq_dot!(dequantize_iq4_k, vec_dot_iq4_k_q8_k, IQ4_K_BYTES, decode_iq4_k);
deq_dot!(dequantize_iq5_k, vec_dot_iq5_k_q8_k, IQ5_K_BYTES, decode_iq5_k);
deq_dot!(dequantize_iq6_k, vec_dot_iq6_k_q8_k, IQ6_K_BYTES, decode_iq6_k);

/// ggml's CPU `to_float` of IQ6_K: `(d·sc)·(P(q) + shift)` with the cubic of §6.5 in Horner order, f32.
/// Not used for inference (see the file header); kept to reproduce `dequantize_row_iq6_k` bit for bit.
#[allow(dead_code)]
pub fn dequantize_iq6_k_poly(src: &[u8], dst: &mut [f32], _ne0: usize) {
    // The fitted cubic the IQ6 table was rounded from (§3.5): A + q·(B + q·(−C + q·D)).
    const A: f32 = -127.0;
    const B: f32 = 6.2568;
    const C: f32 = 0.11218;
    const D: f32 = 0.0011972;
    for (b, y) in src.chunks_exact(IQ6_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let (d, ex) = (rd_f16(b, 0), extra(b));
        for (e, yi) in y.iter_mut().enumerate() {
            let k = e / 16;
            let dl = d * (b[4 + k] as i8) as f32;
            let m = if (ex >> k) & 1 != 0 { 1.0f32 } else { 0.0 };
            let q = q_iq6(b, e) as f32;
            // The reference build contracts the Horner steps into fused multiply-adds (bit-checked against
            // its `to_float`), so this uses `mul_add` rather than separate roundings.
            *yi = dl * (q.mul_add(q.mul_add(q.mul_add(D, -C), B), A) + m);
        }
    }
}

// ---------------------------------------------------------------- quantizers

/// Search weights of one 16-block: `qw·sqrt(σ² + x²)` with an imatrix, else `fallback(x)`.
fn weights16(xb: &[f32], qw: Option<&[f32]>, sigma2: f32, fallback: impl Fn(f32) -> f32) -> [f32; 16] {
    core::array::from_fn(|j| match qw {
        Some(q) => q[j] * (sigma2 + xb[j] * xb[j]).sqrt(),
        None => fallback(xb[j]),
    })
}

/// `quantize_row_iq4_k_impl_bs16` (ntry 7): 16-block search on `iq4k_values`, 6-bit scales against
/// `d = −max_scale/32`, re-assignment with the unrounded `d·l`, LS refit of `d`.
pub fn quantize_iq4_k(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let (base, shifted) = (f32_table(&IQ4K_LO), f32_table(&IQ4K_HI));
    let lv = Levels { base: &base, shifted: &shifted, best: best4 };
    let mut wrow = Vec::new();
    for (x, y) in rows(src, dst, ne0, ne0 / QK_K * IQ4_K_BYTES) {
        let im = row_weights(imatrix, x, 16, &mut wrow).then_some(&wrow[..]);
        for (ibl, (xs, b)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(IQ4_K_BYTES)).enumerate() {
            let sigma2 = sigma2_a(xs);
            let qw = |ib: usize| im.map(|w| &w[QK_K * ibl + 16 * ib..]);
            let mut scales = [0.0f32; 16];
            let (mut max_scale, mut amax_scale) = (0.0f32, 0.0f32);
            let mut ex = 0u16;
            for ib in 0..16 {
                let xb = &xs[16 * ib..16 * ib + 16];
                let w = weights16(xb, qw(ib), sigma2, |v| v * v);
                let (d, sh) = block_search(xb, &w, &lv, 7, 1.0, false);
                ex |= (sh as u16) << ib;
                scales[ib] = d;
                if d.abs() > amax_scale {
                    amax_scale = d.abs();
                    max_scale = d;
                }
            }
            b.fill(0);
            // why −32: 6-bit signed scales, the largest-magnitude one maps to −32
            let d = -max_scale / 32.0;
            wr_f16(b, 0, d);
            b[2..4].copy_from_slice(&ex.to_le_bytes());
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
            let mut lv16 = [0u8; QK_K];
            let mut sh32 = 0u32;
            for ib in 0..16 {
                let t = if (ex >> ib) & 1 != 0 { &shifted } else { &base };
                let l = nearest_int(id * scales[ib]).clamp(-32, 31);
                let dl = d * l as f32;
                let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
                let xb = &xs[16 * ib..16 * ib + 16];
                let w = weights16(xb, qw(ib), sigma2, |v| v * v);
                for j in 0..16 {
                    let li = best4(t, idl * xb[j]);
                    lv16[16 * ib + j] = li as u8;
                    let q = t[li] * l as f32;
                    sumqx += w[j] * q * xb[j];
                    sumq2 += w[j] * q * q;
                }
                let lu = (l + 32) as u8;
                b[8 + ib / 2] |= (lu & 15) << (4 * (ib % 2));
                sh32 |= ((lu >> 4) as u32) << (2 * ib);
            }
            b[4..8].copy_from_slice(&sh32.to_le_bytes());
            if sumq2 > 0.0 {
                wr_f16(b, 0, sumqx / sumq2);
            }
            for i in 0..8 {
                for j in 0..16 {
                    b[16 + 16 * i + j] = lv16[32 * i + j] | (lv16[32 * i + 16 + j] << 4);
                }
            }
        }
    }
}

/// `best_index_iq4nl` on an f32 copy of one half of `iq4k_values`.
pub(super) fn best4(t: &[f32], x: f32) -> usize {
    super::iqk_common::best_iq4(t[0] != -127.0, x)
}

/// Shared body of `quantize_row_iq5_k_impl` / `quantize_row_iq6_k_impl` (ntry 5, step 1, refit): 16-block
/// search, scales against `d = −max_scale/nmax`, `pack(b, ib, j, level)` stores each index.
#[allow(clippy::too_many_arguments)]
fn quantize_k56(
    xs: &[f32],
    b: &mut [u8],
    im: Option<&[f32]>,
    lv: &Levels,
    nmax: i32,
    ls_max: i32,
    store_scale: fn(&mut [u8], usize, i32),
    pack: fn(&mut [u8], usize, usize, usize),
) {
    let sigma2 = sigma2_b(xs);
    let qw = |ib: usize| im.map(|w| &w[16 * ib..]);
    // why 0.25σ²: without an imatrix these types weight by `σ²/4 + x²` (flatter than IQ4_K's x²)
    let fb = |v: f32| 0.25 * sigma2 + v * v;
    b.fill(0);
    let mut scales = [0.0f32; 16];
    let (mut max_scale, mut max_abs) = (0.0f32, 0.0f32);
    let mut ex = 0u16;
    for ib in 0..16 {
        let xb = &xs[16 * ib..16 * ib + 16];
        let w = weights16(xb, qw(ib), sigma2, fb);
        let (d, sh) = block_search(xb, &w, lv, 5, 1.0, true);
        scales[ib] = d;
        ex |= (sh as u16) << ib;
        if d.abs() > max_abs {
            max_abs = d.abs();
            max_scale = d;
        }
    }
    if max_abs == 0.0 {
        return;
    }
    let d = -max_scale / nmax as f32;
    wr_f16(b, 0, d);
    b[2..4].copy_from_slice(&ex.to_le_bytes());
    let id = 1.0 / d;
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for ib in 0..16 {
        let ls = nearest_int(id * scales[ib]).clamp(-nmax, ls_max);
        store_scale(b, ib, ls);
        let dl = d * ls as f32;
        if dl == 0.0 {
            continue;
        }
        let t = if (ex >> ib) & 1 != 0 { lv.shifted } else { lv.base };
        let xb = &xs[16 * ib..16 * ib + 16];
        let w = weights16(xb, qw(ib), sigma2, fb);
        let idl = 1.0 / dl;
        for j in 0..16 {
            let l = (lv.best)(t, idl * xb[j]);
            pack(b, ib, j, l);
            let q = t[l] * ls as f32;
            sumqx += w[j] * q * xb[j];
            sumq2 += w[j] * q * q;
        }
    }
    if sumq2 > 0.0 {
        wr_f16(b, 0, sumqx / sumq2);
    }
}

/// `quantize_row_iq5_k_impl`: 6-bit scales (−32…31) as IQ4_K, 5-bit indices (C64 low nibbles + qh bit).
pub fn quantize_iq5_k(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let (base, shifted): ([f32; 32], [f32; 32]) =
        (core::array::from_fn(|i| IQ5NL[i] as f32), core::array::from_fn(|i| IQ5NL[32 + i] as f32));
    let lv = Levels { base: &base, shifted: &shifted, best: super::iqk_common::best_iq5 };
    let mut wrow = Vec::new();
    for (x, y) in rows(src, dst, ne0, ne0 / QK_K * IQ5_K_BYTES) {
        let im = row_weights(imatrix, x, 16, &mut wrow).then_some(&wrow[..]);
        for (ibl, (xs, b)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(IQ5_K_BYTES)).enumerate() {
            quantize_k56(xs, b, im.map(|w| &w[QK_K * ibl..]), &lv, 32, 31, store_sc6, |b, ib, j, l| {
                let (ib32, off) = (ib / 2, 16 * (ib % 2));
                b[16 + 32 * (ib32 / 2) + off + j] |= ((l & 15) as u8) << (4 * (ib32 % 2));
                b[144 + off + j] |= ((l >> 4) as u8) << (ib32 % 8);
            });
        }
    }
}

fn store_sc6(b: &mut [u8], ib: usize, ls: i32) {
    let u = (ls + 32) as u8;
    b[8 + ib / 2] |= (u & 15) << (4 * (ib % 2));
    b[4 + ib / 4] |= (u >> 4) << (2 * (ib % 4));
}

/// `quantize_row_iq6_k_impl`: signed 8-bit scales against `d = −max_scale/127`, 6-bit indices.
pub fn quantize_iq6_k(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let (base, shifted): ([f32; 64], [f32; 64]) =
        (core::array::from_fn(|i| IQ6NL[i] as f32), core::array::from_fn(|i| IQ6NL[64 + i] as f32));
    let lv = Levels { base: &base, shifted: &shifted, best: super::iqk_common::best_iq6 };
    let mut wrow = Vec::new();
    for (x, y) in rows(src, dst, ne0, ne0 / QK_K * IQ6_K_BYTES) {
        let im = row_weights(imatrix, x, 16, &mut wrow).then_some(&wrow[..]);
        for (ibl, (xs, b)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(IQ6_K_BYTES)).enumerate() {
            quantize_k56(
                xs,
                b,
                im.map(|w| &w[QK_K * ibl..]),
                &lv,
                127,
                127,
                |b, ib, ls| b[4 + ib] = ls as i8 as u8,
                |b, ib, j, l| {
                    let (ib32, off) = (ib / 2, 16 * (ib % 2));
                    b[20 + 32 * (ib32 / 2) + off + j] |= ((l & 15) as u8) << (4 * (ib32 % 2));
                    b[148 + 32 * (ib32 / 4) + off + j] |= ((l >> 4) as u8) << (2 * (ib32 % 4));
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ggml's CPU `to_float` of IQ6_K (polynomial form) on the reference's own blocks (tests/data/iqk_iq6_k.bin,
    /// random-byte section; see gen_iqk_ref.py) must match bit for bit.
    #[test]
    fn iq6_k_polynomial_dequant_matches_reference_to_float() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/iqk_iq6_k.bin");
        let Ok(f) = std::fs::read(&p) else { panic!("{}", p.display()) };
        let u = |i: usize| u32::from_le_bytes([f[4 + 4 * i], f[5 + 4 * i], f[6 + 4 * i], f[7 + 4 * i]]) as usize;
        let (ne0, nrows) = (u(1), u(2));
        let rb = ne0 / QK_K * IQ6_K_BYTES;
        let mut off = 16 + nrows * rb + 4 * nrows * ne0 + nrows * rb;
        let rnd = &f[off..off + 2 * rb];
        off += 2 * rb;
        let want: Vec<f32> = f[off..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let mut got = vec![0f32; 2 * ne0];
        dequantize_iq6_k_poly(rnd, &mut got, ne0);
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "[{i}] {g} vs {w}");
        }
    }
}
