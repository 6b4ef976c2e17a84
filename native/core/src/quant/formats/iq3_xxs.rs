//! IQ3_XXS (ggml id 18): 3.0625 bpw, 4-dim lattice `iq3xxs_grid` (256 points), 7-bit parity sign codes,
//! 4-bit scale per 32 weights (spec/quants.md §5.10, §13.3).
//!
//! Mirrors ggml-quants.c `dequantize_row_iq3_xxs`, `ggml_vec_dot_iq3_xxs_q8_K` (scalar branch) and
//! `quantize_row_iq3_xxs_impl(256, …)` (ik_llama.cpp @ 8337e4cd).

// Index loops mirror the reference C loops one to one, which keeps the port reviewable.
#![allow(clippy::needless_range_loop)]

use std::mem::{offset_of, size_of};

use super::grids::{byte4, IQ3XXS_GRID, KSIGNS_IQ2XS};
use super::iq_lattice::*;
use super::Format;
use crate::quant::convert::{f16_to_f32, f32_to_f16, nearest_int};
use crate::quant::QType;

#[repr(C)]
pub struct BlockIq3Xxs {
    /// f16 super-block scale.
    pub d: [u8; 2],
    /// Bytes 0–63: grid indices (one per 4 weights); bytes 64–95: per 32-block u32 = four 7-bit sign codes |
    /// 4-bit scale << 28.
    pub qs: [u8; 96],
}

const SIZE: usize = size_of::<BlockIq3Xxs>();
const _: () = assert!(SIZE == QType::IQ3_XXS.traits().type_size);
const QS: usize = offset_of!(BlockIq3Xxs, qs);
/// Offset of the scales-and-signs words.
const SAS: usize = QS + 64;
/// ggml `GROUP_MAX_EPS_IQ3_XXS`.
const GROUP_MAX_EPS: f32 = 1e-8;

lattice_format!(IQ3_XXS);

fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = f16_to_f32(rd_u16(b, 0));
    for ib in 0..8 {
        let w = rd_u32(b, SAS + 4 * ib);
        let db = d * (0.5 + (w >> 28) as f32) * 0.5;
        for l in 0..4 {
            let signs = KSIGNS_IQ2XS[((w >> (7 * l)) & 127) as usize];
            let g = [IQ3XXS_GRID[b[QS + 8 * ib + 2 * l] as usize], IQ3XXS_GRID[b[QS + 8 * ib + 2 * l + 1] as usize]];
            for j in 0..8 {
                let sign = if signs & (1 << j) != 0 { -1.0 } else { 1.0 };
                y[32 * ib + 8 * l + j] = db * byte4(g[j / 4], j % 4) as f32 * sign;
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
            let w = rd_u32(xb, SAS + 4 * ib);
            let ls = (2 * (w >> 28) + 1) as i32;
            let mut sumi = 0i32;
            for l in 0..4 {
                let signs = KSIGNS_IQ2XS[((w >> (7 * l)) & 127) as usize];
                let g = [IQ3XXS_GRID[xb[QS + 8 * ib + 2 * l] as usize], IQ3XXS_GRID[xb[QS + 8 * ib + 2 * l + 1] as usize]];
                for j in 0..8 {
                    let v = byte4(g[j / 4], j % 4) as i32 * q8k_q(yb, 32 * ib + 8 * l + j);
                    sumi += if signs & (1 << j) != 0 { -v } else { v };
                }
            }
            bsum += sumi * ls;
        }
        sumf += d * bsum as f32;
    }
    // Why 0.25: `db` = d·(0.5+s)·0.5 = d·(2s+1)/4.
    0.25 * sumf
}

/// One super-block (ggml `quantize_row_iq3_xxs_impl` loop body, grid_size 256).
fn quantize_block(xbl: &[f32], qw: Option<&[f32]>, y: &mut [u8]) {
    const KMAXQ: i32 = 8;
    const SEARCH: ScaleSearch = ScaleSearch { kmax: KMAXQ, nstep: 15, step: 0.2, on_grid_init: false, resnap_all: false };
    let lat = lattice_iq3xxs();
    y.fill(0);
    let mut sas = [0u32; 8];
    let mut scales = [0f32; 8];
    let mut max_scale = 0f32;
    let sigma2 = 2.0 * sum_sq(xbl) / QK_K as f32;

    for ib in 0..8 {
        let xb = &xbl[32 * ib..32 * ib + 32];
        let weight: [f32; 32] = group_weights(xb, qw.map(|q| &q[32 * ib..32 * ib + 32]), sigma2, |x| x * x);
        let waux = weight.map(f32::sqrt);
        let mut xval = [0f32; 32];
        let mut signs = [0u8; 4];
        even_signs(xb, &weight, &mut xval, &mut signs);
        let max = xval.iter().fold(xval[0], |m, &v| m.max(v));
        if max < GROUP_MAX_EPS {
            continue;
        }
        let (mut scale, l) = search_scale::<32, 8>(lat, &SEARCH, &xval, &weight, &waux, max);
        if scale < 0.0 {
            scale = -scale;
            signs = signs.map(|s| !s & 127);
        }
        if !scale.is_finite() {
            // Only reachable with all-zero importance weights or non-finite input (the reference aborts).
            scale = 0.0;
        }
        for k in 0..8 {
            y[QS + 8 * ib + k] = lat.on_grid_index(&l[4 * k..4 * k + 4]) as u8;
        }
        sas[ib] = signs[0] as u32 | (signs[1] as u32) << 7 | (signs[2] as u32) << 14 | (signs[3] as u32) << 21;
        scales[ib] = scale;
        max_scale = max_scale.max(scale);
    }

    if max_scale == 0.0 {
        y[QS..].fill(0);
        return;
    }
    // Why 31 = 2·15 + 1: the largest odd block multiplier a 4-bit scale encodes; 1.0125 is ik's empirical factor.
    let d = max_scale / 31.0;
    wr_u16(y, 0, f32_to_f16(d * 1.0125));
    let id = 1.0 / d;
    for ib in 0..8 {
        let ls = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
        wr_u32(y, SAS + 4 * ib, sas[ib] | (ls as u32) << 28);
    }
}
