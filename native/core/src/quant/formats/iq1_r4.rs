//! IQ1_S_R4 and IQ1_M_R4 (spec/quants.md §8.3, §13.7): 4-row groups with an f16 scale per row and 32-weight
//! blocks on the iq1s grid — new formats, not re-packings of IQ1_S / IQ1_M. Scalar dequantize and quantize.
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`quantize_iq1_s_r4`, `dequantize_row_iq1_s_r4`,
//! `quantize_iq1_m_r4`, `dequantize_row_iq1_m_r4`). The block searches are those of IQ1_S (one 32-block) and
//! IQ1_M (two 16-halves), from `iq1_s` / `iq1_m`.
//!
//! Group = `d[4]` (f16) then per 32 columns one block: IQ1_S_R4 qs[16] @0, qh u16[4] @16 (24 B); IQ1_M_R4
//! qs[16] @0, qh[8] @16, scales[4] @24 (28 B). Row `k` of the group owns the bytes/words with index `k mod 4`.

use super::common::{rd_f16, wr_f16};
use super::grids::{byte8, IQ1S_GRID};
use super::{iq1_m, iq1_s, Format};
use crate::quant::convert::nearest_int;
use crate::quant::QType;

const S_BYTES: usize = 24;
const M_BYTES: usize = 28;
const _: () = assert!(4 * QType::IQ1_S_R4.traits().type_size == S_BYTES && QType::IQ1_S_R4.traits().row_meta == 2);
const _: () = assert!(4 * QType::IQ1_M_R4.traits().type_size == M_BYTES && QType::IQ1_M_R4.traits().row_meta == 2);
const DELTA: f32 = 0.125;
/// The iq1s grid entry whose 8 values are all 0: what the reference stores for an all-zero block.
const ZERO_INDEX: u16 = 1029;

#[inline]
fn grid(i: usize, j: usize) -> f32 {
    byte8(IQ1S_GRID[i], j) as i8 as f32
}

fn groups(src: &[u8], ne0: usize, bytes: usize) -> impl Iterator<Item = &[u8]> {
    src.chunks_exact(8 + ne0 / 32 * bytes)
}

fn dequantize_iq1_s_r4(src: &[u8], dst: &mut [f32], ne0: usize) {
    for (g, y) in groups(src, ne0, S_BYTES).zip(dst.chunks_exact_mut(4 * ne0)) {
        for (ib, b) in g[8..].chunks_exact(S_BYTES).enumerate() {
            for k in 0..4 {
                let h = u16::from_le_bytes([b[16 + 2 * k], b[17 + 2 * k]]);
                let dl = rd_f16(g, 2 * k) * (2 * ((h >> 12) & 7) + 1) as f32;
                let delta = if h & 0x8000 != 0 { -DELTA } else { DELTA };
                for l in 0..4 {
                    let idx = b[4 * l + k] as usize | ((((h >> (3 * l)) & 7) as usize) << 8);
                    for j in 0..8 {
                        y[k * ne0 + 32 * ib + 8 * l + j] = dl * (grid(idx, j) + delta);
                    }
                }
            }
        }
    }
}

fn dequantize_iq1_m_r4(src: &[u8], dst: &mut [f32], ne0: usize) {
    for (g, y) in groups(src, ne0, M_BYTES).zip(dst.chunks_exact_mut(4 * ne0)) {
        for (ib, b) in g[8..].chunks_exact(M_BYTES).enumerate() {
            for k in 0..4 {
                let d = rd_f16(g, 2 * k);
                let dl = [d * (b[24 + k] & 15) as f32, d * (b[24 + k] >> 4) as f32];
                for i in 0..2 {
                    let qh = b[16 + 4 * i + k];
                    let i1 = b[8 * i + k] as usize | (((qh & 7) as usize) << 8);
                    let i2 = b[8 * i + k + 4] as usize | ((((qh >> 4) & 7) as usize) << 8);
                    let d1 = if qh & 0x08 != 0 { -DELTA } else { DELTA };
                    let d2 = if qh & 0x80 != 0 { -DELTA } else { DELTA };
                    let o = k * ne0 + 32 * ib + 16 * i;
                    for j in 0..8 {
                        y[o + j] = dl[i] * (grid(i1, j) + d1);
                        y[o + 8 + j] = dl[i] * (grid(i2, j) + d2);
                    }
                }
            }
        }
    }
}

/// Block weights `qw·sqrt(σ² + x²)` (σ² = 1.5·mean x² of the block), or `sqrt(σ² + x²)` without an imatrix
/// or where the imatrix vanishes on the block's non-zero values (each `[a, b)` of `ranges` checked separately).
fn weights(xb: &[f32], qw: Option<&[f32]>, sigma2: f32, ranges: &[(usize, usize)]) -> [f32; 32] {
    let base = |j: usize| (sigma2 + xb[j] * xb[j]).sqrt();
    let mut w: [f32; 32] = core::array::from_fn(|j| qw.map_or(base(j), |q| q[j] * base(j)));
    if qw.is_some() {
        for &(a, b) in ranges {
            let swx = (a..b).fold(0f32, |s, j| s + w[j] * xb[j].abs());
            if swx < 1e-14 {
                (a..b).for_each(|j| w[j] = base(j));
            }
        }
    }
    w
}

