//! Ternary (BitNet) types IQ1_BN and IQ2_BN (spec/quants.md §7.1, §7.2; IQ2_BN_R4 lives in `interleave.rs`).
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`IQ1BNQuantizer::quantize_one_row_1bn`,
//! `quantize_one_row_2bn`, `dequantize_row_iq1_bn`, `dequantize_row_iq2_bn`).
//!
//! Rows: IQ1_BN = f16 d, then 13-byte blocks of 64 trits (5 per byte, base-3 fixed point, + 4 in `extra`);
//! IQ2_BN = f32 d, then 16-byte blocks (weight 16s + j = bits 2s of qs[j]).
//! Why the scale is applied here although ik's CPU `to_float` ignores it: that function decodes from the start
//! of the buffer (header included) and omits `d`; all of ik's kernels and its CUDA dequantizer use `d·(t−1)`,
//! which is what inference must reproduce (spec §7.1 note).

use super::common::{rd_f16, rd_f32, wr_f16, wr_f32};
use super::Format;
use crate::quant::QType;

const QK: usize = 64;
const K_MULT: [u8; 5] = [81, 27, 9, 3, 1];
const K_NB: [i32; 6] = [1, 3, 9, 27, 81, 243];

#[inline]
fn trit(q: u8, j: usize) -> i32 {
    let v = q.wrapping_mul(K_MULT[j]) as u16;
    ((v + (v >> 1)) >> 7) as i32
}

#[inline]
fn ternary(v: f32, thresh: f32) -> i32 {
    if v.abs() < thresh {
        1
    } else if v < 0.0 {
        0
    } else {
        2
    }
}

fn row_max(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, v| m.max(v.abs()))
}

fn quantize_iq1_bn(src: &[f32], dst: &mut [u8], ne0: usize, _im: Option<&[f32]>) {
    let rs = 2 + ne0 / QK * 13;
    for (x, y) in src.chunks_exact(ne0).zip(dst.chunks_exact_mut(rs)) {
        let max = row_max(x);
        wr_f16(y, 0, max);
        let thresh = 0.5 * max;
        for (xb, yb) in x.chunks_exact(QK).zip(y[2..].chunks_exact_mut(13)) {
            let mut v13 = 0;
            for g in 0..4 {
                for k in 0..3 {
                    let mut idx = 0;
                    for j in 0..5 {
                        idx += K_NB[j] * ternary(xb[16 * g + 5 * k + j], thresh);
                    }
                    yb[3 * g + k] = ((256 * idx + K_NB[5] - 1) / K_NB[5]) as u8;
                }
                v13 += K_NB[g] * ternary(xb[16 * g + 15], thresh);
            }
            yb[12] = ((256 * v13 + K_NB[5] - 1) / K_NB[5]) as u8;
        }
    }
}

fn dequantize_iq1_bn(src: &[u8], dst: &mut [f32], ne0: usize) {
    let rs = 2 + ne0 / QK * 13;
    for (x, y) in src.chunks_exact(rs).zip(dst.chunks_exact_mut(ne0)) {
        let d = rd_f16(x, 0);
        for (xb, yb) in x[2..].chunks_exact(13).zip(y.chunks_exact_mut(QK)) {
            for g in 0..4 {
                for k in 0..3 {
                    for j in 0..5 {
                        yb[16 * g + 5 * k + j] = d * (trit(xb[3 * g + k], j) - 1) as f32;
                    }
                }
                yb[16 * g + 15] = d * (trit(xb[12], g) - 1) as f32;
            }
        }
    }
}

fn quantize_iq2_bn(src: &[f32], dst: &mut [u8], ne0: usize, _im: Option<&[f32]>) {
    let rs = 4 + ne0 / QK * 16;
    for (x, y) in src.chunks_exact(ne0).zip(dst.chunks_exact_mut(rs)) {
        let max = row_max(x);
        wr_f32(y, 0, max);
        let thresh = 0.5 * max;
        for (xb, yb) in x.chunks_exact(QK).zip(y[4..].chunks_exact_mut(16)) {
            for j in 0..16 {
                let mut b = 0;
                for s in 0..4 {
                    b |= ternary(xb[j + 16 * s], thresh) << (2 * s);
                }
                yb[j] = b as u8;
            }
        }
    }
}

fn dequantize_iq2_bn(src: &[u8], dst: &mut [f32], ne0: usize) {
    let rs = 4 + ne0 / QK * 16;
    for (x, y) in src.chunks_exact(rs).zip(dst.chunks_exact_mut(ne0)) {
        let d = rd_f32(x, 0);
        for (xb, yb) in x[4..].chunks_exact(16).zip(y.chunks_exact_mut(QK)) {
            for j in 0..16 {
                for s in 0..4 {
                    yb[j + 16 * s] = d * ((xb[j] >> (2 * s)) & 3) as f32 - d;
                }
            }
        }
    }
}

pub static IQ1_BN: Format = Format {
    qtype: QType::IQ1_BN,
    dequantize: dequantize_iq1_bn,
    quantize: Some(quantize_iq1_bn),
    vec_dot_type: QType::Q8_K64,
    vec_dot: None,
};
pub static IQ2_BN: Format = Format {
    qtype: QType::IQ2_BN,
    dequantize: dequantize_iq2_bn,
    quantize: Some(quantize_iq2_bn),
    vec_dot_type: QType::Q8_K64,
    vec_dot: None,
};
