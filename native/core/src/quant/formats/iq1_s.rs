//! IQ1_S (ggml id 19): 1.5625 bpw, 8-dim ternary lattice `iq1s_grid` (2048 points, 11-bit index), 3-bit scale
//! and a ±0.125 shift per 32 weights (spec/quants.md §5.12, §13.3).
//!
//! Mirrors ggml-quants.c `dequantize_row_iq1_s`, `ggml_vec_dot_iq1_s_q8_K` (scalar branch),
//! `iq1s_process_1block` and `quantize_row_iq1_s_impl` (ik_llama.cpp @ 8337e4cd).

// Index loops mirror the reference C loops one to one, which keeps the port reviewable.
#![allow(clippy::needless_range_loop)]

use std::mem::{offset_of, size_of};

use super::grids::{byte8, IQ1S_GRID};
use super::iq_lattice::*;
use super::Format;
use crate::quant::convert::{f16_to_f32, f32_to_f16, nearest_int};
use crate::quant::QType;

#[repr(C)]
pub struct BlockIq1S {
    /// f16 super-block scale.
    pub d: [u8; 2],
    /// Low 8 bits of the grid indices (one per 8 weights).
    pub qs: [u8; 32],
    /// 8 × u16 per 32-block: bits 3l…3l+2 = index bits 8–10 of group l, bits 12–14 = scale, bit 15 = shift sign.
    pub qh: [u8; 16],
}

const SIZE: usize = size_of::<BlockIq1S>();
const _: () = assert!(SIZE == QType::IQ1_S.traits().type_size);
const QS: usize = offset_of!(BlockIq1S, qs);
const QH: usize = offset_of!(BlockIq1S, qh);
/// ggml `IQ1S_DELTA`: the ternary values are shifted by ±DELTA per 32-block.
pub(super) const DELTA: f32 = 0.125;
/// ggml `GROUP_MAX_EPS_IQ1_S`.
const GROUP_MAX_EPS: f32 = 1e-12;

lattice_format!(IQ1_S);

fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = f16_to_f32(rd_u16(b, 0));
    for ib in 0..8 {
        let h = rd_u16(b, QH + 2 * ib);
        let dl = d * (2 * ((h >> 12) & 7) + 1) as f32;
        let delta = if h & 0x8000 != 0 { -DELTA } else { DELTA };
        for l in 0..4 {
            let grid = IQ1S_GRID[b[QS + 4 * ib + l] as usize | ((((h >> (3 * l)) & 7) as usize) << 8)];
            for j in 0..8 {
                y[32 * ib + 8 * l + j] = dl * (byte8(grid, j) as i8 as f32 + delta);
            }
        }
    }
}

fn vec_dot(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in q8k_blocks(n, x, y, SIZE) {
        let (mut sumi, mut sumi1) = (0i32, 0i32);
        for ib in 0..8 {
            let h = rd_u16(xb, QH + 2 * ib);
            let ls = 2 * ((h >> 12) & 7) as i32 + 1;
            let delta = if h & 0x8000 != 0 { -1 } else { 1 };
            let mut lsum = 0i32;
            for l in 0..4 {
                let grid = IQ1S_GRID[xb[QS + 4 * ib + l] as usize | ((((h >> (3 * l)) & 7) as usize) << 8)];
                for j in 0..8 {
                    lsum += q8k_q(yb, 32 * ib + 8 * l + j) * byte8(grid, j) as i8 as i32;
                }
            }
            sumi += ls * lsum;
            sumi1 += ls * delta * (q8k_bsum(yb, 2 * ib) + q8k_bsum(yb, 2 * ib + 1));
        }
        sumf += f16_to_f32(rd_u16(xb, 0)) * q8k_d(yb) * (sumi as f32 + DELTA * sumi1 as f32);
    }
    sumf
}

/// Result of the per-32-block search.
pub(super) struct Block {
    pub(super) scale: f32,
    pub(super) index: [u16; 4],
    /// +1: values {−1, 0, 1} + DELTA; −1: − DELTA.
    pub(super) shift: i32,
}

