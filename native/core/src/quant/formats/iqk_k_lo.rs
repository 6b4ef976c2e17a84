//! File quantizers of IQ2_K and IQ3_K (spec/quants.md §6.1, §6.2, §13.4); their decoders live in `iqk_k`.
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`quantize_row_iq2_k_impl` with its exhaustive
//! 4-interval search and the iqk-local `make_qx_quants`, `quantize_row_iq3_k_impl`, `best_index_iq2nl`,
//! `best_index_iq3nl`).

use super::common::{rows, wr_f16};
use super::iqk_common::{block_search, row_weights, Levels, IQ2NL, IQ3NL, QK_K};
use super::iqk_k::{IQ2_K_BYTES, IQ3_K_BYTES};
use crate::quant::convert::nearest_int;

/// `best_index_iq2nl`: nearest of 4 levels (ties go up).
pub(super) fn best_iq2(v: &[f32], x: f32) -> usize {
    let i = if x < v[1] {
        0
    } else if x > v[2] {
        2
    } else {
        1
    };
    if x - v[i] < v[i + 1] - x {
        i
    } else {
        i + 1
    }
}

/// Bucket table of `best_index_iq3nl`, keyed on `trunc(x) − values[0]`: `< 8` = level, `8 + i` = between
/// level i and i+1.
const IQ3NL_INDEX: [u8; 111] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9, 9, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 10, 10, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 11, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 12, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 13, 13, 6, 6, 6,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 14, 14, 7, 7, 7, 7, 7, 7, 7, 7, 7,
];

/// `best_index_iq3nl` on one 8-entry half of `IQ3NL`.
pub(super) fn best_iq3(v: &[f32], x: f32) -> usize {
    let ix = (x as i32) - v[0] as i32;
    if !(0..111).contains(&ix) {
        return if ix < 0 { 0 } else { 7 };
    }
    let e = IQ3NL_INDEX[ix as usize] as usize;
    if e < 8 {
        return e;
    }
    if x - v[e - 8] < v[e - 7] - x {
        e - 8
    } else {
        e - 7
    }
}

fn halves<const N: usize, const H: usize>(t: &[i8; N]) -> ([f32; H], [f32; H]) {
    (core::array::from_fn(|i| t[i] as f32), core::array::from_fn(|i| t[H + i] as f32))
}

/// σ² of IQ2_K / IQ3_K: `1.5·Σx² / 256`.
fn sigma2_15(x: &[f32]) -> f32 {
    1.5 * x.iter().fold(0.0f32, |s, &v| s + v * v) / x.len() as f32
}

fn weights16(xb: &[f32], qw: Option<&[f32]>, sigma2: f32) -> [f32; 16] {
    core::array::from_fn(|j| match qw {
        Some(q) => q[j] * (sigma2 + xb[j] * xb[j]).sqrt(),
        // why σ²/4: a floor so near-zero weights still count
        None => 0.25 * sigma2 + xb[j] * xb[j],
    })
}

/// ik's iqk-local `make_qx_quants` (weighted, levels −nmax…nmax−1, `is = ±1…±9` tenth-step tries); returns the
/// scale. Used by IQ2_K to quantize its 16 sub-block scales.
fn make_qx_quants_iqk(x: &[f32], nmax: i32, qw: &[f32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        return 0.0;
    }
    let fit = |iscale: f32| {
        let (mut lx, mut l2) = (0.0f32, 0.0f32);
        for (&v, &w) in x.iter().zip(qw) {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1) as f32;
            lx += w * v * l;
            l2 += w * l * l;
        }
        (lx, l2)
    };
    let (lx, l2) = fit(-(nmax as f32) / max);
    let mut scale = if l2 != 0.0 { lx / l2 } else { 0.0 };
    let mut best = scale * lx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        let (lx, l2) = fit(-(nmax as f32 + 0.1 * is as f32) / max);
        if l2 > 0.0 && lx * lx > best * l2 {
            scale = lx / l2;
            best = scale * lx;
        }
    }
    scale
}

