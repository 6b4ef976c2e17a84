//! IQ3_S (ggml id 21): 3.4375 bpw, 4-dim lattice `iq3s_grid` (512 points, 9-bit index split over `qs` and
//! `qh`), plain 8-bit sign masks, 4-bit scale per 32 weights (spec/quants.md §5.11, §13.3).
//!
//! Mirrors ggml-quants.c `dequantize_row_iq3_s`, `ggml_vec_dot_iq3_s_q8_K` (scalar branch) and
//! `quantize_row_iq3_s_impl(32, …)` (ik_llama.cpp @ 8337e4cd).

// Index loops mirror the reference C loops one to one, which keeps the port reviewable.
#![allow(clippy::needless_range_loop)]

use std::mem::{offset_of, size_of};

use super::grids::{byte4, IQ3S_GRID};
use super::iq_lattice::*;
use super::Format;
use crate::quant::convert::{f16_to_f32, f32_to_f16, nearest_int};
use crate::quant::QType;

#[repr(C)]
pub struct BlockIq3S {
    /// f16 super-block scale.
    pub d: [u8; 2],
    /// Low 8 bits of the grid indices (one per 4 weights).
    pub qs: [u8; 64],
    /// Per 32-block: bit k = index bit 8 of 4-group k.
    pub qh: [u8; 8],
    /// Sign masks, one per 8 weights.
    pub signs: [u8; 32],
    /// Per pair of 32-blocks: low nibble = even block, high nibble = odd block.
    pub scales: [u8; 4],
}

const SIZE: usize = size_of::<BlockIq3S>();
const _: () = assert!(SIZE == QType::IQ3_S.traits().type_size);
const QS: usize = offset_of!(BlockIq3S, qs);
const QH: usize = offset_of!(BlockIq3S, qh);
const SIGNS: usize = offset_of!(BlockIq3S, signs);
const SCALES: usize = offset_of!(BlockIq3S, scales);

lattice_format!(IQ3_S);

/// Grid entry of 4-group `k` (0…7) of 32-block `ib`.
#[inline]
fn grid(b: &[u8], ib: usize, k: usize) -> u32 {
    IQ3S_GRID[b[QS + 8 * ib + k] as usize | ((((b[QH + ib] >> k) & 1) as usize) << 8)]
}

fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = f16_to_f32(rd_u16(b, 0));
    for ib in 0..8 {
        let s = (b[SCALES + ib / 2] >> (4 * (ib % 2))) & 0xf;
        let db = d * (1 + 2 * s as i32) as f32;
        for l in 0..4 {
            let signs = b[SIGNS + 4 * ib + l];
            for j in 0..8 {
                let sign = if signs & (1 << j) != 0 { -1.0 } else { 1.0 };
                y[32 * ib + 8 * l + j] = db * byte4(grid(b, ib, 2 * l + j / 4), j % 4) as f32 * sign;
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
            let ls = 2 * ((xb[SCALES + ib / 2] >> (4 * (ib % 2))) & 0xf) as i32 + 1;
            let mut sumi = 0i32;
            for l in 0..4 {
                let signs = xb[SIGNS + 4 * ib + l];
                for j in 0..8 {
                    let v = byte4(grid(xb, ib, 2 * l + j / 4), j % 4) as i32 * q8k_q(yb, 32 * ib + 8 * l + j);
                    sumi += if signs & (1 << j) != 0 { -v } else { v };
                }
            }
            bsum += sumi * ls;
        }
        sumf += d * bsum as f32;
    }
    sumf
}

/// One super-block (ggml `quantize_row_iq3_s_impl` loop body, block_size 32).
///
/// Deliberate difference: the reference does not advance its `qs`/`signs` pointers past an all-zero 32-block,
/// shifting the data of every later block; here each block is written at its own offset.
fn quantize_block(xbl: &[f32], qw: Option<&[f32]>, y: &mut [u8]) {
    const KMAXQ: i32 = 8;
    // Unlike IQ3_XXS, the reference re-snaps every group at the best scale (its on-grid skip is commented out).
    const SEARCH: ScaleSearch = ScaleSearch { kmax: KMAXQ, nstep: 9, step: 0.2, on_grid_init: false, resnap_all: true };
    let lat = lattice_iq3s();
    y.fill(0);
    let mut scales = [0f32; 8];
    let mut max_scale = 0f32;
    let sigma2 = 2.0 * sum_sq(xbl) / QK_K as f32;

    for ib in 0..8 {
        let xb = &xbl[32 * ib..32 * ib + 32];
        let weight: [f32; 32] = group_weights(xb, qw.map(|q| &q[32 * ib..32 * ib + 32]), sigma2, |x| x * x);
        let waux = weight.map(f32::sqrt);
        let mut xval = [0f32; 32];
        let mut signs = [0u8; 4];
        plain_signs(xb, &mut xval, &mut signs);
        let max = xval.iter().fold(xval[0], |m, &v| m.max(v));
        if max == 0.0 {
            continue;
        }
        let (mut scale, l) = search_scale::<32, 8>(lat, &SEARCH, &xval, &weight, &waux, max);
        if scale < 0.0 {
            scale = -scale;
            signs = signs.map(|s| !s);
        }
        if !scale.is_finite() {
            // Only reachable with all-zero importance weights or non-finite input (the reference aborts).
            scale = 0.0;
        }
        for k in 0..8 {
            let gi = lat.on_grid_index(&l[4 * k..4 * k + 4]);
            y[QS + 8 * ib + k] = gi as u8;
            y[QH + ib] |= ((gi >> 8) as u8) << k;
        }
        y[SIGNS + 4 * ib..SIGNS + 4 * ib + 4].copy_from_slice(&signs);
        scales[ib] = scale;
        max_scale = max_scale.max(scale);
    }

    if max_scale == 0.0 {
        return;
    }
    // Why 31 = 2·15 + 1: the largest odd block multiplier a 4-bit scale encodes; 1.033 is ik's empirical factor.
    let d = max_scale / 31.0;
    wr_u16(y, 0, f32_to_f16(d * 1.033));
    let id = 1.0 / d;
    for ib in 0..8 {
        let ls = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
        y[SCALES + ib / 2] |= (ls as u8) << (4 * (ib % 2));
    }
}
