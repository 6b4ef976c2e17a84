//! IQ4_NL, IQ4_XS and MXFP4 (spec/quants.md §5.14, §5.15, §4.10, §13.4): dequantize, the reference file
//! quantizers, scalar vec_dot (IQ4_NL/MXFP4 with Q8_0, IQ4_XS with Q8_K).
//!
//! Upstream @ 8337e4cd: ggml/src/ggml-quants.c (`quantize_row_iq4_nl_impl`, `quantize_iq4_nl`,
//! `quantize_iq4_xs`, `dequantize_row_iq4_{nl,xs}`), ggml/src/iqk/iqk_quantize.cpp (`quantize_row_mxfp4_impl`,
//! `dequantize_row_mxfp4`).
//!
//! Block layouts (byte offsets):
//! * IQ4_NL: d f16 @0, qs[16] @2 (18 B, N16)     * MXFP4: e u8 @0, qs[16] @1 (17 B, N16)
//! * IQ4_XS: d f16 @0, scales_h u16 @2, scales_l[4] @4, qs[128] @8 (136 B, N16 per 32-block)
//!
//! vec_dot order: per 32-block exact i32 `sumi = Σ T[q]·q8`; IQ4_NL/MXFP4 `sumf += (dx·dy)·sumi`; IQ4_XS
//! `isum = Σ_b (ls_b − 32)·sumi_b` per super-block, `sumf += (dx·dy)·isum`; in order, f32.

use super::common::{pack_n16, rd_f16, rows, unpack_n16, wr_f16};
use super::q8::{q8k_d, q8k_q, Q8_0_BYTES, Q8_K_BYTES};
use super::search::GROUP_MAX_EPS;
use super::values::{best_index_iq4nl, e8m0_to_f32_half, KVALUES_IQ4NL, KVALUES_MXFP4};
use crate::quant::QType;

const QK: usize = 32;
const QK_K: usize = 256;
pub const IQ4_NL_BYTES: usize = 18;
pub const IQ4_XS_BYTES: usize = 136;
pub const MXFP4_BYTES: usize = 17;
const _: () = assert!(IQ4_NL_BYTES == QType::IQ4_NL.traits().type_size);
const _: () = assert!(IQ4_XS_BYTES == QType::IQ4_XS.traits().type_size);
const _: () = assert!(MXFP4_BYTES == QType::MXFP4.traits().type_size);
/// Scale-search half width of the file quantizers (`ntry = 7`, §13.4).
const NTRY: i32 = 7;

// ---------------------------------------------------------------- shared IQ4 search

/// Best scale for one 32-block: initial fit, 2·(2·NTRY+1) candidate inverse scales, greedy refinement.
/// Writes levels to `l`, returns the (signed) block scale; 0 for an all-zero block (levels untouched).
fn iq4_block_scale(xb: &[f32], w: &[f32; QK], l: &mut [u8]) -> f32 {
    let v = &KVALUES_IQ4NL;
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &x in xb {
        if x.abs() > amax {
            amax = x.abs();
            max = x;
        }
    }
    if amax < GROUP_MAX_EPS {
        return 0.0;
    }
    let sums = |id: f32| {
        let (mut sqx, mut sq2) = (0.0f32, 0.0f32);
        for j in 0..QK {
            let q = v[best_index_iq4nl(v, id * xb[j])] as f32;
            // the reference build contracts `s += w*q*x` to fma(w*q, x, s)
            sqx = (w[j] * q).mul_add(xb[j], sqx);
            sq2 = (w[j] * q).mul_add(q, sq2);
        }
        (sqx, sq2)
    };
    let assign = |id: f32, l: &mut [u8]| {
        for j in 0..QK {
            l[j] = best_index_iq4nl(v, id * xb[j]) as u8;
        }
    };
    // ntry > 0: start from d = −max/T[0] (the largest weight on the +127-ish end)
    let mut d = -max / v[0] as f32;
    let id0 = 1.0 / d;
    assign(id0, l);
    let (mut sumqx, mut sumq2) = sums(id0);
    d = sumqx / sumq2;
    let mut best = d * sumqx;
    let (mut best_sumqx, mut best_sumq2) = (sumqx, sumq2);
    for itry in -NTRY..=NTRY {
        for anchor in [v[0], v[15]] {
            let id = (itry + anchor as i32) as f32 / max;
            let (sqx, sq2) = sums(id);
            if sq2 > 0.0 && sqx * sqx > best * sq2 {
                d = sqx / sq2;
                best = d * sqx;
                best_sumqx = sqx;
                best_sumq2 = sq2;
                assign(id, l);
            }
        }
    }
    sumqx = best_sumqx;
    sumq2 = best_sumq2;
    for _ in 0..32 * QK {
        let (mut min_step, mut best_j, mut dir) = (f32::INFINITY, usize::MAX, 0i32);
        for j in 0..QK {
            let lj = l[j] as usize;
            // `x − d·T[l]` is contracted to fnmadd in the reference build
            let g = d * w[j] * (-d).mul_add(v[lj] as f32, xb[j]);
            if g > 0.0 && lj < 15 {
                let step = (v[lj + 1] as i32 - v[lj] as i32) as f32 / g;
                if step < min_step {
                    (min_step, best_j, dir) = (step, j, 1);
                }
            } else if g < 0.0 && lj > 0 {
                let step = (v[lj - 1] as i32 - v[lj] as i32) as f32 / g;
                if step < min_step {
                    (min_step, best_j, dir) = (step, j, -1);
                }
            }
        }
        if best_j == usize::MAX {
            break;
        }
        let (v0, v1) = (v[l[best_j] as usize] as i32, v[(l[best_j] as i32 + dir) as usize] as i32);
        let wj = w[best_j];
        let new_sumqx = (wj * xb[best_j]).mul_add((v1 - v0) as f32, sumqx);
        let new_sumq2 = wj.mul_add((v1 * v1 - v0 * v0) as f32, sumq2);
        if new_sumq2 > 0.0 && new_sumqx * new_sumqx > best * new_sumq2 {
            sumqx = new_sumqx;
            sumq2 = new_sumq2;
            d = sumqx / sumq2;
            best = d * sumqx;
            l[best_j] = (l[best_j] as i32 + dir) as u8;
        } else {
            break;
        }
    }
    d
}