/// IQ2_K per-16-block search: exhaustive over the 4-interval partitions of the sorted weights, both tables,
/// both orientations (prefix sums). Returns `(scale, shifted)`.
fn iq2k_block(xb: &[f32], w: &[f32; 16], base: &[f32; 4], shifted: &[f32; 4]) -> (f32, bool) {
    let mut idx: [usize; 16] = core::array::from_fn(|j| j);
    // std::sort on (value, index) pairs
    idx.sort_by(|&a, &b| xb[a].partial_cmp(&xb[b]).unwrap_or(core::cmp::Ordering::Equal).then(a.cmp(&b)));
    let (mut sx, mut sw) = ([0.0f32; 17], [0.0f32; 17]);
    for (j, &jj) in idx.iter().enumerate() {
        sw[j + 1] = sw[j] + w[jj];
        sx[j + 1] = sx[j] + w[jj] * xb[jj];
    }
    let (mut best, mut d, mut is_shifted) = (0.0f32, 0.0f32, false);
    for i1 in 0..16 {
        for i2 in i1..16 {
            for i3 in i2..16 {
                let gx = [sx[i1] - sx[0], sx[i2] - sx[i1], sx[i3] - sx[i2], sx[16] - sx[i3]];
                let gw = [sw[i1] - sw[0], sw[i2] - sw[i1], sw[i3] - sw[i2], sw[16] - sw[i3]];
                for (t, sh, rev) in [(base, false, false), (shifted, true, false), (base, false, true), (shifted, true, true)] {
                    let v = |k: usize| if rev { t[3 - k] } else { t[k] };
                    let qx = gx[0] * v(0) + gx[1] * v(1) + gx[2] * v(2) + gx[3] * v(3);
                    let q2 = gw[0] * (v(0) * v(0)) + gw[1] * (v(1) * v(1)) + gw[2] * (v(2) * v(2)) + gw[3] * (v(3) * v(3));
                    if q2 > 0.0 && qx * qx > best * q2 {
                        d = qx / q2;
                        best = d * qx;
                        is_shifted = sh;
                    }
                }
            }
        }
    }
    (d, is_shifted)
}

/// `quantize_row_iq2_k_impl`: exhaustive 16-block search, 4-bit sub-block scales fitted by `make_qx_quants`
/// (nmax 8, weighted by Σw), re-assignment, LS refit of `d` times 1.03 (empirical factor stored in the file).
pub fn quantize_iq2_k(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let (base, shifted): ([f32; 4], [f32; 4]) = halves(&IQ2NL);
    let mut wrow = Vec::new();
    for (x, y) in rows(src, dst, ne0, ne0 / QK_K * IQ2_K_BYTES) {
        let im = row_weights(imatrix, x, 16, &mut wrow).then_some(&wrow[..]);
        for (ibl, (xs, b)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(IQ2_K_BYTES)).enumerate() {
            b.fill(0);
            let sigma2 = sigma2_15(xs);
            let qw = |ib: usize| im.map(|w| &w[QK_K * ibl + 16 * ib..]);
            let (mut scales, mut sws) = ([0.0f32; 16], [0.0f32; 16]);
            let (mut ex, mut max_abs) = (0u16, 0.0f32);
            for ib in 0..16 {
                let xb = &xs[16 * ib..16 * ib + 16];
                let w = weights16(xb, qw(ib), sigma2);
                sws[ib] = w.iter().fold(0.0f32, |s, &v| s + v);
                let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                if amax < 1e-16 {
                    continue;
                }
                let (d, sh) = iq2k_block(xb, &w, &base, &shifted);
                scales[ib] = d;
                ex |= (sh as u16) << ib;
                max_abs = max_abs.max(d.abs());
            }
            if max_abs == 0.0 {
                continue;
            }
            let d = make_qx_quants_iqk(&scales, 8, &sws);
            if d == 0.0 {
                continue;
            }
            b[2..4].copy_from_slice(&ex.to_le_bytes());
            let id = 1.0 / d;
            let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
            for ib in 0..16 {
                let ls = nearest_int(id * scales[ib]).clamp(-8, 7);
                b[4 + ib / 2] |= ((ls + 8) as u8) << (4 * (ib % 2));
                let dl = d * ls as f32;
                if dl == 0.0 {
                    continue;
                }
                let t = if (ex >> ib) & 1 != 0 { &shifted } else { &base };
                let xb = &xs[16 * ib..16 * ib + 16];
                let w = weights16(xb, qw(ib), sigma2);
                let idl = 1.0 / dl;
                let (ib32, off) = (ib / 2, 16 * (ib % 2));
                for j in 0..16 {
                    let l = best_iq2(t, idl * xb[j]);
                    b[12 + 32 * (ib32 / 4) + off + j] |= (l as u8) << (2 * (ib32 % 4));
                    let q = t[l] * ls as f32;
                    sumqx += w[j] * q * xb[j];
                    sumq2 += w[j] * q * q;
                }
            }
            // why 1.03: ik's empirical correction of the LS scale for 2-bit levels (§13.4 step 5)
            wr_f16(b, 0, 1.03 * if sumq2 > 0.0 { sumqx / sumq2 } else { d });
        }
    }
}

