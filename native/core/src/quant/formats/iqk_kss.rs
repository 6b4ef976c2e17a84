//! File quantizer of IQ4_KSS (spec/quants.md §6.7, §13.5); the decoder lives in `iqk_ks`.
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`quantize_row_iq4_kss_impl`, `prune_iq4ks`). Each
//! 16-bit word holds 4 indices `v = q[2k] | q[2k+16]<<4 | q[2k+1]<<8 | q[2k+17]<<12` that must have even bit
//! parity; it is stored as `inverse_gray(v) | scale_bit` (the reference builds a 32768-entry table for the
//! inverse; here it is computed directly).

use super::common::{rows, wr_f32};
use super::iqk_common::{row_weights, IQ4K, IQ4K_HI, IQ4K_LO, QK_K};
use super::iqk_ks::IQ4_KSS_BYTES;
use super::values::best_index_iq4nl;
use crate::quant::convert::nearest_int;

/// The unique `a` with `a ^ (a >> 1) == v` (bit 0 of `a` is the parity of `v`, 0 for the even words stored).
#[inline]
fn inverse_gray(v: u16) -> u16 {
    let mut a = v;
    let mut s = 1;
    while s < 16 {
        a ^= a >> s;
        s <<= 1;
    }
    a
}

/// `prune_iq4ks`: make the 4 indices of `v` even in total parity with the single ±1/±2 index change of least
/// weighted error increase. As in the reference the current error is measured on the base table.
fn prune(v: u16, t: &[i8; 16], xv: &[f32; 4], wv: &[f32; 4], dl: f32) -> u16 {
    if v.count_ones() % 2 == 0 {
        return v;
    }
    let mut q4 = [0u8; 4];
    let (mut best, mut jbest, mut bestq) = (f32::MAX, 0usize, None);
    for j in 0..4 {
        let q = ((v >> (4 * j)) & 15) as u8;
        q4[j] = q;
        let diff0 = dl * IQ4K_LO[q as usize] as f32 - xv[j];
        for qq in q.saturating_sub(2)..=(q + 2).min(15) {
            if qq == q || (qq.count_ones() + q.count_ones()) % 2 == 0 {
                continue;
            }
            let diff1 = dl * t[qq as usize] as f32 - xv[j];
            let score = wv[j] * (diff1 * diff1 - diff0 * diff0);
            if score < best {
                best = score;
                jbest = j;
                bestq = Some(qq);
            }
        }
    }
    if let Some(q) = bestq {
        q4[jbest] = q;
    }
    q4[0] as u16 | (q4[1] as u16) << 4 | (q4[2] as u16) << 8 | (q4[3] as u16) << 12
}

/// The 4 weights (and importances) of word `k` of a 32-block, in nibble order.
#[inline]
fn quad(a: &[f32], k: usize) -> [f32; 4] {
    [a[2 * k], a[2 * k + 16], a[2 * k + 1], a[2 * k + 17]]
}

/// Pruned words of a 32-block for the inverse scale `id` (nearest levels of `id·x`), with `Σwqx`, `Σwq²`.
fn words(xb: &[f32], w: &[f32; 32], t: &[i8; 16], id: f32, dl: f32) -> ([u16; 8], f32, f32) {
    let mut out = [0u16; 8];
    let (mut qx, mut q2) = (0.0f32, 0.0f32);
    for (k, o) in out.iter_mut().enumerate() {
        let (xv, wv) = (quad(xb, k), quad(w, k));
        let mut v = 0u16;
        for j in 0..4 {
            v |= (best_index_iq4nl(t, id * xv[j]) as u16) << (4 * j);
        }
        v = prune(v, t, &xv, &wv, dl);
        for j in 0..4 {
            let q = t[((v >> (4 * j)) & 15) as usize] as f32;
            qx += wv[j] * q * xv[j];
            q2 += wv[j] * q * q;
        }
        *o = v;
    }
    (out, qx, q2)
}

