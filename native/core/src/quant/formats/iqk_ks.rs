//! The row-scale IQK types IQ4_KS, IQ4_KSS, IQ5_KS (f32 row scale) and IQ2_KS, IQ3_KS, IQ2_KL (f16 row scale)
//! (spec/quants.md §6.6–6.11): block decoders (dequantize and Q8_K vec_dot through `iqk_common`) and the
//! IQ4_KS / IQ5_KS file quantizers.
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`dequantize_row_iq{4_ks,4_kss,5_ks,2_ks,3_ks,2_kl}`,
//! `quantize_row_iq4_k_impl_bs128`, `quantize_row_iq5_ks_impl`).
//!
//! Row = row scale (f32 or f16) then blocks. Block layouts (byte offsets):
//! * IQ4_KS:  scales[8] @0, qs[128] @8 (136 B)          * IQ4_KSS: 64 u16 words @0 (128 B)
//! * IQ5_KS:  scales[8] @0, qs[128] @8, qh[32] @136 (168 B)
//! * IQ2_KS:  extra u16 @0, scales[4] @2, qs[64] @6 (70 B)
//! * IQ3_KS:  extra u16 @0, scales[4] @2, qs[64] @6, qh[32] @70 (102 B)
//! * IQ2_KL:  scales_h u16 @0, scales_l[4] @2, qs[64] @6, qh[16] @70 (86 B)

use super::common::{rows, wr_f32};
use super::iqk_common::{
    block_search, dequant_rows, row_weights, sigma2_a, vec_dot_rows, Levels, RowScale, IQ2KL, IQ2NL, IQ3NL, IQ4K, IQ5NL, QK_K,
};
use super::iqk_k::c32;
use crate::quant::convert::nearest_int;
use crate::quant::QType;

pub const IQ4_KS_BYTES: usize = 136;
pub const IQ4_KSS_BYTES: usize = 128;
pub const IQ5_KS_BYTES: usize = 168;
pub const IQ2_KS_BYTES: usize = 70;
pub const IQ3_KS_BYTES: usize = 102;
pub const IQ2_KL_BYTES: usize = 86;
const _: () = assert!(IQ4_KS_BYTES == QType::IQ4_KS.traits().type_size && QType::IQ4_KS.traits().row_meta == 4);
const _: () = assert!(IQ4_KSS_BYTES == QType::IQ4_KSS.traits().type_size && QType::IQ4_KSS.traits().row_meta == 4);
const _: () = assert!(IQ5_KS_BYTES == QType::IQ5_KS.traits().type_size && QType::IQ5_KS.traits().row_meta == 4);
const _: () = assert!(IQ2_KS_BYTES == QType::IQ2_KS.traits().type_size && QType::IQ2_KS.traits().row_meta == 2);
const _: () = assert!(IQ3_KS_BYTES == QType::IQ3_KS.traits().type_size && QType::IQ3_KS.traits().row_meta == 2);
const _: () = assert!(IQ2_KL_BYTES == QType::IQ2_KL.traits().type_size && QType::IQ2_KL.traits().row_meta == 2);

/// Scale and table half of a `_KS` 32-block scale byte: `(s & 0xFE) − 127`, shift flag = bit 0.
#[inline]
fn ks_scale(s: u8) -> (i32, usize) {
    ((s & 0xFE) as i32 - 127, (s & 1) as usize)
}

// ---------------------------------------------------------------- decoders

fn decode_iq4_ks(b: &[u8], v: &mut [i8; QK_K], sc: &mut [i32; 16]) -> Option<f32> {
    for ib in 0..8 {
        let (s, sh) = ks_scale(b[ib]);
        sc[2 * ib] = s;
        sc[2 * ib + 1] = s;
        for j in 0..16 {
            let q = b[8 + 16 * ib + j];
            v[32 * ib + j] = IQ4K[16 * sh + (q & 15) as usize];
            v[32 * ib + j + 16] = IQ4K[16 * sh + (q >> 4) as usize];
        }
    }
    None
}

/// IQ4_KSS word decode (§6.7): drop the scale bit, undo the Gray-like XOR.
#[inline]
fn kss_word(w: u16) -> u16 {
    let a = w & 0xFFFE;
    a ^ (a >> 1)
}

fn decode_iq4_kss(b: &[u8], v: &mut [i8; QK_K], sc: &mut [i32; 16]) -> Option<f32> {
    for ib in 0..8 {
        let mut s = 0u8;
        for i in 0..8 {
            let w = u16::from_le_bytes([b[16 * ib + 2 * i], b[16 * ib + 2 * i + 1]]);
            s |= ((w & 1) as u8) << i;
            let d = kss_word(w).to_le_bytes();
            // the decoded words, as 16 little-endian bytes, form an N16 block
            for (h, &byte) in d.iter().enumerate() {
                let j = 2 * i + h;
                v[32 * ib + j] = (byte & 15) as i8;
                v[32 * ib + j + 16] = (byte >> 4) as i8;
            }
        }
        let (scale, sh) = ks_scale(s);
        sc[2 * ib] = scale;
        sc[2 * ib + 1] = scale;
        for e in 32 * ib..32 * ib + 32 {
            v[e] = IQ4K[16 * sh + v[e] as usize];
        }
    }
    None
}

