//! File quantizers of the f16-row-scale IQK types IQ2_KS, IQ3_KS and IQ2_KL (spec/quants.md §6.9–6.11,
//! §13.4); their decoders live in `iqk_ks`.
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`quantize_row_iq2_ks_fast_impl` — the default of
//! `llama-quantize` on x86, a 55-candidate scale search per 32-block with the ±1 scale re-check — its iqk-local
//! `make_qx_quants`, `quantize_row_iq3_ks_impl`, `quantize_row_iq2_kl_impl`). Written from those algorithms;
//! the IQ2_KL neighbour lists are derived here from the pair grid instead of being copied.
//!
//! Row = f16 `d`, then blocks (byte offsets):
//! * IQ2_KS: extra u16 @0 (bits 0–7 table shift, 8–15 scale bit 4), scales[4] @2, qs[64] @6
//! * IQ3_KS: extra u16 @0 (bits 0–7 scale bit 4, 8–15 table shift), scales[4] @2, qs[64] @6, qh[32] @70
//! * IQ2_KL: scales_h u16 @0, scales_l[4] @2, qs[64] @6, qh[16] @70

use super::common::{rows, wr_f16};
use super::iqk_common::{block_search, row_weights, Levels, IQ2NL, IQ3NL, QK_K};
use super::iqk_k_lo::best_iq3;
use super::iqk_ks::{IQ2_KL_BYTES, IQ2_KS_BYTES, IQ3_KS_BYTES};
use crate::quant::convert::nearest_int;

/// Per-32-block weights: `qw·sqrt(σ² + x²)` with an imatrix, otherwise `floor(σ²) + x²`-style fallbacks.
fn weights32(xb: &[f32], qw: Option<&[f32]>, sigma2: f32, fallback: impl Fn(f32) -> f32) -> [f32; 32] {
    core::array::from_fn(|j| match qw {
        Some(q) => q[j] * (sigma2 + xb[j] * xb[j]).sqrt(),
        None => fallback(xb[j]),
    })
}

fn sum_x2(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |s, &v| s + v * v)
}

// ---------------------------------------------------------------- IQ2_KS

/// iqk-local `make_qx_quants` with level output (`L = l + nmax`, 0…2·nmax−1): weighted fit of the block scales
/// to one row scale, 19 tenth-step inverse-scale tries.
fn qx_levels(x: &[f32], nmax: i32, qw: &[f32], levels: &mut [i8]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        levels.fill(0);
        return 0.0;
    }
    let fit = |iscale: f32, out: Option<&mut [i8]>| {
        let (mut lx, mut l2) = (0.0f32, 0.0f32);
        let mut out = out;
        for (i, (&v, &w)) in x.iter().zip(qw).enumerate() {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
            if let Some(o) = out.as_deref_mut() {
                o[i] = (l + nmax) as i8;
            }
            let l = l as f32;
            lx += w * v * l;
            l2 += w * l * l;
        }
        (lx, l2)
    };
    let (lx, l2) = fit(-(nmax as f32) / max, Some(levels));
    let mut scale = if l2 != 0.0 { lx / l2 } else { 0.0 };
    let mut best = scale * lx;
    for is in (-9..=9).filter(|&i| i != 0) {
        let iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (lx, l2) = fit(iscale, None);
        if l2 > 0.0 && lx * lx > best * l2 {
            fit(iscale, Some(levels));
            scale = lx / l2;
            best = scale * lx;
        }
    }
    scale
}

/// Nearest of the 4 levels `d·t[k]` to each x (unweighted, first minimum wins), for `d` and for `−d`.
fn nearest4(xb: &[f32], t: &[f32], d: f32) -> ([u8; 32], [u8; 32]) {
    let (mut ip, mut im) = ([0u8; 32], [0u8; 32]);
    for (j, &x) in xb.iter().enumerate() {
        let (mut bp, mut bm) = (f32::INFINITY, f32::INFINITY);
        for (k, &v) in t.iter().enumerate() {
            let dv = d * v;
            let (ep, em) = ((x - dv) * (x - dv), (x + dv) * (x + dv));
            if k == 0 || ep < bp {
                bp = ep;
                ip[j] = k as u8;
            }
            if k == 0 || em < bm {
                bm = em;
                im[j] = k as u8;
            }
        }
    }
    (ip, im)
}