/// ggml `iq1s_process_1block` for a 32-weight block.
pub(super) fn process_block(xb: &[f32], weight: &[f32]) -> Block {
    let max = xb.iter().fold(xb[0].abs(), |m, &v| m.max(v.abs()));
    if max < GROUP_MAX_EPS {
        return Block { scale: 0.0, index: [0; 4], shift: 1 };
    }
    let lat = lattice_iq1s();
    let x_p = [-1.0 + DELTA, DELTA, 1.0 + DELTA];
    let x_m = [-1.0 - DELTA, -DELTA, 1.0 - DELTA];
    // Exact weighted least squares over the three values: sort, then try every split into three runs.
    let mut idx = [0usize; 32];
    sort_idx(xb, &mut idx);
    let (sumx, sumw): ([f32; 33], [f32; 33]) = sorted_prefix_sums(&idx, xb, weight);
    let mut best_score = -f32::MIN_POSITIVE;
    let mut scale = max;
    let (mut besti1, mut besti2, mut best_shift) = (0usize, 0usize, 0i32);
    for i1 in 0..=32 {
        for i2 in i1..=32 {
            for (shift, xs) in [(1, &x_p), (-1, &x_m)] {
                let sumqx = (sumx[i1] - sumx[0]) * xs[0] + (sumx[i2] - sumx[i1]) * xs[1] + (sumx[32] - sumx[i2]) * xs[2];
                let sumq2 =
                    (sumw[i1] - sumw[0]) * xs[0] * xs[0] + (sumw[i2] - sumw[i1]) * xs[1] * xs[1] + (sumw[32] - sumw[i2]) * xs[2] * xs[2];
                if sumq2 > 0.0 && sumqx * sumqx > best_score * sumq2 {
                    scale = sumqx / sumq2;
                    best_score = scale * sumqx;
                    besti1 = i1;
                    besti2 = i2;
                    best_shift = shift;
                }
            }
        }
    }
    if best_shift == 0 {
        // No split scored (all weights zero or non-finite input; the reference aborts).
        return Block { scale: 0.0, index: [0; 4], shift: 1 };
    }
    let mut l = split_levels(&idx, besti1, besti2);
    if scale < 0.0 {
        l = l.map(|v| 2 - v);
        scale = -scale;
        best_shift = -best_shift;
    }
    let xx = if best_shift == 1 { &x_p } else { &x_m };
    let mut index = [0u16; 4];
    let mut all_on_grid = true;
    for k in 0..4 {
        let r = 8 * k..8 * k + 8;
        all_on_grid &= lat.lookup(lat.code(&l[r.clone()])).is_ok();
        index[k] = lat.snap_iq1(&xb[r.clone()], &weight[r.clone()], scale, xx, &mut l[r]) as u16;
    }
    if !all_on_grid {
        let (mut sumqx, mut sumq2) = (0f32, 0f32);
        for k in 0..4 {
            for (j, &g) in lat.point(index[k] as usize).iter().enumerate() {
                let w = weight[8 * k + j];
                let q = xx[((g - 1) / 2) as usize];
                sumqx += w * q * xb[8 * k + j];
                sumq2 += w * q * q;
            }
        }
        if sumqx > 0.0 && sumq2 > 0.0 {
            scale = sumqx / sumq2;
        }
    }
    Block { scale, index, shift: best_shift }
}

/// One super-block (ggml `quantize_row_iq1_s_impl` loop body). Without an imatrix the weights are uniform,
/// as in ggml `quantize_row_iq1_s_ref` (the reference quantizer requires one).
fn quantize_block(xbl: &[f32], qw: Option<&[f32]>, y: &mut [u8]) {
    y.fill(0);
    let mut scales = [0f32; 8];
    let mut shifts = [1i32; 8];
    let mut max_scale = 0f32;
    let sigma2 = 2.0 * sum_sq(xbl) / QK_K as f32;
    for ib in 0..8 {
        let xb = &xbl[32 * ib..32 * ib + 32];
        let weight: [f32; 32] = group_weights(xb, qw.map(|q| &q[32 * ib..32 * ib + 32]), sigma2, |x| imatrix_weight(1.0, sigma2, x));
        let blk = process_block(xb, &weight);
        let mut h = 0u16;
        for k in 0..4 {
            y[QS + 4 * ib + k] = blk.index[k] as u8;
            h |= (blk.index[k] >> 8) << (3 * k);
        }
        wr_u16(y, QH + 2 * ib, h);
        scales[ib] = blk.scale;
        shifts[ib] = blk.shift;
        max_scale = max_scale.max(blk.scale);
    }
    if max_scale == 0.0 {
        return;
    }
    // Why 15 = 2·7 + 1: the largest odd block multiplier a 3-bit scale encodes; 1.125 is ik's empirical factor.
    let d = max_scale / 15.0;
    wr_u16(y, 0, f32_to_f16(d * 1.125));
    let id = 1.0 / d;
    for ib in 0..8 {
        let mut ls = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 7) as u16;
        if shifts[ib] == -1 {
            ls |= 8;
        }
        let h = rd_u16(y, QH + 2 * ib) | ls << 12;
        wr_u16(y, QH + 2 * ib, h);
    }
}