fn decode_iq5_ks(b: &[u8], v: &mut [i8; QK_K], sc: &mut [i32; 16]) -> Option<f32> {
    for ib in 0..8 {
        let (s, sh) = ks_scale(b[ib]);
        sc[2 * ib] = s;
        sc[2 * ib + 1] = s;
        for p in 0..32 {
            let lo = (b[8 + 32 * (ib / 2) + p] >> (4 * (ib % 2))) & 15;
            let hi = (b[136 + p] >> ib) & 1;
            v[32 * ib + p] = IQ5NL[32 * sh + (lo | (hi << 4)) as usize];
        }
    }
    None
}

fn decode_iq2_ks(b: &[u8], v: &mut [i8; QK_K], sc: &mut [i32; 16]) -> Option<f32> {
    let ex = u16::from_le_bytes([b[0], b[1]]);
    for ib in 0..8 {
        let s = ((b[2 + ib / 2] >> (4 * (ib % 2))) & 15) as i32 | ((((ex >> (8 + ib)) & 1) as i32) << 4);
        sc[2 * ib] = s - 16;
        sc[2 * ib + 1] = s - 16;
        let t = 4 * ((ex >> ib) & 1) as usize;
        for e in 32 * ib..32 * ib + 32 {
            v[e] = IQ2NL[t + c32(&b[6..70], e) as usize];
        }
    }
    None
}

fn decode_iq3_ks(b: &[u8], v: &mut [i8; QK_K], sc: &mut [i32; 16]) -> Option<f32> {
    let ex = u16::from_le_bytes([b[0], b[1]]);
    for ib in 0..8 {
        let s = ((b[2 + ib % 4] >> (4 * (ib / 4))) & 15) as i32 | ((((ex >> ib) & 1) as i32) << 4);
        sc[2 * ib] = s - 16;
        sc[2 * ib + 1] = s - 16;
        let t = 8 * ((ex >> (8 + ib)) & 1) as usize;
        for e in 32 * ib..32 * ib + 32 {
            let h = (b[70 + e % 32] >> ib) & 1;
            v[e] = IQ3NL[t + (c32(&b[6..70], e) | (h << 2)) as usize];
        }
    }
    None
}

fn decode_iq2_kl(b: &[u8], v: &mut [i8; QK_K], sc: &mut [i32; 16]) -> Option<f32> {
    let sh = u16::from_le_bytes([b[0], b[1]]);
    for ib in 0..8 {
        let ls = ((b[2 + ib % 4] >> (4 * (ib / 4))) & 15) as i32 | ((((sh >> (2 * ib)) & 3) as i32) << 4);
        sc[2 * ib] = ls - 32;
        sc[2 * ib + 1] = ls - 32;
        for j in 0..16 {
            let idx = ((b[6 + 16 * (ib / 2) + j] >> (4 * (ib % 2))) & 15) | (((b[70 + j] >> ib) & 1) << 4);
            let [p0, p1] = IQ2KL[idx as usize].to_le_bytes();
            v[32 * ib + 2 * j] = p0 as i8;
            v[32 * ib + 2 * j + 1] = p1 as i8;
        }
    }
    None
}

macro_rules! deq_dot {
    ($deq:ident, $dot:ident, $rs:ident, $bytes:expr, $dec:ident) => {
        pub fn $deq(src: &[u8], dst: &mut [f32], ne0: usize) {
            dequant_rows(src, dst, ne0, RowScale::$rs, $bytes, $dec);
        }
        pub fn $dot(n: usize, x: &[u8], y: &[u8]) -> f32 {
            vec_dot_rows(n, x, y, RowScale::$rs, $bytes, $dec)
        }
    };
}
deq_dot!(dequantize_iq4_ks, vec_dot_iq4_ks_q8_k, F32, IQ4_KS_BYTES, decode_iq4_ks);
deq_dot!(dequantize_iq4_kss, vec_dot_iq4_kss_q8_k, F32, IQ4_KSS_BYTES, decode_iq4_kss);
deq_dot!(dequantize_iq5_ks, vec_dot_iq5_ks_q8_k, F32, IQ5_KS_BYTES, decode_iq5_ks);
deq_dot!(dequantize_iq2_ks, vec_dot_iq2_ks_q8_k, F16, IQ2_KS_BYTES, decode_iq2_ks);
deq_dot!(dequantize_iq3_ks, vec_dot_iq3_ks_q8_k, F16, IQ3_KS_BYTES, decode_iq3_ks);
deq_dot!(dequantize_iq2_kl, vec_dot_iq2_kl_q8_k, F16, IQ2_KL_BYTES, decode_iq2_kl);

// ---------------------------------------------------------------- IQ4_KS / IQ5_KS quantizers