/// Importance weights of `quantize_row_iq4_nl_impl`: `qw·sqrt(σ² + x²)` or x².
fn iq4_weights(xb: &[f32], qw: Option<&[f32]>, sigma2: f32) -> [f32; QK] {
    core::array::from_fn(|j| match qw {
        Some(q) => q[j] * xb[j].mul_add(xb[j], sigma2).sqrt(),
        None => xb[j] * xb[j],
    })
}

/// σ² of the reference: `Σx² · (2/n)` (the factor is formed first).
fn iq4_sigma2(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |s, &v| v.mul_add(v, s)) * (2.0 / x.len() as f32)
}

/// `nearest_int(a·b)` as the reference build computes it: the inlined `a*b + 12582912.f` is one fma.
fn nearest_int_fma(a: f32, b: f32) -> i32 {
    ((a.mul_add(b, 12_582_912.0).to_bits() & 0x007f_ffff) as i32) - 0x0040_0000
}

// ---------------------------------------------------------------- IQ4_NL

pub fn dequantize_iq4_nl(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(IQ4_NL_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = rd_f16(b, 0);
        for (yi, q) in y.iter_mut().zip(unpack_n16(&b[2..18])) {
            *yi = d * KVALUES_IQ4NL[q as usize] as f32;
        }
    }
}

/// `quantize_iq4_nl` (file path, ntry 7): per 32-block search, then re-assignment with the f16 scale's
/// unrounded f32 value.
pub fn quantize_iq4_nl(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    for (x, y) in rows(src, dst, ne0, ne0 / QK * IQ4_NL_BYTES) {
        for (ib, (xb, b)) in x.chunks_exact(QK).zip(y.chunks_exact_mut(IQ4_NL_BYTES)).enumerate() {
            let w = iq4_weights(xb, imatrix.map(|q| &q[QK * ib..]), iq4_sigma2(xb));
            let mut l = [0u8; QK];
            let scale = iq4_block_scale(xb, &w, &mut l);
            wr_f16(b, 0, scale);
            let id = if scale != 0.0 { 1.0 / scale } else { 0.0 };
            for j in 0..QK {
                l[j] = best_index_iq4nl(&KVALUES_IQ4NL, id * xb[j]) as u8;
            }
            pack_n16(&l, &mut b[2..18]);
        }
    }
}

pub fn vec_dot_iq4_nl_q8_0(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(IQ4_NL_BYTES).zip(y.chunks_exact(Q8_0_BYTES)).take(n / QK) {
        let q = unpack_n16(&bx[2..18]);
        let sumi: i32 = (0..QK).map(|j| KVALUES_IQ4NL[q[j] as usize] as i32 * by[2 + j] as i8 as i32).sum();
        sumf += (rd_f16(bx, 0) * rd_f16(by, 0)) * sumi as f32;
    }
    sumf
}

// ---------------------------------------------------------------- IQ4_XS