/// `compute_1block_iq2ks`: nearest assignment for the scale `d` and its negative, LS scale of each; returns the
/// better `(scale, score)` or `None` when neither has a positive Σwq².
fn iq2ks_try(xb: &[f32], w: &[f32; 32], t: &[f32], d: f32) -> Option<(f32, f32)> {
    let (ip, im) = nearest4(xb, t, d);
    let sums = |idx: &[u8; 32]| {
        let (mut qx, mut q2) = (0.0f32, 0.0f32);
        for j in 0..32 {
            let q = t[idx[j] as usize];
            qx += w[j] * q * xb[j];
            q2 += w[j] * q * q;
        }
        (qx, q2)
    };
    let mut res: Option<(f32, f32)> = None;
    let (qx, q2) = sums(&ip);
    if q2 > 0.0 {
        let d = qx / q2;
        res = Some((d, qx * d));
    }
    let (qx, q2) = sums(&im);
    if q2 > 0.0 && !matches!(res, Some((_, s)) if qx * qx <= s * q2) {
        let d = qx / q2;
        res = Some((d, qx * d));
    }
    res
}

/// `compute_1block_iq2ks_rmse`: nearest assignment for `d`, weighted squared error and the levels.
fn iq2ks_rmse(xb: &[f32], w: &[f32; 32], t: &[f32], d: f32) -> (f32, [u8; 32]) {
    let (ip, _) = nearest4(xb, t, d);
    let mut e = 0.0f32;
    for j in 0..32 {
        let diff = xb[j] - d * t[ip[j] as usize];
        e += w[j] * diff * diff;
    }
    (e, ip)
}