/// Shared body of `quantize_row_iq4_k_impl_bs128` (IQ4_KS, ntry 7) and `quantize_row_iq5_ks_impl` (ntry 5):
/// per 32-block search (weights `qw·sqrt(σ²+x²)` or x²), row scale `d = max|scale|/127`, 7-bit odd block
/// scales `2·clamp(nearest_int(0.5·(scale/d + 127)), 0, 127)` (low bit = shift flag), re-assignment with the
/// unrounded `d·(l − 127)` and an LS refit of the f32 row scale.
fn quantize_ks_row(
    x: &[f32],
    row: &mut [u8],
    im: Option<&[f32]>,
    lv: &Levels,
    ntry: i32,
    bytes: usize,
    pack: fn(&mut [u8], usize, usize, usize),
) {
    row.fill(0);
    let nblk = x.len() / QK_K;
    let mut scales = vec![0.0f32; 8 * nblk];
    let mut amax_scale = 0.0f32;
    let weights = |xb: &[f32], off: usize, sigma2: f32| -> [f32; 32] {
        core::array::from_fn(|j| match im {
            Some(q) => q[off + j] * (sigma2 + xb[j] * xb[j]).sqrt(),
            None => xb[j] * xb[j],
        })
    };
    for ibl in 0..nblk {
        let xbl = &x[QK_K * ibl..QK_K * ibl + QK_K];
        let sigma2 = sigma2_a(xbl);
        let b = &mut row[4 + bytes * ibl..4 + bytes * (ibl + 1)];
        for ib in 0..8 {
            let xb = &xbl[32 * ib..32 * ib + 32];
            let w = weights(xb, QK_K * ibl + 32 * ib, sigma2);
            let (d, sh) = block_search(xb, &w, lv, ntry, 1.0, false);
            b[ib] = sh as u8;
            scales[8 * ibl + ib] = d;
            amax_scale = amax_scale.max(d.abs());
        }
    }
    // why 127: 7-bit odd block scales −127…127 against one f32 row scale
    let d = amax_scale / 127.0;
    wr_f32(row, 0, d);
    if d == 0.0 {
        return;
    }
    let id = 1.0 / d;
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for ibl in 0..nblk {
        let xbl = &x[QK_K * ibl..QK_K * ibl + QK_K];
        let sigma2 = sigma2_a(xbl);
        let b = &mut row[4 + bytes * ibl..4 + bytes * (ibl + 1)];
        for ib in 0..8 {
            let t = if b[ib] & 1 != 0 { lv.shifted } else { lv.base };
            let l = nearest_int(0.5 * (id * scales[8 * ibl + ib] + 127.0)).clamp(0, 127) << 1;
            b[ib] |= l as u8;
            let l = l - 127;
            let dl = d * l as f32;
            let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
            let xb = &xbl[32 * ib..32 * ib + 32];
            let w = weights(xb, QK_K * ibl + 32 * ib, sigma2);
            // the reference accumulates the two N16 halves pairwise: (w1·q1·x1 + w2·q2·x2)
            for j in 0..16 {
                let i1 = (lv.best)(t, idl * xb[j]);
                let i2 = (lv.best)(t, idl * xb[j + 16]);
                pack(b, ib, j, i1);
                pack(b, ib, j + 16, i2);
                let (q1, q2) = (t[i1] * l as f32, t[i2] * l as f32);
                sumqx += w[j] * q1 * xb[j] + w[j + 16] * q2 * xb[j + 16];
                sumq2 += w[j] * q1 * q1 + w[j + 16] * q2 * q2;
            }
        }
    }
    if sumq2 > 0.0 {
        wr_f32(row, 0, sumqx / sumq2);
    }
}

pub fn quantize_iq4_ks(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let (base, shifted): ([f32; 16], [f32; 16]) = (core::array::from_fn(|i| IQ4K[i] as f32), core::array::from_fn(|i| IQ4K[16 + i] as f32));
    let lv = Levels { base: &base, shifted: &shifted, best: super::iqk_k::best4 };
    let mut wrow = Vec::new();
    for (x, y) in rows(src, dst, ne0, 4 + ne0 / QK_K * IQ4_KS_BYTES) {
        let im = row_weights(imatrix, x, 32, &mut wrow).then_some(&wrow[..]);
        quantize_ks_row(x, y, im, &lv, 7, IQ4_KS_BYTES, |b, ib, j, l| {
            b[8 + 16 * ib + j % 16] |= (l as u8) << (4 * (j / 16));
        });
    }
}

pub fn quantize_iq5_ks(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let (base, shifted): ([f32; 32], [f32; 32]) =
        (core::array::from_fn(|i| IQ5NL[i] as f32), core::array::from_fn(|i| IQ5NL[32 + i] as f32));
    let lv = Levels { base: &base, shifted: &shifted, best: super::iqk_common::best_iq5 };
    let mut wrow = Vec::new();
    for (x, y) in rows(src, dst, ne0, 4 + ne0 / QK_K * IQ5_KS_BYTES) {
        let im = row_weights(imatrix, x, 32, &mut wrow).then_some(&wrow[..]);
        quantize_ks_row(x, y, im, &lv, 5, IQ5_KS_BYTES, |b, ib, j, l| {
            b[8 + 32 * (ib / 2) + j] |= ((l & 15) as u8) << (4 * (ib % 2));
            b[136 + j] |= ((l >> 4) as u8) << ib;
        });
    }
}
