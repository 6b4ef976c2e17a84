//! IQ2_XXS (ggml id 16): 2.0625 bpw, 8-dim lattice `iq2xxs_grid` (256 points), 7-bit parity sign codes,
//! 4-bit scale per 32 weights (spec/quants.md §5.7, §13.3).
//!
//! Mirrors ggml-quants.c `dequantize_row_iq2_xxs`, `ggml_vec_dot_iq2_xxs_q8_K` (scalar branch) and
//! `quantize_row_iq2_xxs_impl` (ik_llama.cpp @ 8337e4cd).

// Index loops mirror the reference C loops one to one, which keeps the port reviewable.
#![allow(clippy::needless_range_loop)]

use std::mem::{offset_of, size_of};

use super::grids::{byte8, IQ2XXS_GRID, KSIGNS_IQ2XS};
use super::iq_lattice::*;
use super::Format;
use crate::quant::convert::{f16_to_f32, f32_to_f16, nearest_int};
use crate::quant::QType;

#[repr(C)]
pub struct BlockIq2Xxs {
    /// f16 super-block scale.
    pub d: [u8; 2],
    /// Per 32-block: u32 of four grid indices, u32 of four 7-bit sign codes + 4-bit scale (bits 28–31).
    pub qs: [u8; 64],
}

const SIZE: usize = size_of::<BlockIq2Xxs>();
const _: () = assert!(SIZE == QType::IQ2_XXS.traits().type_size);
const QS: usize = offset_of!(BlockIq2Xxs, qs);
/// Groups whose largest |x| is below this are stored as zero-scale (ggml `GROUP_MAX_EPS`).
const GROUP_MAX_EPS: f32 = 1e-15;

lattice_format!(IQ2_XXS);

fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = f16_to_f32(rd_u16(b, 0));
    for ib in 0..8 {
        let a = rd_u32(b, QS + 8 * ib);
        let s = rd_u32(b, QS + 8 * ib + 4);
        let db = d * (0.5 + (s >> 28) as f32) * 0.25;
        for l in 0..4 {
            let grid = IQ2XXS_GRID[((a >> (8 * l)) & 255) as usize];
            let signs = KSIGNS_IQ2XS[((s >> (7 * l)) & 127) as usize];
            for j in 0..8 {
                let sign = if signs & (1 << j) != 0 { -1.0 } else { 1.0 };
                y[32 * ib + 8 * l + j] = db * byte8(grid, j) as f32 * sign;
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
            let a = rd_u32(xb, QS + 8 * ib);
            let s = rd_u32(xb, QS + 8 * ib + 4);
            let ls = (2 * (s >> 28) + 1) as i32;
            let mut sumi = 0i32;
            for l in 0..4 {
                let grid = IQ2XXS_GRID[((a >> (8 * l)) & 255) as usize];
                let signs = KSIGNS_IQ2XS[((s >> (7 * l)) & 127) as usize];
                for j in 0..8 {
                    let v = byte8(grid, j) as i32 * q8k_q(yb, 32 * ib + 8 * l + j);
                    sumi += if signs & (1 << j) != 0 { -v } else { v };
                }
            }
            bsum += sumi * ls;
        }
        sumf += d * bsum as f32;
    }
    // Why 0.125: the grid bytes are 8× the lattice values (`db` carries the 0.25·(0.5+s) = (2s+1)/8 factor).
    0.125 * sumf
}

/// One super-block (ggml `quantize_row_iq2_xxs_impl` loop body).
fn quantize_block(xbl: &[f32], qw: Option<&[f32]>, y: &mut [u8]) {
    const KMAXQ: i32 = 3;
    let lat = lattice_iq2xxs();
    y.fill(0);
    let mut q2 = [0u32; 16];
    let mut scales = [0f32; 8];
    let mut max_scale = 0f32;
    let sigma2 = sum_sq(xbl) / QK_K as f32;

    for ib in 0..8 {
        let xb = &xbl[32 * ib..32 * ib + 32];
        let weight: [f32; 32] = group_weights(xb, qw.map(|q| &q[32 * ib..32 * ib + 32]), sigma2, |x| 0.25 * sigma2 + x * x);
        let waux = weight.map(f32::sqrt);
        let mut xval = [0f32; 32];
        let mut signs = [0u8; 4];
        even_signs(xb, &weight, &mut xval, &mut signs);
        let max = xval.iter().fold(xval[0], |m, &v| m.max(v));
        if max < GROUP_MAX_EPS {
            continue;
        }
        let mut lq = [0u8; 32];
        let mut scale = make_qp_quants_lattice(&xval, KMAXQ + 1, &mut lq, &weight);
        let mut l = lq.map(|v| v as i8);
        let eff_max = scale * KMAXQ as f32;
        let mut best = 0f32;
        let mut laux = [0i8; 32];
        for is in -6..=6 {
            let id = ((2 * KMAXQ - 1) as f32 + is as f32 * 0.1) / eff_max;
            let this_scale = 1.0 / id;
            snap_groups(lat, &xval, &waux, id, this_scale, KMAXQ, &mut laux, &[false; 4]);
            let (sumqx, sumq2) = sums_odd(&xval, &weight, &laux);
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                scale = sumqx / sumq2;
                best = scale * sumqx;
                l = laux;
            }
        }
        if scale > 0.0 {
            let id = 1.0 / scale;
            snap_groups(lat, &xval, &waux, id, scale, KMAXQ, &mut l, &[false; 4]);
            let (sumqx, sumq2) = sums_odd(&xval, &weight, &l);
            if sumq2 > 0.0 {
                scale = sumqx / sumq2;
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
        for k in 0..4 {
            let gi = lat.on_grid_index(&l[8 * k..8 * k + 8]);
            q2[2 * ib] |= (gi as u32) << (8 * k);
            q2[2 * ib + 1] |= (signs[k] as u32) << (7 * k);
        }
        scales[ib] = scale;
        max_scale = max_scale.max(scale);
    }

    if max_scale == 0.0 {
        return;
    }
    // Why 31: the block scale decodes as d·(2s+1) (up to a constant) and 31 = 2·15 + 1 is the largest 4-bit s.
    let d = max_scale / 31.0;
    wr_u16(y, 0, f32_to_f16(d));
    let id = 1.0 / d;
    for ib in 0..8 {
        let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
        q2[2 * ib + 1] |= (l as u32) << 28;
    }
    for (i, v) in q2.iter().enumerate() {
        wr_u32(y, QS + 4 * i, *v);
    }
}