/// IQ2_KS: per 32-block, 55 candidate scales (`max/22`, `max/(T[0] + itry/2)` on both tables), the row scale
/// fitted to the block scales by `make_qx_quants` (5-bit levels), each block re-checked at its level ±1, LS
/// refit of the f16 row scale.
pub fn quantize_iq2_ks(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let base: [f32; 4] = core::array::from_fn(|i| IQ2NL[i] as f32);
    let shifted: [f32; 4] = core::array::from_fn(|i| IQ2NL[4 + i] as f32);
    let nblk = ne0 / QK_K;
    let mut wrow = Vec::new();
    let (mut scales, mut sws, mut ls) = (vec![0.0f32; 8 * nblk], vec![0.0f32; 8 * nblk], vec![0i8; 8 * nblk]);
    for (x, y) in rows(src, dst, ne0, 2 + nblk * IQ2_KS_BYTES) {
        y.fill(0);
        let im = row_weights(imatrix, x, 32, &mut wrow).then_some(&wrow[..]);
        let weights = |ibl: usize, ib: usize, sigma2: f32| {
            let xb = &x[QK_K * ibl + 32 * ib..QK_K * ibl + 32 * ib + 32];
            // why σ²/4: a floor so that near-zero weights still count
            weights32(xb, im.map(|w| &w[QK_K * ibl + 32 * ib..]), sigma2, |v| 0.25 * sigma2 + v * v)
        };
        for ibl in 0..nblk {
            let xbl = &x[QK_K * ibl..QK_K * ibl + QK_K];
            let sigma2 = 1.5 * sum_x2(xbl) / QK_K as f32;
            let mut extra = 0u16;
            for ib in 0..8 {
                let xb = &xbl[32 * ib..32 * ib + 32];
                let w = weights(ibl, ib, sigma2);
                sws[8 * ibl + ib] = w.iter().fold(0.0f32, |s, &v| s + v);
                let (mut amax, mut max) = (0.0f32, 0.0f32);
                for &v in xb {
                    if v.abs() > amax {
                        amax = v.abs();
                        max = v;
                    }
                }
                scales[8 * ibl + ib] = 0.0;
                if amax < 1e-14 {
                    continue;
                }
                let mut d = max / IQ2NL[7] as f32;
                let mut best = 0.0f32;
                if let Some((td, s)) = iq2ks_try(xb, &w, &base, d) {
                    best = s;
                    d = td;
                }
                let mut is_shifted = false;
                for (sh, t) in [(false, &base), (true, &shifted)] {
                    for itry in -13..=13 {
                        if let Some((td, s)) = iq2ks_try(xb, &w, t, max / (t[0] + 0.5 * itry as f32)) {
                            if s > best {
                                best = s;
                                d = td;
                                is_shifted = sh;
                            }
                        }
                    }
                }
                scales[8 * ibl + ib] = d;
                extra |= (is_shifted as u16) << ib;
            }
            let b = &mut y[2 + IQ2_KS_BYTES * ibl..];
            b[..2].copy_from_slice(&extra.to_le_bytes());
        }
        // why 16: 5-bit block scales −16…15 against the f16 row scale
        let d = qx_levels(&scales, 16, &sws, &mut ls);
        if d == 0.0 {
            continue;
        }
        let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
        for ibl in 0..nblk {
            let xbl = &x[QK_K * ibl..QK_K * ibl + QK_K];
            let sigma2 = 1.5 * sum_x2(xbl) / QK_K as f32;
            let b = &mut y[2 + IQ2_KS_BYTES * ibl..2 + IQ2_KS_BYTES * (ibl + 1)];
            let mut extra = u16::from_le_bytes([b[0], b[1]]);
            for ib in 0..8 {
                let t = if (extra >> ib) & 1 != 0 { &shifted } else { &base };
                let xb = &xbl[32 * ib..32 * ib + 32];
                let w = weights(ibl, ib, sigma2);
                let l = &mut ls[8 * ibl + ib];
                let dl = d * (*l as i32 - 16) as f32;
                let (e1, mut idx) = iq2ks_rmse(xb, &w, t, dl);
                let s = scales[8 * ibl + ib];
                if *l > 0 && dl > s {
                    let (e2, idx2) = iq2ks_rmse(xb, &w, t, d * (*l as i32 - 17) as f32);
                    if e2 < e1 {
                        *l -= 1;
                        idx = idx2;
                    }
                } else if *l < 15 && dl < s {
                    let (e2, idx2) = iq2ks_rmse(xb, &w, t, d * (*l as i32 - 15) as f32);
                    if e2 < e1 {
                        *l += 1;
                        idx = idx2;
                    }
                }
                let lsv = *l as i32 - 16;
                for j in 0..32 {
                    let q = lsv as f32 * t[idx[j] as usize];
                    sumqx += w[j] * q * xb[j];
                    sumq2 += w[j] * q * q;
                    b[6 + 32 * (ib / 4) + j] |= idx[j] << (2 * (ib % 4));
                }
                let u = *l as u8;
                b[2 + ib / 2] |= (u & 15) << (4 * (ib % 2));
                extra |= ((u >> 4) as u16) << (8 + ib);
            }
            b[..2].copy_from_slice(&extra.to_le_bytes());
        }
        wr_f16(y, 0, if sumq2 > 0.0 { sumqx / sumq2 } else { d });
    }
}

// ---------------------------------------------------------------- IQ3_KS

