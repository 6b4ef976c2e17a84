//! IQ1_M (ggml id 29): 1.75 bpw, 8-dim ternary lattice `iq1s_grid`, 3-bit scale per 16 weights, a ±0.125 shift
//! per 8 weights, and the f16 super-scale spread over the top nibbles of the four scale words
//! (spec/quants.md §5.13, §13.3).
//!
//! Mirrors ggml-quants.c `dequantize_row_iq1_m`, `ggml_vec_dot_iq1_m_q8_K` (scalar branch),
//! `iq1m_process_1block` and `quantize_row_iq1_m_impl` (ik_llama.cpp @ 8337e4cd).

// Index loops mirror the reference C loops one to one, which keeps the port reviewable.
#![allow(clippy::needless_range_loop)]

use std::mem::{offset_of, size_of};

use super::grids::{byte8, IQ1S_GRID};
use super::iq_lattice::*;
use super::Format;
use crate::quant::convert::{f16_to_f32, f32_to_f16, nearest_int};
use crate::quant::QType;

#[repr(C)]
pub struct BlockIq1M {
    /// Low 8 bits of the grid indices (one per 8 weights).
    pub qs: [u8; 32],
    /// Per 16 weights: bits 0–2 / 4–6 = index bits 8–10 of the two groups, bits 3 / 7 = their shift signs.
    pub qh: [u8; 16],
    /// Four u16: 3-bit scales of the 16-weight blocks in bits 0–11, f16 super-scale nibbles in bits 12–15.
    pub scales: [u8; 8],
}

const SIZE: usize = size_of::<BlockIq1M>();
const _: () = assert!(SIZE == QType::IQ1_M.traits().type_size);
const QS: usize = offset_of!(BlockIq1M, qs);
const QH: usize = offset_of!(BlockIq1M, qh);
const SCALES: usize = offset_of!(BlockIq1M, scales);
/// ggml `IQ1M_DELTA`.
const DELTA: f32 = 0.125;
/// ggml `GROUP_MAX_EPS_IQ1_M`.
const GROUP_MAX_EPS: f32 = 1e-7;

lattice_format!(IQ1_M);

fn scale_words(b: &[u8]) -> [u16; 4] {
    [rd_u16(b, SCALES), rd_u16(b, SCALES + 2), rd_u16(b, SCALES + 4), rd_u16(b, SCALES + 6)]
}

/// The f16 super-scale gathered from the top nibbles of the scale words.
fn super_scale(sc: &[u16; 4]) -> f32 {
    f16_to_f32((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000))
}

/// Grid entry of group `l` (0…3) of 32-block `ib`.
#[inline]
fn grid(b: &[u8], ib: usize, l: usize) -> u64 {
    let h = b[QH + 2 * ib + l / 2] >> (4 * (l % 2));
    IQ1S_GRID[b[QS + 4 * ib + l] as usize | (((h & 7) as usize) << 8)]
}

#[inline]
fn delta_negative(b: &[u8], ib: usize, l: usize) -> bool {
    b[QH + 2 * ib + l / 2] & (0x08 << (4 * (l % 2))) != 0
}

fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let sc = scale_words(b);
    let d = super_scale(&sc);
    for ib in 0..8 {
        let w = sc[ib / 2] >> (6 * (ib % 2));
        let dl = [d * (2 * (w & 7) + 1) as f32, d * (2 * ((w >> 3) & 7) + 1) as f32];
        for l in 0..4 {
            let g = grid(b, ib, l);
            let delta = if delta_negative(b, ib, l) { -DELTA } else { DELTA };
            for j in 0..8 {
                y[32 * ib + 8 * l + j] = dl[l / 2] * (byte8(g, j) as i8 as f32 + delta);
            }
        }
    }
}

fn vec_dot(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in q8k_blocks(n, x, y, SIZE) {
        let sc = scale_words(xb);
        let (mut sumi1, mut sumi2) = (0i32, 0i32);
        for ib in 0..8 {
            let (mut sum1, mut sum2) = ([0i32; 2], [0i32; 2]);
            for l in 0..4 {
                let g = grid(xb, ib, l);
                let (mut lsum1, mut lsum2) = (0i32, 0i32);
                for j in 0..8 {
                    let q = q8k_q(yb, 32 * ib + 8 * l + j);
                    lsum1 += q * byte8(g, j) as i8 as i32;
                    lsum2 += q;
                }
                sum1[l / 2] += lsum1;
                sum2[l / 2] += if delta_negative(xb, ib, l) { -lsum2 } else { lsum2 };
            }
            let w = sc[ib / 2] >> (6 * (ib % 2));
            let ls1 = 2 * (w & 7) as i32 + 1;
            let ls2 = 2 * ((w >> 3) & 7) as i32 + 1;
            sumi1 += sum1[0] * ls1 + sum1[1] * ls2;
            sumi2 += sum2[0] * ls1 + sum2[1] * ls2;
        }
        sumf += super_scale(&sc) * q8k_d(yb) * (sumi1 as f32 + DELTA * sumi2 as f32);
    }
    sumf
}

