//! Q1_0_G128 (spec/quants.md §4.11; mainline's Q1_0): 128-weight blocks of sign bits times one f16 scale.
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`quantize_row_q1_0_g128`, `dequantize_row_q1_0_g128`,
//! `vec_dot_q1_0_g128_q8_0`). Block: f16 `d` @0, `qs[16]` @2; weight `e` is `+d` when bit `e % 8` of `qs[e/8]` is
//! set, else `−d`. The quantizer is the reference's (`d` = mean |x|, bit set iff x ≥ 0; no imatrix).

use super::common::{rd_f16, wr_f16};
use super::Format;
use crate::quant::QType;

const QK: usize = 128;
const BYTES: usize = 18;
const _: () = assert!(QType::Q1_0_G128.traits().type_size == BYTES && QType::Q1_0_G128.traits().block == QK);

fn dequantize(src: &[u8], dst: &mut [f32], _ne0: usize) {
    for (b, y) in src.chunks_exact(BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = rd_f16(b, 0);
        for (e, v) in y.iter_mut().enumerate() {
            *v = if (b[2 + e / 8] >> (e % 8)) & 1 != 0 { d } else { -d };
        }
    }
}

fn quantize(src: &[f32], dst: &mut [u8], _ne0: usize, _imatrix: Option<&[f32]>) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(BYTES)) {
        let sum = x.iter().fold(0f32, |s, v| s + v.abs());
        wr_f16(b, 0, sum / QK as f32);
        b[2..].fill(0);
        for (e, &v) in x.iter().enumerate() {
            if v >= 0.0 {
                b[2 + e / 8] |= 1 << (e % 8);
            }
        }
    }
}

/// With Q8_0 activations (4 blocks of 32 per weight block): `Σ d·d8 · Σ ±q8`.
fn vec_dot(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let mut sumf = 0f32;
    for (bx, by) in x.chunks_exact(BYTES).zip(y.chunks_exact(4 * 34)).take(n / QK) {
        let dx = rd_f16(bx, 0);
        for (k, b8) in by.chunks_exact(34).enumerate() {
            let s: i32 = (0..32)
                .map(|j| {
                    let e = 32 * k + j;
                    let q = b8[2 + j] as i8 as i32;
                    if (bx[2 + e / 8] >> (e % 8)) & 1 != 0 {
                        q
                    } else {
                        -q
                    }
                })
                .sum();
            sumf += dx * rd_f16(b8, 0) * s as f32;
        }
    }
    sumf
}

pub static Q1_0_G128: Format =
    Format { qtype: QType::Q1_0_G128, dequantize, quantize: Some(quantize), vec_dot_type: QType::Q8_0, vec_dot: Some(vec_dot) };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_vec_dot() {
        let n = 256;
        let x: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let a: Vec<f32> = (0..n).map(|i| ((i * 53 % 89) as f32 - 44.0) / 30.0).collect();
        let mut q = vec![0u8; n / QK * BYTES];
        quantize(&x, &mut q, n, None);
        let mut y = vec![0f32; n];
        dequantize(&q, &mut y, n);
        for (xb, yb) in x.chunks_exact(QK).zip(y.chunks_exact(QK)) {
            let d = xb.iter().map(|v| v.abs()).sum::<f32>() / QK as f32;
            for (xi, yi) in xb.iter().zip(yb) {
                assert!((yi.abs() - d).abs() < 0.01 && (*xi >= 0.0) == (*yi > 0.0));
            }
        }
        let mut q8 = vec![0u8; n / 32 * 34];
        super::super::q8::quantize_q8_0(&a, &mut q8, n, None);
        let mut a8 = vec![0f32; n];
        super::super::q8::dequantize_q8_0(&q8, &mut a8, n);
        let want: f32 = y.iter().zip(&a8).map(|(p, r)| p * r).sum();
        let got = vec_dot(n, &q, &q8);
        assert!((got - want).abs() < 1e-3 * want.abs().max(1.0), "{got} vs {want}");
    }
}