fn quantize_iq1_s_r4(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let nblk = ne0 / 32;
    let mut scales = vec![0f32; 4 * nblk];
    for (x, g) in src.chunks_exact(4 * ne0).zip(dst.chunks_exact_mut(8 + nblk * S_BYTES)) {
        g.fill(0);
        let mut max = [0f32; 4];
        for ib in 0..nblk {
            let b = &mut g[8 + S_BYTES * ib..8 + S_BYTES * (ib + 1)];
            for k in 0..4 {
                let xb = &x[k * ne0 + 32 * ib..k * ne0 + 32 * ib + 32];
                let sumx2 = xb.iter().fold(0f32, |s, &v| s + v * v);
                let (index, shift, scale) = if sumx2 < 1e-14 {
                    ([ZERO_INDEX; 4], 1, 0.0)
                } else {
                    let w = weights(xb, imatrix.map(|q| &q[32 * ib..]), 1.5 * sumx2 / 32.0, &[(0, 32)]);
                    let blk = iq1_s::process_block(xb, &w);
                    (blk.index, blk.shift, blk.scale)
                };
                scales[4 * ib + k] = scale;
                max[k] = max[k].max(scale);
                let mut h = 0u16;
                for (i, &ix) in index.iter().enumerate() {
                    b[4 * i + k] = ix as u8;
                    h |= (ix >> 8) << (3 * i);
                }
                if shift < 0 {
                    h |= 0x8000;
                }
                b[16 + 2 * k..18 + 2 * k].copy_from_slice(&h.to_le_bytes());
            }
        }
        finish(g, &max, S_BYTES, |k, invd, ib, b| {
            // why 0.5·(s − 1): odd multipliers 2·ls + 1, ls 0…7
            let ls = nearest_int(0.5 * (scales[4 * ib + k] * invd - 1.0)).clamp(0, 7) as u16;
            let h = u16::from_le_bytes([b[16 + 2 * k], b[17 + 2 * k]]) | ls << 12;
            b[16 + 2 * k..18 + 2 * k].copy_from_slice(&h.to_le_bytes());
        });
    }
}

fn quantize_iq1_m_r4(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    // Shift-sign bits of qh for shift combinations 0…3 (bit 3: first group negative, bit 7: second).
    const MASKS: [u8; 4] = [0x00, 0x80, 0x08, 0x88];
    let nblk = ne0 / 32;
    let mut scales = vec![0f32; 8 * nblk];
    for (x, g) in src.chunks_exact(4 * ne0).zip(dst.chunks_exact_mut(8 + nblk * M_BYTES)) {
        g.fill(0);
        let mut max = [0f32; 4];
        for ib in 0..nblk {
            let b = &mut g[8 + M_BYTES * ib..8 + M_BYTES * (ib + 1)];
            for k in 0..4 {
                let xb = &x[k * ne0 + 32 * ib..k * ne0 + 32 * ib + 32];
                let sl = xb[..16].iter().fold(0f32, |s, &v| s + v * v);
                let sh = xb[16..].iter().fold(0f32, |s, &v| s + v * v);
                let mut index = [ZERO_INDEX; 4];
                let mut shifts = [0usize; 2];
                let s1 = 8 * ib + 2 * k + 1;
                scales[s1 - 1] = 0.0;
                scales[s1] = 0.0;
                if sl + sh >= 1e-14 {
                    let w = weights(xb, imatrix.map(|q| &q[32 * ib..]), 1.5 * (sl + sh) / 32.0, &[(0, 16), (16, 32)]);
                    for (h, s2) in [sl, sh].into_iter().enumerate() {
                        if s2 > 1e-14 {
                            let blk = iq1_m::process_block(&xb[16 * h..16 * h + 16], &w[16 * h..16 * h + 16]);
                            scales[8 * ib + 2 * k + h] = blk.scale;
                            index[2 * h..2 * h + 2].copy_from_slice(&blk.index);
                            shifts[h] = blk.shift;
                        }
                    }
                }
                max[k] = max[k].max(scales[s1 - 1]).max(scales[s1]);
                for (i, &ix) in index.iter().enumerate() {
                    b[4 * i + k] = ix as u8;
                }
                for i in 0..2 {
                    b[16 + 4 * i + k] = (index[2 * i] >> 8) as u8 | ((index[2 * i + 1] >> 8) << 4) as u8 | MASKS[shifts[i]];
                }
            }
        }
        finish(g, &max, M_BYTES, |k, invd, ib, b| {
            let l1 = nearest_int(scales[8 * ib + 2 * k] * invd).clamp(0, 15) as u8;
            let l2 = nearest_int(scales[8 * ib + 2 * k + 1] * invd).clamp(0, 15) as u8;
            b[24 + k] = l1 | (l2 << 4);
        });
    }
}

/// Row scales `d[k] = 1.0625·max_k/15` (ik's empirical factor), then `put(k, 15/max_k, ib, block)` for every
/// row `k` and block `ib` of the group (blocks of `bytes`).
fn finish(g: &mut [u8], max: &[f32; 4], bytes: usize, mut put: impl FnMut(usize, f32, usize, &mut [u8])) {
    for (k, &m) in max.iter().enumerate() {
        wr_f16(g, 2 * k, 1.0625 * m / 15.0);
    }
    for (ib, b) in g[8..].chunks_exact_mut(bytes).enumerate() {
        for (k, &m) in max.iter().enumerate() {
            put(k, if m != 0.0 { 15.0 / m } else { 0.0 }, ib, b);
        }
    }
}

pub static IQ1_S_R4: Format = Format {
    qtype: QType::IQ1_S_R4,
    dequantize: dequantize_iq1_s_r4,
    quantize: Some(quantize_iq1_s_r4),
    vec_dot_type: QType::Q8_K128,
    vec_dot: None,
};
pub static IQ1_M_R4: Format = Format {
    qtype: QType::IQ1_M_R4,
    dequantize: dequantize_iq1_m_r4,
    quantize: Some(quantize_iq1_m_r4),
    vec_dot_type: QType::Q8_K128,
    vec_dot: None,
};