/// IQ3_KS: per 32-block search (ntry 5 on both tables, weights x² without imatrix), row scale `−max_scale/16`,
/// 5-bit block scales, re-assignment and an LS refit of the f16 row scale.
pub fn quantize_iq3_ks(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let base: [f32; 8] = core::array::from_fn(|i| IQ3NL[i] as f32);
    let shifted: [f32; 8] = core::array::from_fn(|i| IQ3NL[8 + i] as f32);
    let lv = Levels { base: &base, shifted: &shifted, best: best_iq3 };
    let nblk = ne0 / QK_K;
    let mut wrow = Vec::new();
    let mut scales = vec![0.0f32; 8 * nblk];
    for (x, y) in rows(src, dst, ne0, 2 + nblk * IQ3_KS_BYTES) {
        y.fill(0);
        let im = row_weights(imatrix, x, 32, &mut wrow).then_some(&wrow[..]);
        let weights = |ibl: usize, ib: usize, sigma2: f32| {
            let xb = &x[QK_K * ibl + 32 * ib..QK_K * ibl + 32 * ib + 32];
            weights32(xb, im.map(|w| &w[QK_K * ibl + 32 * ib..]), sigma2, |v| v * v)
        };
        let (mut amax_scale, mut max_scale) = (0.0f32, 0.0f32);
        for ibl in 0..nblk {
            let xbl = &x[QK_K * ibl..QK_K * ibl + QK_K];
            let sigma2 = sum_x2(xbl) * (2.0 / QK_K as f32);
            let mut extra = 0u16;
            for ib in 0..8 {
                let w = weights(ibl, ib, sigma2);
                let (d, sh) = block_search(&xbl[32 * ib..32 * ib + 32], &w, &lv, 5, 1.0, false);
                extra |= (sh as u16) << (8 + ib);
                scales[8 * ibl + ib] = d;
                if d.abs() > amax_scale {
                    amax_scale = d.abs();
                    max_scale = d;
                }
            }
            y[2 + IQ3_KS_BYTES * ibl..4 + IQ3_KS_BYTES * ibl].copy_from_slice(&extra.to_le_bytes());
        }
        let d = -max_scale / 16.0;
        wr_f16(y, 0, d);
        if d == 0.0 {
            continue;
        }
        let id = 1.0 / d;
        let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
        for ibl in 0..nblk {
            let xbl = &x[QK_K * ibl..QK_K * ibl + QK_K];
            let sigma2 = sum_x2(xbl) * (2.0 / QK_K as f32);
            let b = &mut y[2 + IQ3_KS_BYTES * ibl..2 + IQ3_KS_BYTES * (ibl + 1)];
            let mut extra = u16::from_le_bytes([b[0], b[1]]);
            for ib in 0..8 {
                let t = if (extra >> (8 + ib)) & 1 != 0 { &shifted } else { &base };
                let l = nearest_int(id * scales[8 * ibl + ib]).clamp(-16, 15);
                let ul = (l + 16) as u8;
                b[2 + ib % 4] |= (ul & 15) << (4 * (ib / 4));
                extra |= ((ul >> 4) as u16) << ib;
                let dl = d * l as f32;
                let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
                let xb = &xbl[32 * ib..32 * ib + 32];
                let w = weights(ibl, ib, sigma2);
                for j in 0..32 {
                    let i = best_iq3(t, idl * xb[j]);
                    b[6 + 32 * (ib / 4) + j] |= ((i & 3) as u8) << (2 * (ib % 4));
                    b[70 + j] |= ((i >> 2) as u8) << ib;
                    let q = t[i] * l as f32;
                    sumqx += w[j] * q * xb[j];
                    sumq2 += w[j] * q * q;
                }
            }
            b[..2].copy_from_slice(&extra.to_le_bytes());
        }
        if sumq2 > 0.0 {
            wr_f16(y, 0, sumqx / sumq2);
        }
    }
}

// ---------------------------------------------------------------- IQ2_KL

/// The pair grid of §3.6 as level indices into the 8-entry `iq3nl` base table: `code[l1·8 + l2]` = pair index
/// or −1, and for every non-grid code its 8 nearest grid pairs (squared distance of the level values, ties by
/// pair index) — the candidates the quantizer searches.
struct PairGrid {
    q: [(f32, f32); 32],
    code: [i8; 64],
    neigh: [[u8; 8]; 64],
}

fn pair_grid() -> &'static PairGrid {
    static G: std::sync::OnceLock<PairGrid> = std::sync::OnceLock::new();
    G.get_or_init(|| {
        let v: [f32; 8] = core::array::from_fn(|i| IQ3NL[i] as f32);
        let mut g = PairGrid { q: [(0.0, 0.0); 32], code: [-1; 64], neigh: [[0; 8]; 64] };
        for (i, &p) in super::iqk_common::IQ2KL.iter().enumerate() {
            let [a, b] = p.to_le_bytes();
            let l1 = v.iter().position(|&t| t == a as i8 as f32).unwrap_or(0);
            let l2 = v.iter().position(|&t| t == b as i8 as f32).unwrap_or(0);
            g.q[i] = (a as i8 as f32, b as i8 as f32);
            g.code[8 * l1 + l2] = i as i8;
        }
        for c in 0..64 {
            let (x1, x2) = (v[c / 8], v[c % 8]);
            let mut order: [usize; 32] = core::array::from_fn(|i| i);
            let dist = |i: usize| (g.q[i].0 - x1).powi(2) + (g.q[i].1 - x2).powi(2);
            order.sort_by(|&a, &b| dist(a).total_cmp(&dist(b)).then(a.cmp(&b)));
            for k in 0..8 {
                g.neigh[c][k] = order[k] as u8;
            }
        }
        g
    })
}

