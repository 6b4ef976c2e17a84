//! IQ2_XS (ggml id 17): 2.3125 bpw, 8-dim lattice `iq2xs_grid` (512 points), u16 per 8 weights (9-bit index,
//! 7-bit parity sign code), 4-bit scale per 16 weights (spec/quants.md §5.8, §13.3).
//!
//! Mirrors ggml-quants.c `dequantize_row_iq2_xs`, `ggml_vec_dot_iq2_xs_q8_K` (scalar branch) and
//! `quantize_row_iq2_xs_impl` (ik_llama.cpp @ 8337e4cd).

// Index loops mirror the reference C loops one to one, which keeps the port reviewable.
#![allow(clippy::needless_range_loop)]

use std::mem::{offset_of, size_of};

use super::grids::{byte8, IQ2XS_GRID, KSIGNS_IQ2XS};
use super::iq_lattice::*;
use super::Format;
use crate::quant::convert::{f16_to_f32, f32_to_f16, nearest_int};
use crate::quant::QType;

#[repr(C)]
pub struct BlockIq2Xs {
    /// f16 super-block scale.
    pub d: [u8; 2],
    /// 32 × u16: grid index (bits 0–8) | sign code << 9.
    pub qs: [u8; 64],
    /// Per 32-block: low nibble = scale of groups 0–1, high nibble = groups 2–3.
    pub scales: [u8; 8],
}

const SIZE: usize = size_of::<BlockIq2Xs>();
const _: () = assert!(SIZE == QType::IQ2_XS.traits().type_size);
const QS: usize = offset_of!(BlockIq2Xs, qs);
const SCALES: usize = offset_of!(BlockIq2Xs, scales);
/// ggml `GROUP_MAX_EPS`.
const GROUP_MAX_EPS: f32 = 1e-15;

lattice_format!(IQ2_XS);

fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = f16_to_f32(rd_u16(b, 0));
    for ib in 0..8 {
        let sc = b[SCALES + ib];
        let db = [d * (0.5 + (sc & 0xf) as f32) * 0.25, d * (0.5 + (sc >> 4) as f32) * 0.25];
        for l in 0..4 {
            let w = rd_u16(b, QS + 2 * (4 * ib + l));
            let grid = IQ2XS_GRID[(w & 511) as usize];
            let signs = KSIGNS_IQ2XS[(w >> 9) as usize];
            for j in 0..8 {
                let sign = if signs & (1 << j) != 0 { -1.0 } else { 1.0 };
                y[32 * ib + 8 * l + j] = db[l / 2] * byte8(grid, j) as f32 * sign;
            }
        }
    }
}

fn vec_dot(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (xb, yb) in q8k_blocks(n, x, y, SIZE) {
        let d = f16_to_f32(rd_u16(xb, 0)) * q8k_d(yb);
        let mut bsum = 0i32;
        for ib in 0..8 {
            let sc = xb[SCALES + ib];
            let ls = [2 * (sc & 0xf) as i32 + 1, 2 * (sc >> 4) as i32 + 1];
            for half in 0..2 {
                let mut sumi = 0i32;
                for l in 2 * half..2 * half + 2 {
                    let w = rd_u16(xb, QS + 2 * (4 * ib + l));
                    let grid = IQ2XS_GRID[(w & 511) as usize];
                    let signs = KSIGNS_IQ2XS[(w >> 9) as usize];
                    for j in 0..8 {
                        let v = byte8(grid, j) as i32 * q8k_q(yb, 32 * ib + 8 * l + j);
                        sumi += if signs & (1 << j) != 0 { -v } else { v };
                    }
                }
                bsum += sumi * ls[half];
            }
        }
        sumf += d * bsum as f32;
    }
    // Why 0.125: the grid bytes are 8× the lattice values.
    0.125 * sumf
}

fn weights16(xb: &[f32], qw: Option<&[f32]>, sigma2: f32) -> [f32; 16] {
    group_weights(xb, qw, sigma2, |x| 0.25 * sigma2 + x * x)
}