/// `quantize_row_iq3_k_impl`: 16-block search (ntry 3, step 2, refit), odd 4-bit scale magnitudes plus sign
/// bits against `d = max|scale|/31`, re-assignment, LS refit of `d` times 1.01.
pub fn quantize_iq3_k(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let (base, shifted): ([f32; 8], [f32; 8]) = halves(&IQ3NL);
    let lv = Levels { base: &base, shifted: &shifted, best: best_iq3 };
    let mut wrow = Vec::new();
    for (x, y) in rows(src, dst, ne0, ne0 / QK_K * IQ3_K_BYTES) {
        let im = row_weights(imatrix, x, 16, &mut wrow).then_some(&wrow[..]);
        for (ibl, (xs, b)) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(IQ3_K_BYTES)).enumerate() {
            b.fill(0);
            let sigma2 = sigma2_15(xs);
            let qw = |ib: usize| im.map(|w| &w[QK_K * ibl + 16 * ib..]);
            let mut scales = [0.0f32; 16];
            let (mut ex, mut max_abs) = (0u16, 0.0f32);
            for ib in 0..16 {
                let xb = &xs[16 * ib..16 * ib + 16];
                let w = weights16(xb, qw(ib), sigma2);
                let (d, sh) = block_search(xb, &w, &lv, 3, 2.0, true);
                scales[ib] = d;
                if d != 0.0 {
                    ex |= (sh as u16) << ib;
                }
                max_abs = max_abs.max(d.abs());
            }
            if max_abs == 0.0 {
                continue;
            }
            // why 31: odd magnitudes 2·ls+1 with ls ≤ 15
            let d = max_abs / 31.0;
            b[2..4].copy_from_slice(&ex.to_le_bytes());
            let id = 1.0 / d;
            let (mut sumqx, mut sumq2, mut sh) = (0.0f32, 0.0f32, 0u16);
            for ib in 0..16 {
                let ls = nearest_int(0.5 * (id * scales[ib].abs() - 1.0)).clamp(0, 15);
                b[6 + ib / 2] |= (ls as u8) << (4 * (ib % 2));
                let neg = scales[ib] < 0.0;
                sh |= (neg as u16) << ib;
                let ls = (2 * ls + 1) * if neg { -1 } else { 1 };
                let dl = d * ls as f32;
                if dl == 0.0 {
                    continue;
                }
                let t = if (ex >> ib) & 1 != 0 { &shifted } else { &base };
                let xb = &xs[16 * ib..16 * ib + 16];
                let w = weights16(xb, qw(ib), sigma2);
                let idl = 1.0 / dl;
                let (ib32, off) = (ib / 2, 16 * (ib % 2));
                for j in 0..16 {
                    let l = best_iq3(t, idl * xb[j]);
                    b[14 + 32 * (ib32 / 4) + off + j] |= ((l & 3) as u8) << (2 * (ib32 % 4));
                    b[78 + off + j] |= ((l >> 2) as u8) << ib32;
                    let q = t[l] * ls as f32;
                    sumqx += w[j] * q * xb[j];
                    sumq2 += w[j] * q * q;
                }
            }
            b[4..6].copy_from_slice(&sh.to_le_bytes());
            // why 1.01: ik's empirical correction of the LS scale (§13.4 step 5)
            wr_f16(b, 0, 1.01 * if sumq2 > 0.0 { sumqx / sumq2 } else { d });
        }
    }
}
