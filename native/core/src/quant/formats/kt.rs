//! Trellis ("KT") types IQ1_KT, IQ2_KT, IQ3_KT, IQ4_KT: dequantization (spec/quants.md §6.12).
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`QuantizerIQKT::set_values` with `is_int = true`,
//! `dequantize_row_iq1_kt`, `dequantize_row_iq2_kt`, `dequantize_row_iq3_kt`, `dequantize_row_iq4_kt`).
//!
//! Every row starts with an f32 scale `d`; 256-weight blocks hold eight 32-blocks of 4 (IQ4_KT: 8) groups, each
//! group an index into an implicit codebook produced by a multiplicative generator (`gen`).
//! These follow the reference `to_float` exactly (`kScale = 1` for the integer trellis). The matmul kernels'
//! extra factors of §6.12.6 (IQ2_KT 1.05, IQ3_KT 1.01 on x86) are *not* applied here: they belong to the
//! kernels that reproduce ik's model outputs.
//!
//! The quantizers (§13.6) live in `kt_quant` / `kt_search`.

use super::common::rd_f32;
use super::kt_quant as kq;
use super::values::KVALUES_IQ4NL as IQ4K_VALUES;
use super::Format;
use crate::quant::QType;

/// Generator value `k` (0…g−1) of group index `idx` at offset `o` (spec §6.12.1), as the f32 the reference forms.
#[inline]
pub fn gen(idx: u32, o: u32, out: &mut [f32]) {
    let mut x = idx.wrapping_add(o);
    for v in out.iter_mut() {
        x = x.wrapping_mul(0xCBAC_1FED);
        let t = x & 0x3F3F_3F3F;
        let s = (t & 0xFF) + ((t >> 8) & 0xFF) + ((t >> 16) & 0xFF) + (t >> 24);
        *v = s as f32 - 126.0;
    }
}

fn rows(src: &[u8], dst: &mut [f32], ne0: usize, bs: usize, mut f: impl FnMut(&[u8], &mut [f32], f32)) {
    let rs = 4 + ne0 / 256 * bs;
    for (x, y) in src.chunks_exact(rs).zip(dst.chunks_exact_mut(ne0)) {
        let d = rd_f32(x, 0);
        for (xb, yb) in x[4..].chunks_exact(bs).zip(y.chunks_exact_mut(256)) {
            f(xb, yb, d);
        }
    }
}

fn dequantize_iq1_kt(src: &[u8], dst: &mut [f32], ne0: usize) {
    rows(src, dst, ne0, 56, |x, y, d| {
        let mut v = [0f32; 8];
        for b in 0..8 {
            let sl = d * IQ4K_VALUES[(x[b] & 15) as usize] as f32;
            for g in 0..4 {
                let idx = x[8 + 4 * b + g] as u32
                    | ((((x[40 + 4 * (b % 4) + g] >> (4 * (b / 4))) & 15) as u32) << 8)
                    | ((((x[b] >> (4 + g)) & 1) as u32) << 12);
                gen(idx, 4096, &mut v);
                for k in 0..8 {
                    y[32 * b + 8 * g + k] = sl * v[k];
                }
            }
        }
    });
}

fn dequantize_iq2_kt(src: &[u8], dst: &mut [f32], ne0: usize) {
    rows(src, dst, ne0, 68, |x, y, d| {
        let mut v = [0f32; 8];
        for b in 0..8 {
            let sl = d * IQ4K_VALUES[((x[b % 4] >> (4 * (b / 4))) & 15) as usize] as f32;
            for g in 0..4 {
                let o = 4 + 2 * (4 * b + g);
                gen(u16::from_le_bytes([x[o], x[o + 1]]) as u32, 4096, &mut v);
                for k in 0..8 {
                    y[32 * b + 8 * g + k] = sl * v[k];
                }
            }
        }
    });
}

fn dequantize_iq3_kt(src: &[u8], dst: &mut [f32], ne0: usize) {
    rows(src, dst, ne0, 100, |x, y, d| {
        let mut v = [0f32; 8];
        for b in 0..8 {
            let sl = d * ((x[b % 4] >> (4 * (b / 4))) & 15) as f32;
            for g in 0..4 {
                let o = 4 + 2 * (4 * b + g);
                gen(u16::from_le_bytes([x[o], x[o + 1]]) as u32, 4096, &mut v);
                for k in 0..8 {
                    let w = sl * v[k].abs();
                    y[32 * b + 8 * g + k] = if (x[68 + 8 * g + k] >> b) & 1 != 0 { -w } else { w };
                }
            }
        }
    });
}

fn dequantize_iq4_kt(src: &[u8], dst: &mut [f32], ne0: usize) {
    rows(src, dst, ne0, 128, |x, y, d| {
        let mut v = [0f32; 4];
        for b in 0..8 {
            let w = u32::from_le_bytes([x[4 * b], x[4 * b + 1], x[4 * b + 2], x[4 * b + 3]]);
            let o = if w & 1 != 0 { 32768 + 4096 } else { 4096 };
            let sl = d * (((w & 0xFF) >> 1) as i32 - 64) as f32;
            for g in 0..8 {
                let j = 8 * b + g;
                let idx = x[32 + j] as u32 | ((((x[96 + j % 32] >> (4 * (j / 32))) & 15) as u32) << 8) | (((w >> (8 + 3 * g)) & 7) << 12);
                gen(idx, o, &mut v);
                for k in 0..4 {
                    y[32 * b + 4 * g + k] = sl * v[k];
                }
            }
        }
    });
}

macro_rules! kt {
    ($q:ident, $deq:ident, $quant:ident) => {
        Format { qtype: QType::$q, dequantize: $deq, quantize: Some(kq::$quant), vec_dot_type: QType::Q8_2_X4, vec_dot: None }
    };
}

pub static IQ1_KT: Format = kt!(IQ1_KT, dequantize_iq1_kt, quantize_iq1_kt);
pub static IQ2_KT: Format = kt!(IQ2_KT, dequantize_iq2_kt, quantize_iq2_kt);
pub static IQ3_KT: Format = kt!(IQ3_KT, dequantize_iq3_kt, quantize_iq3_kt);
pub static IQ4_KT: Format = kt!(IQ4_KT, dequantize_iq4_kt, quantize_iq4_kt);

#[cfg(test)]
mod tests {
    use super::gen;

    /// spec/quants.md Appendix B.1.
    #[test]
    fn generator_vectors() {
        let cases: [(u32, u32, &[i32]); 8] = [
            (0, 4096, &[-47, -36, -39, -86, -38, -38, -47, -35]),
            (1, 4096, &[21, 1, 59, -23, 33, 8, 13, 43]),
            (65535, 4096, &[26, -32, -16, -9, -25, -62, 17, 10]),
            (8191, 4096, &[-17, -22, -28, 59, -59, -33, 51, 5]),
            (0, 4096, &[-47, -36, -39, -86]),
            (0, 36864, &[-40, -79, -43, -79]),
            (32767, 4096, &[-44, -54, -78, -15]),
            (32767, 36864, &[26, -32, -16, -9]),
        ];
        for (idx, o, want) in cases {
            let mut v = vec![0f32; want.len()];
            gen(idx, o, &mut v);
            let got: Vec<i32> = v.iter().map(|&f| f as i32).collect();
            assert_eq!(got, want, "idx {idx} o {o}");
        }
    }
}