impl PairGrid {
    /// Pair for `(id·x1, id·x2)`: the grid pair of the nearest levels if it exists, otherwise the weighted
    /// nearest among that code's neighbours.
    #[inline]
    fn index(&self, v: &[f32; 8], id: f32, x1: f32, x2: f32, w1: f32, w2: f32) -> usize {
        let (s1, s2) = (id * x1, id * x2);
        let c = 8 * best_iq3(v, s1) + best_iq3(v, s2);
        if self.code[c] >= 0 {
            return self.code[c] as usize;
        }
        let mut best = f32::MAX;
        let mut ib = self.neigh[c][0] as usize;
        for &n in &self.neigh[c] {
            let (q1, q2) = self.q[n as usize];
            let score = w1 * (q1 - s1) * (q1 - s1) + w2 * (q2 - s2) * (q2 - s2);
            if score < best {
                best = score;
                ib = n as usize;
            }
        }
        ib
    }

    /// `(Σ w·q·x, Σ w·q²)` of the pair assignment at inverse scale `id`.
    fn sums(&self, v: &[f32; 8], xb: &[f32], w: &[f32; 32], id: f32) -> (f32, f32) {
        let (mut qx, mut q2) = (0.0f32, 0.0f32);
        for j in (0..32).step_by(2) {
            let (q1, q2v) = self.q[self.index(v, id, xb[j], xb[j + 1], w[j], w[j + 1])];
            qx += w[j] * q1 * xb[j] + w[j + 1] * q2v * xb[j + 1];
            q2 += w[j] * q1 * q1 + w[j + 1] * q2v * q2v;
        }
        (qx, q2)
    }
}