/// IQ4_KSS: the IQ4_KS search (ntry 7, both tables and signs) on parity-pruned words, row scale
/// `max|scale|/127`, 7-bit odd block scales, table choice by weighted error, LS refit times 1.01.
pub fn quantize_iq4_kss(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let nblk = ne0 / QK_K;
    let mut wrow = Vec::new();
    let mut scales = vec![0.0f32; 8 * nblk];
    for (x, y) in rows(src, dst, ne0, 4 + nblk * IQ4_KSS_BYTES) {
        y.fill(0);
        let im = row_weights(imatrix, x, 32, &mut wrow).then_some(&wrow[..]);
        let weights = |ibl: usize, ib: usize, sigma2: f32| -> [f32; 32] {
            let o = QK_K * ibl + 32 * ib;
            let xb = &x[o..o + 32];
            core::array::from_fn(|j| match im {
                Some(q) => q[o + j] * (sigma2 + xb[j] * xb[j]).sqrt(),
                None => xb[j] * xb[j],
            })
        };
        let sig = |xbl: &[f32]| xbl.iter().fold(0.0f32, |s, &v| s + v * v) * (2.0 / QK_K as f32);
        let mut amax_scale = 0.0f32;
        for ibl in 0..nblk {
            let xbl = &x[QK_K * ibl..QK_K * ibl + QK_K];
            let sigma2 = sig(xbl);
            for ib in 0..8 {
                let xb = &xbl[32 * ib..32 * ib + 32];
                let w = weights(ibl, ib, sigma2);
                let (mut amax, mut max) = (0.0f32, 0.0f32);
                for &v in xb {
                    if v.abs() > amax {
                        amax = v.abs();
                        max = v;
                    }
                }
                scales[8 * ibl + ib] = 0.0;
                if amax < 1e-16 {
                    continue;
                }
                let (mut best, mut d) = (0.0f32, -max / IQ4K[0] as f32);
                for itry in -7..=7 {
                    for t in [&IQ4K_LO, &IQ4K_HI] {
                        let id = (itry as f32 + t[0] as f32) / max;
                        let this_d = 1.0 / id;
                        for s in [1.0f32, -1.0] {
                            let (_, qx, q2) = words(xb, &w, t, s * id, this_d);
                            if q2 > 0.0 && qx * qx > best * q2 {
                                d = qx / q2;
                                best = d * qx;
                            }
                        }
                    }
                }
                scales[8 * ibl + ib] = d;
                amax_scale = amax_scale.max(d.abs());
            }
        }
        // why 127: 7-bit odd block scales −127…127 against one f32 row scale
        let d = amax_scale / 127.0;
        wr_f32(y, 0, d);
        if d == 0.0 {
            continue;
        }
        let id = 1.0 / d;
        let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
        for ibl in 0..nblk {
            let xbl = &x[QK_K * ibl..QK_K * ibl + QK_K];
            let sigma2 = sig(xbl);
            let b = &mut y[4 + IQ4_KSS_BYTES * ibl..4 + IQ4_KSS_BYTES * (ibl + 1)];
            for ib in 0..8 {
                let xb = &xbl[32 * ib..32 * ib + 32];
                let w = weights(ibl, ib, sigma2);
                let mut l = (nearest_int(0.5 * (id * scales[8 * ibl + ib] + 127.0)).clamp(0, 127) << 1) - 127;
                let mut v = [0u16; 8];
                if l != 0 {
                    let dl = d * l as f32;
                    let idl = 1.0 / dl;
                    let mse = |t: &[i8; 16]| {
                        let (vv, _, _) = words(xb, &w, t, idl, dl);
                        let mut e = 0.0f32;
                        for (k, &word) in vv.iter().enumerate() {
                            let (xv, wv) = (quad(xb, k), quad(&w, k));
                            for j in 0..4 {
                                let r = xv[j] - dl * t[((word >> (4 * j)) & 15) as usize] as f32;
                                e += wv[j] * r * r;
                            }
                        }
                        (vv, e)
                    };
                    let ((vp, mp), (vm, mm)) = (mse(&IQ4K_LO), mse(&IQ4K_HI));
                    let shifted = mm < mp;
                    let t = if shifted { &IQ4K_HI } else { &IQ4K_LO };
                    v = if shifted { vm } else { vp };
                    for (k, &word) in v.iter().enumerate() {
                        let (xv, wv) = (quad(xb, k), quad(&w, k));
                        for j in 0..4 {
                            let q = t[((word >> (4 * j)) & 15) as usize] as f32 * l as f32;
                            sumqx += wv[j] * q * xv[j];
                            sumq2 += wv[j] * q * q;
                        }
                    }
                    l += 127;
                    if shifted {
                        l |= 1;
                    }
                } else {
                    l += 127;
                }
                for (k, &word) in v.iter().enumerate() {
                    let w16 = (inverse_gray(word) & 0xFFFE) | ((l >> k) & 1) as u16;
                    b[16 * ib + 2 * k..16 * ib + 2 * k + 2].copy_from_slice(&w16.to_le_bytes());
                }
            }
        }
        if sumq2 > 0.0 {
            // why 1.01: ik's empirical correction of the LS scale for this type (§13.5)
            wr_f32(y, 0, sumqx / sumq2 * 1.01);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_gray_round_trips_even_words() {
        for v in 0..=u16::MAX {
            if v.count_ones() % 2 == 0 {
                let a = inverse_gray(v);
                assert_eq!(a & 1, 0);
                assert_eq!(a ^ (a >> 1), v);
            }
        }
    }
}
