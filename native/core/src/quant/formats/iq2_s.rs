//! IQ2_S (ggml id 22): 2.5625 bpw, 8-dim lattice `iq2s_grid` (1024 points, 10-bit index split over `qs` and
//! `qh`), plain 8-bit sign masks, 4-bit scale per 16 weights (spec/quants.md §5.9, §13.3).
//!
//! Mirrors ggml-quants.c `dequantize_row_iq2_s`, `ggml_vec_dot_iq2_s_q8_K` (scalar branch) and
//! `quantize_row_iq2_s_impl` (ik_llama.cpp @ 8337e4cd).

// Index loops mirror the reference C loops one to one, which keeps the port reviewable.
#![allow(clippy::needless_range_loop)]

use std::mem::{offset_of, size_of};

use super::grids::{byte8, IQ2S_GRID};
use super::iq_lattice::*;
use super::Format;
use crate::quant::convert::{f16_to_f32, f32_to_f16, nearest_int};
use crate::quant::QType;

#[repr(C)]
pub struct BlockIq2S {
    /// f16 super-block scale.
    pub d: [u8; 2],
    /// Bytes 0–31: low 8 bits of the grid indices; bytes 32–63: sign masks.
    pub qs: [u8; 64],
    /// Per 32-block: bits 2l…2l+1 = index bits 8–9 of group l.
    pub qh: [u8; 8],
    /// Per 32-block: low nibble = scale of groups 0–1, high nibble = groups 2–3.
    pub scales: [u8; 8],
}

const SIZE: usize = size_of::<BlockIq2S>();
const _: () = assert!(SIZE == QType::IQ2_S.traits().type_size);
const QS: usize = offset_of!(BlockIq2S, qs);
const QH: usize = offset_of!(BlockIq2S, qh);
const SCALES: usize = offset_of!(BlockIq2S, scales);
/// ggml `GROUP_MAX_EPS_IQ2_S`.
const GROUP_MAX_EPS: f32 = 1e-8;

lattice_format!(IQ2_S);

#[inline]
fn grid_index(b: &[u8], ib: usize, l: usize) -> usize {
    b[QS + 4 * ib + l] as usize | ((((b[QH + ib] >> (2 * l)) & 3) as usize) << 8)
}

fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = f16_to_f32(rd_u16(b, 0));
    for ib in 0..8 {
        let sc = b[SCALES + ib];
        let db = [d * (0.5 + (sc & 0xf) as f32) * 0.25, d * (0.5 + (sc >> 4) as f32) * 0.25];
        for l in 0..4 {
            let grid = IQ2S_GRID[grid_index(b, ib, l)];
            let signs = b[QS + 32 + 4 * ib + l];
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
            let mut sumi = [0i32; 2];
            for l in 0..4 {
                let grid = IQ2S_GRID[grid_index(xb, ib, l)];
                let signs = xb[QS + 32 + 4 * ib + l];
                for j in 0..8 {
                    let v = byte8(grid, j) as i32 * q8k_q(yb, 32 * ib + 8 * l + j);
                    sumi[l / 2] += if signs & (1 << j) != 0 { -v } else { v };
                }
            }
            bsum += ls[0] * sumi[0] + ls[1] * sumi[1];
        }
        sumf += d * bsum as f32;
    }
    // Why 0.125: the grid bytes are 8× the lattice values.
    0.125 * sumf
}

/// One super-block (ggml `quantize_row_iq2_s_impl` loop body).
fn quantize_block(xbl: &[f32], qw: Option<&[f32]>, y: &mut [u8]) {
    const KMAXQ: i32 = 3;
    const SEARCH: ScaleSearch = ScaleSearch { kmax: KMAXQ, nstep: 9, step: 0.1, on_grid_init: true, resnap_all: false };
    let lat = lattice_iq2s();
    y.fill(0);
    let mut scales = [0f32; 16];
    let mut max_scale = 0f32;
    let sigma2 = 2.0 * sum_sq(xbl) / QK_K as f32;

    for ib in 0..16 {
        let xb = &xbl[16 * ib..16 * ib + 16];
        let weight: [f32; 16] = group_weights(xb, qw.map(|q| &q[16 * ib..16 * ib + 16]), sigma2, |x| 0.25 * sigma2 + x * x);
        let waux = weight.map(f32::sqrt);
        let mut xval = [0f32; 16];
        let mut signs = [0u8; 2];
        plain_signs(xb, &mut xval, &mut signs);
        let max = xval.iter().fold(xval[0], |m, &v| m.max(v));
        if max < GROUP_MAX_EPS {
            continue;
        }
        let (mut scale, l) = search_scale::<16, 2>(lat, &SEARCH, &xval, &weight, &waux, max);
        if scale < 0.0 {
            scale = -scale;
            signs = signs.map(|s| !s);
        }
        if !scale.is_finite() {
            // Only reachable with all-zero importance weights or non-finite input (the reference aborts).
            scale = 0.0;
        }
        for k in 0..2 {
            let gi = lat.on_grid_index(&l[8 * k..8 * k + 8]);
            let i8 = 2 * ib + k;
            y[QS + i8] = gi as u8;
            y[QH + i8 / 4] |= ((gi >> 8) as u8) << (2 * (i8 % 4));
            y[QS + 32 + i8] = signs[k];
        }
        scales[ib] = scale;
        max_scale = max_scale.max(scale);
    }

    if max_scale == 0.0 {
        return;
    }
    // Why 31 = 2·15 + 1: the largest odd block multiplier a 4-bit scale encodes; 0.9875 is ik's empirical factor.
    let d = max_scale / 31.0;
    wr_u16(y, 0, f32_to_f16(d * 0.9875));
    let id = 1.0 / d;
    for ib in 0..16 {
        let ls = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
        y[SCALES + ib / 2] |= (ls as u8) << (4 * (ib % 2));
    }
}