#[inline]
fn iq4xs_ls(b: &[u8], ib: usize) -> i32 {
    let sh = u16::from_le_bytes([b[2], b[3]]);
    (((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | ((((sh >> (2 * ib)) & 3) as u8) << 4)) as i32
}

pub fn dequantize_iq4_xs(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(IQ4_XS_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = rd_f16(b, 0);
        for (ib, yb) in y.chunks_exact_mut(QK).enumerate() {
            let dl = d * (iq4xs_ls(b, ib) - 32) as f32;
            for (yi, q) in yb.iter_mut().zip(unpack_n16(&b[8 + 16 * ib..24 + 16 * ib])) {
                *yi = dl * KVALUES_IQ4NL[q as usize] as f32;
            }
        }
    }
}

/// `quantize_iq4_xs` (ntry 7): per 32-block search, 6-bit block scales against `d = −max_scale/32`,
/// re-assignment with the unrounded `d·l`.
pub fn quantize_iq4_xs(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    for (x, y) in rows(src, dst, ne0, ne0 / QK_K * IQ4_XS_BYTES) {
        for (ibl, (xs, b)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(IQ4_XS_BYTES)).enumerate() {
            let sigma2 = iq4_sigma2(xs);
            let mut l = [0u8; QK_K];
            let mut scales = [0.0f32; 8];
            let (mut amax_scale, mut max_scale) = (0.0f32, 0.0f32);
            for ib in 0..8 {
                let xb = &xs[QK * ib..QK * ib + QK];
                let w = iq4_weights(xb, imatrix.map(|q| &q[QK_K * ibl + QK * ib..]), sigma2);
                scales[ib] = iq4_block_scale(xb, &w, &mut l[QK * ib..]);
                if scales[ib].abs() > amax_scale {
                    amax_scale = scales[ib].abs();
                    max_scale = scales[ib];
                }
            }
            b.fill(0);
            // why −32: 6-bit block scales, the largest-magnitude one maps to −32
            let d = -max_scale / 32.0;
            wr_f16(b, 0, d);
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let mut sh = 0u16;
            for ib in 0..8 {
                // `nearest_int(id*s)` inlines to `id*s + 12582912.f`, contracted to an fma by the reference build
                let ls = nearest_int_fma(id, scales[ib]).clamp(-32, 31);
                let dl = d * ls as f32;
                let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
                for j in QK * ib..QK * ib + QK {
                    l[j] = best_index_iq4nl(&KVALUES_IQ4NL, idl * xs[j]) as u8;
                }
                let lb = (ls + 32) as u8;
                b[4 + ib / 2] |= (lb & 15) << (4 * (ib % 2));
                sh |= ((lb >> 4) as u16) << (2 * ib);
            }
            b[2..4].copy_from_slice(&sh.to_le_bytes());
            for ib in 0..8 {
                pack_n16(&l[QK * ib..], &mut b[8 + 16 * ib..24 + 16 * ib]);
            }
        }
    }
}

pub fn vec_dot_iq4_xs_q8_k(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(IQ4_XS_BYTES).zip(y.chunks_exact(Q8_K_BYTES)).take(n / QK_K) {
        let mut isum = 0i32;
        for ib in 0..8 {
            let q = unpack_n16(&bx[8 + 16 * ib..24 + 16 * ib]);
            let s: i32 = (0..QK).map(|j| KVALUES_IQ4NL[q[j] as usize] as i32 * q8k_q(by, QK * ib + j)).sum();
            isum += (iq4xs_ls(bx, ib) - 32) * s;
        }
        sumf += (rd_f16(bx, 0) * q8k_d(by)) * isum as f32;
    }
    sumf
}

// ---------------------------------------------------------------- MXFP4

pub fn dequantize_mxfp4(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(MXFP4_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = e8m0_to_f32_half(b[0]);
        for (yi, q) in y.iter_mut().zip(unpack_n16(&b[1..17])) {
            *yi = d * KVALUES_MXFP4[q as usize] as f32;
        }
    }
}

/// `quantize_row_mxfp4_impl` (imatrix ignored): E8M0 exponent from amax, nearest table entry, first minimum.
pub fn quantize_mxfp4(src: &[f32], dst: &mut [u8], ne0: usize, _imatrix: Option<&[f32]>) {
    for (x, y) in rows(src, dst, ne0, ne0 / QK * MXFP4_BYTES) {
        for (xb, b) in x.chunks_exact(QK).zip(y.chunks_exact_mut(MXFP4_BYTES)) {
            b.fill(0);
            let amax = xb.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
            if amax == 0.0 {
                continue;
            }
            // why −2: the largest E2M1 magnitude is 6 = 1.5·2², so the scale exponent sits 2 below amax's.
            // `as i32 as u8` mirrors x86's float → int → uint8 for out-of-range exponents.
            let e = ((amax.log2().floor() - 2.0 + 127.0) as i32) as u8;
            let d = e8m0_to_f32_half(e);
            b[0] = e;
            let mut l = [0u8; QK];
            for (lj, &v) in l.iter_mut().zip(xb) {
                let mut best = (v - d * KVALUES_MXFP4[0] as f32).abs();
                for (k, &t) in KVALUES_MXFP4.iter().enumerate().skip(1) {
                    let diff = (v - d * t as f32).abs();
                    if diff < best {
                        best = diff;
                        *lj = k as u8;
                    }
                }
            }
            pack_n16(&l, &mut b[1..17]);
        }
    }
}

pub fn vec_dot_mxfp4_q8_0(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in x.chunks_exact(MXFP4_BYTES).zip(y.chunks_exact(Q8_0_BYTES)).take(n / QK) {
        let q = unpack_n16(&bx[1..17]);
        let sumi: i32 = (0..QK).map(|j| KVALUES_MXFP4[q[j] as usize] as i32 * by[2 + j] as i8 as i32).sum();
        sumf += (e8m0_to_f32_half(bx[0]) * rd_f16(by, 0)) * sumi as f32;
    }
    sumf
}