/// IQ2_KL: per 32-block scale search over the pair codebook (ntry 5, both signs; weights |x| without imatrix),
/// row scale `−max_scale/32`, each 6-bit block scale chosen among nearest ±1 by weighted error, LS refit of the
/// f16 row scale times 1.025 (ik's empirical factor, stored in the file).
pub fn quantize_iq2_kl(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let g = pair_grid();
    let v: [f32; 8] = core::array::from_fn(|i| IQ3NL[i] as f32);
    let nblk = ne0 / QK_K;
    let mut wrow = Vec::new();
    let mut scales = vec![0.0f32; 8 * nblk];
    for (x, y) in rows(src, dst, ne0, 2 + nblk * IQ2_KL_BYTES) {
        y.fill(0);
        let im = row_weights(imatrix, x, 32, &mut wrow).then_some(&wrow[..]);
        let weights = |ibl: usize, ib: usize, sigma2: f32| {
            let xb = &x[QK_K * ibl + 32 * ib..QK_K * ibl + 32 * ib + 32];
            weights32(xb, im.map(|w| &w[QK_K * ibl + 32 * ib..]), sigma2, f32::abs)
        };
        // why 2.25: ik's σ² factor for this type
        let sig = |xbl: &[f32]| sum_x2(xbl) * (2.25 / QK_K as f32);
        let (mut amax_scale, mut max_scale) = (0.0f32, 0.0f32);
        for ibl in 0..nblk {
            let xbl = &x[QK_K * ibl..QK_K * ibl + QK_K];
            let sigma2 = sig(xbl);
            for ib in 0..8 {
                let xb = &xbl[32 * ib..32 * ib + 32];
                let w = weights(ibl, ib, sigma2);
                let (mut amax, mut max) = (0.0f32, 0.0f32);
                for &t in xb {
                    if t.abs() > amax {
                        amax = t.abs();
                        max = t;
                    }
                }
                scales[8 * ibl + ib] = 0.0;
                if amax < 1e-16 {
                    continue;
                }
                let id = 1.0 / (-max / v[0]);
                let (qp, q2p) = g.sums(&v, xb, &w, id);
                let (qm, q2m) = g.sums(&v, xb, &w, -id);
                let mut d = qp / q2p;
                let mut best = d * qp;
                if q2m > 0.0 && qm * qm > best * q2m {
                    d = qm / q2m;
                    best = d * qm;
                }
                for itry in -5..=5 {
                    let id = (itry as f32 + v[0]) / max;
                    for s in [1.0f32, -1.0] {
                        let (qx, q2) = g.sums(&v, xb, &w, s * id);
                        if q2 > 0.0 && qx * qx > best * q2 {
                            d = qx / q2;
                            best = d * qx;
                        }
                    }
                }
                scales[8 * ibl + ib] = d;
                if d.abs() > amax_scale {
                    amax_scale = d.abs();
                    max_scale = d;
                }
            }
        }
        if amax_scale == 0.0 {
            continue;
        }
        // why 32: 6-bit block scales −32…31
        let mut d = -max_scale / 32.0;
        let id = 1.0 / d;
        let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
        for ibl in 0..nblk {
            let xbl = &x[QK_K * ibl..QK_K * ibl + QK_K];
            let sigma2 = sig(xbl);
            let b = &mut y[2 + IQ2_KL_BYTES * ibl..2 + IQ2_KL_BYTES * (ibl + 1)];
            let mut sh = 0u16;
            for ib in 0..8 {
                let xb = &xbl[32 * ib..32 * ib + 32];
                let w = weights(ibl, ib, sigma2);
                let ls0 = nearest_int(id * scales[8 * ibl + ib]).clamp(-32, 31);
                let (mut best_score, mut ls) = (f32::MAX, ls0);
                for ils in (ls0 - 1).max(-32)..=(ls0 + 1).min(31) {
                    let dl = d * ils as f32;
                    let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
                    let mut score = 0.0f32;
                    for j in (0..32).step_by(2) {
                        let (q1, q2) = g.q[g.index(&v, idl, xb[j], xb[j + 1], w[j], w[j + 1])];
                        let (e1, e2) = (dl * q1 - xb[j], dl * q2 - xb[j + 1]);
                        score += w[j] * e1 * e1 + w[j + 1] * e2 * e2;
                    }
                    if score < best_score {
                        best_score = score;
                        ls = ils;
                    }
                }
                let uls = (ls + 32) as u16;
                b[2 + ib % 4] |= ((uls & 15) as u8) << (4 * (ib / 4));
                sh |= (uls >> 4) << (2 * ib);
                if ls == 0 {
                    continue;
                }
                let idl = 1.0 / (d * ls as f32);
                for j in 0..16 {
                    let idx = g.index(&v, idl, xb[2 * j], xb[2 * j + 1], w[2 * j], w[2 * j + 1]);
                    b[6 + 16 * (ib / 2) + j] |= ((idx & 15) as u8) << (4 * (ib % 2));
                    b[70 + j] |= ((idx >> 4) as u8) << ib;
                    let (q1, q2) = (ls as f32 * g.q[idx].0, ls as f32 * g.q[idx].1);
                    sumqx += w[2 * j] * q1 * xb[2 * j] + w[2 * j + 1] * q2 * xb[2 * j + 1];
                    sumq2 += w[2 * j] * q1 * q1 + w[2 * j + 1] * q2 * q2;
                }
            }
            b[..2].copy_from_slice(&sh.to_le_bytes());
        }
        if sumq2 > 0.0 {
            d = sumqx / sumq2;
        }
        // why 1.025: ik's empirical correction of the LS scale for this type (§13.4 step 5)
        wr_f16(y, 0, 1.025 * d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_grid_is_a_bijection_onto_32_codes() {
        let g = pair_grid();
        assert_eq!(g.code.iter().filter(|&&c| c >= 0).count(), 32);
        for c in 0..64 {
            if g.code[c] >= 0 {
                assert_eq!(g.neigh[c][0] as i8, g.code[c], "a grid code is its own nearest pair");
            }
        }
    }
}