/// One super-block (ggml `quantize_row_iq2_xs_impl` loop body).
fn quantize_block(xbl: &[f32], qw: Option<&[f32]>, y: &mut [u8]) {
    const KMAXQ: i32 = 3;
    let lat = lattice_iq2xs();
    y.fill(0);
    let mut q2 = [0u16; 32];
    let mut scales = [0f32; 16];
    let mut max_scale = 0f32;
    let sigma2 = sum_sq(xbl) / QK_K as f32;

    for ib in 0..16 {
        let xb = &xbl[16 * ib..16 * ib + 16];
        let weight = weights16(xb, qw.map(|q| &q[16 * ib..16 * ib + 16]), sigma2);
        let waux = weight.map(f32::sqrt);
        let mut xval = [0f32; 16];
        let mut signs = [0u8; 2];
        even_signs(xb, &weight, &mut xval, &mut signs);
        let max = xval.iter().fold(xval[0], |m, &v| m.max(v));
        if max < GROUP_MAX_EPS {
            continue;
        }
        // Rough scale: best split of the sorted |x| into the three levels 1, 3, 5 (exhaustive, prefix sums).
        let mut idx = [0usize; 16];
        sort_idx(&xval, &mut idx);
        let (sumx, sumw): ([f32; 17], [f32; 17]) = sorted_prefix_sums(&idx, &xval, &weight);
        let (mut best, mut scale) = (0f32, 0f32);
        for i1 in 0..=16 {
            for i2 in i1..=16 {
                let sumqx = (sumx[i1] - sumx[0]) + (sumx[i2] - sumx[i1]) * 3.0 + (sumx[16] - sumx[i2]) * 5.0;
                let sumq2 = (sumw[i1] - sumw[0]) + (sumw[i2] - sumw[i1]) * 9.0 + (sumw[16] - sumw[i2]) * 25.0;
                if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                    scale = sumqx / sumq2;
                    best = scale * sumqx;
                }
            }
        }
        best = 0.0;
        let eff_max = scale * (2 * KMAXQ - 1) as f32;
        let mut l = [0i8; 16];
        let mut laux = [0i8; 16];
        let mut index = [0usize; 2];
        for is in -7..=7 {
            let id = ((2 * KMAXQ - 1) as f32 + is as f32 * 0.1) / eff_max;
            let this_scale = 1.0 / id;
            let aux_index = snap_groups(lat, &xval, &waux, id, this_scale, KMAXQ, &mut laux, &[false; 2]).map(|s| s.0);
            let (sumqx, sumq2) = sums_odd(&xval, &weight, &laux);
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                scale = sumqx / sumq2;
                best = scale * sumqx;
                l = laux;
                index = aux_index;
            }
        }
        if scale != 0.0 {
            for _ in 0..3 {
                let id = 1.0 / scale;
                let aux_index = snap_groups(lat, &xval, &waux, id, scale, KMAXQ, &mut laux, &[false; 2]).map(|s| s.0);
                if aux_index == index {
                    break;
                }
                let (sumqx, sumq2) = sums_odd(&xval, &weight, &laux);
                if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                    scale = sumqx / sumq2;
                    best = scale * sumqx;
                    l = laux;
                    index = aux_index;
                } else {
                    break;
                }
            }
        }
        if scale < 0.0 {
            scale = -scale;
            signs = signs.map(|s| !s & 127);
        }
        if !scale.is_finite() {
            // Only reachable with all-zero importance weights or non-finite input (the reference aborts).
            scale = 0.0;
        }
        for k in 0..2 {
            let gi = lat.on_grid_index(&l[8 * k..8 * k + 8]);
            q2[2 * ib + k] = gi as u16 | ((signs[k] as u16) << 9);
        }
        scales[ib] = scale;
        max_scale = max_scale.max(scale);
    }

    if max_scale == 0.0 {
        return;
    }
    // Why 31 = 2·15 + 1: the largest odd block multiplier a 4-bit scale encodes.
    let d = max_scale / 31.0;
    wr_u16(y, 0, f32_to_f16(d));
    let id = 1.0 / d;
    let (mut sumqx, mut sumq2) = (0f32, 0f32);
    for ib in 0..16 {
        let ls = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
        y[SCALES + ib / 2] |= (ls as u8) << (4 * (ib % 2));
        let ls = (2 * ls + 1) as f32;
        let xb = &xbl[16 * ib..16 * ib + 16];
        let weight = weights16(xb, qw.map(|q| &q[16 * ib..16 * ib + 16]), sigma2);
        for k in 0..2 {
            let w = q2[2 * ib + k];
            let grid = IQ2XS_GRID[(w & 511) as usize];
            let signs = KSIGNS_IQ2XS[(w >> 9) as usize];
            for j in 0..8 {
                let sign = if signs & (1 << j) != 0 { -1.0 } else { 1.0 };
                let q = 0.125 * ls * byte8(grid, j) as f32 * sign;
                let wt = weight[8 * k + j];
                sumqx += wt * q * xb[8 * k + j];
                sumq2 += wt * q * q;
            }
        }
    }
    for (i, v) in q2.iter().enumerate() {
        wr_u16(y, QS + 2 * i, *v);
    }
    if sumq2 > 0.0 {
        // ik refits the super-scale by least squares over the decoded values; 1.05 is its empirical fudge factor.
        wr_u16(y, 0, f32_to_f16(1.05 * sumqx / sumq2));
    }
}