const X_P: [f32; 3] = [-1.0 + DELTA, DELTA, 1.0 + DELTA];
const X_M: [f32; 3] = [-1.0 - DELTA, -DELTA, 1.0 - DELTA];

/// Shift values of group `k` (0, 1) for shift combination `s` (0: +,+  1: +,−  2: −,+  3: −,−).
fn shift_values(s: usize, k: usize) -> &'static [f32; 3] {
    let negative = if k == 0 { s >= 2 } else { s % 2 == 1 };
    if negative {
        &X_M
    } else {
        &X_P
    }
}

/// Result of the per-16-weight search.
pub(super) struct Block {
    pub(super) scale: f32,
    pub(super) index: [u16; 2],
    pub(super) shift: usize,
}

/// ggml `iq1m_process_1block`.
pub(super) fn process_block(xb: &[f32], weight: &[f32]) -> Block {
    let lat = lattice_iq1s();
    // Exact weighted least squares: sort, try every split into three runs and all four shift combinations,
    // with prefix sums kept separately for the two 8-weight groups.
    let mut idx = [0usize; 16];
    sort_idx(xb, &mut idx);
    let (mut sumw1, mut sumw2, mut sumx1, mut sumx2) = ([0f32; 17], [0f32; 17], [0f32; 17], [0f32; 17]);
    for j in 0..16 {
        let i = idx[j];
        let (w, wx) = (weight[i], weight[i] * xb[i]);
        let first = i < 8;
        sumw1[j + 1] = sumw1[j] + if first { w } else { 0.0 };
        sumx1[j + 1] = sumx1[j] + if first { wx } else { 0.0 };
        sumw2[j + 1] = sumw2[j] + if first { 0.0 } else { w };
        sumx2[j + 1] = sumx2[j] + if first { 0.0 } else { wx };
    }
    // Accumulates the three runs onto `acc` left to right, matching the reference's single C expression.
    let part = |acc: f32, s: &[f32; 17], i1: usize, i2: usize, v: &[f32; 3], sq: bool| -> f32 {
        let f = |a: f32, c: f32| if sq { a * c * c } else { a * c };
        acc + f(s[i1] - s[0], v[0]) + f(s[i2] - s[i1], v[1]) + f(s[16] - s[i2], v[2])
    };
    let (mut best_score, mut scale) = (0f32, 0f32);
    let (mut besti1, mut besti2, mut best_k) = (0usize, 0usize, None);
    for i1 in 0..=16 {
        for i2 in i1..=16 {
            for k in 0..4 {
                let (v1, v2) = (shift_values(k, 0), shift_values(k, 1));
                let sumqx = part(part(0.0, &sumx1, i1, i2, v1, false), &sumx2, i1, i2, v2, false);
                let sumq2 = part(part(0.0, &sumw1, i1, i2, v1, true), &sumw2, i1, i2, v2, true);
                if sumq2 > 0.0 && sumqx * sumqx > best_score * sumq2 {
                    scale = sumqx / sumq2;
                    best_score = scale * sumqx;
                    besti1 = i1;
                    besti2 = i2;
                    best_k = Some(k);
                }
            }
        }
    }
    let Some(mut best_k) = best_k else {
        // Nothing scored (zero weights or non-finite input; the reference aborts).
        return Block { scale: 0.0, index: [0; 2], shift: 0 };
    };
    let mut l = split_levels(&idx, besti1, besti2);
    if scale < 0.0 {
        l = l.map(|v| 2 - v);
        scale = -scale;
        best_k = 3 - best_k;
    }
    let mut index = [0u16; 2];
    let mut all_on_grid = true;
    for k in 0..2 {
        let r = 8 * k..8 * k + 8;
        all_on_grid &= lat.lookup(lat.code(&l[r.clone()])).is_ok();
        let xx = shift_values(best_k, k);
        index[k] = lat.snap_iq1(&xb[r.clone()], &weight[r.clone()], scale, xx, &mut l[r]) as u16;
    }
    if !all_on_grid {
        let (mut sumqx, mut sumq2) = ([0f32; 4], [0f32; 4]);
        for j in 0..16 {
            let w = weight[j];
            let (qp, qm) = (X_P[l[j] as usize], X_M[l[j] as usize]);
            sumqx[0] += w * xb[j] * qp;
            sumq2[0] += w * qp * qp;
            sumqx[3] += w * xb[j] * qm;
            sumq2[3] += w * qm * qm;
            let (a, b) = if j < 8 { (1, 2) } else { (2, 1) };
            sumqx[a] += w * xb[j] * qp;
            sumq2[a] += w * qp * qp;
            sumqx[b] += w * xb[j] * qm;
            sumq2[b] += w * qm * qm;
        }
        best_score = 0.0;
        for k in 0..4 {
            if sumqx[k] > 0.0 && sumq2[k] > 0.0 && sumqx[k] * sumqx[k] > best_score * sumq2[k] {
                scale = sumqx[k] / sumq2[k];
                best_score = scale * sumqx[k];
                best_k = k;
            }
        }
    }
    Block { scale, index, shift: best_k }
}

/// Without an imatrix the column weights are uniform, as in ggml `quantize_row_iq1_m_ref`.
fn weights16(xb: &[f32], qw: Option<&[f32]>, sigma2: f32) -> [f32; 16] {
    group_weights(xb, qw, sigma2, |x| imatrix_weight(1.0, sigma2, x))
}

/// One super-block (ggml `quantize_row_iq1_m_impl` loop body).
fn quantize_block(xbl: &[f32], qw: Option<&[f32]>, y: &mut [u8]) {
    // Shift-sign bits of qh for shift combinations 0…3 (bit 3: first group negative, bit 7: second).
    const MASKS: [u8; 4] = [0x00, 0x80, 0x08, 0x88];
    let lat = lattice_iq1s();
    y.fill(0);
    let mut scales = [0f32; 16];
    let mut shifts = [0usize; 16];
    let mut max_scale = 0f32;
    let mut all_sigma2 = [0f32; 8];
    for (ib, s) in all_sigma2.iter_mut().enumerate() {
        *s = 1.5 * sum_sq(&xbl[32 * ib..32 * ib + 32]) / 32.0;
    }
    for ib in 0..16 {
        let xb = &xbl[16 * ib..16 * ib + 16];
        let mut weight = weights16(xb, qw.map(|q| &q[16 * ib..16 * ib + 16]), all_sigma2[ib / 2]);
        let max = xb.iter().fold(xb[0].abs(), |m, &v| m.max(v.abs()));
        // The reference sums from i = 1 (it folds element 0 into `max` only); kept as is.
        let sumwx = (1..16).fold(0f32, |s, i| s + weight[i] * xb[i].abs());
        if max < GROUP_MAX_EPS {
            continue;
        }
        if sumwx == 0.0 {
            // Importance is zero wherever x is not: fall back to x² weighting.
            for i in 0..16 {
                weight[i] = xb[i] * xb[i];
            }
        }
        let blk = process_block(xb, &weight);
        y[QS + 2 * ib] = blk.index[0] as u8;
        y[QS + 2 * ib + 1] = blk.index[1] as u8;
        y[QH + ib] = (blk.index[0] >> 8) as u8 | ((blk.index[1] >> 8) << 4) as u8;
        shifts[ib] = blk.shift;
        scales[ib] = blk.scale;
        max_scale = max_scale.max(blk.scale);
    }
    if max_scale == 0.0 {
        return;
    }
    let mut sc = [0u16; 4];
    // Why 15 = 2·7 + 1: the largest odd block multiplier a 3-bit scale encodes.
    let mut d = max_scale / 15.0;
    let id = 1.0 / d;
    let (mut sumqx_f, mut sumq2_f) = (0f32, 0f32);
    for ib in 0..16 {
        let ls = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 7);
        sc[ib / 4] |= (ls as u16) << (3 * (ib % 4));
        y[QH + ib] |= MASKS[shifts[ib]];
        let xb = &xbl[16 * ib..16 * ib + 16];
        let weight = weights16(xb, qw.map(|q| &q[16 * ib..16 * ib + 16]), all_sigma2[ib / 2]);
        for k in 0..2 {
            let xx = shift_values(shifts[ib], k);
            let gi = y[QS + 2 * ib + k] as usize | ((((y[QH + ib] >> (4 * k)) & 7) as usize) << 8);
            for (j, &g) in lat.point(gi).iter().enumerate() {
                let w = weight[8 * k + j];
                let q = xx[((g - 1) / 2) as usize] * (2 * ls + 1) as f32;
                sumqx_f += w * q * xb[8 * k + j];
                sumq2_f += w * q * q;
            }
        }
    }
    if sumq2_f > 0.0 {
        d = sumqx_f / sumq2_f;
    }
    // 1.085 is ik's empirical fudge factor for the refitted super-scale.
    let s = f32_to_f16(d * 1.085);
    sc[0] |= (s & 0x000f) << 12;
    sc[1] |= (s & 0x00f0) << 8;
    sc[2] |= (s & 0x0f00) << 4;
    sc[3] |= s & 0xf000;
    for (i, v) in sc.iter().enumerate() {
        wr_u16(y, SCALES + 2 * i, *v);
    }
}
