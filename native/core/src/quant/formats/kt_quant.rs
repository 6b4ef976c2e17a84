//! File quantizers of the trellis types IQ1_KT, IQ2_KT, IQ3_KT, IQ4_KT (spec/quants.md §6.12, §13.6); their
//! decoders live in `kt`, the codebook search in `kt_search`.
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`quantize_row_iq{1,2,3,4}_kt_impl`). Per row: weights
//! (σ² factor 2), per 32-block best matches and LS scales for a few starting scales of both signs, a row scale
//! fitted to the quantized block scales, a final best-match pass with the quantized block scales (IQ1/IQ2:
//! keeping the earlier indices where they were better) and an LS refit of the f32 row scale. Rows are
//! independent, so the file quantizer's row chunking parallelises them.

use super::common::{rows, wr_f32};
use super::kt_search::{set_weights, Codebook};
use super::values::{best_index_iq4nl, KVALUES_IQ4NL as IQ4NL};
use crate::quant::convert::nearest_int;
use std::sync::OnceLock;

const QK: usize = 256;

fn cb_iq1() -> &'static Codebook<8> {
    static C: OnceLock<Codebook<8>> = OnceLock::new();
    C.get_or_init(|| Codebook::new(13, 4096, false, 32))
}
fn cb_iq2() -> &'static Codebook<8> {
    static C: OnceLock<Codebook<8>> = OnceLock::new();
    C.get_or_init(|| Codebook::new(16, 4096, false, 8))
}
fn cb_iq3() -> &'static Codebook<8> {
    static C: OnceLock<Codebook<8>> = OnceLock::new();
    C.get_or_init(|| Codebook::new(16, 4096, true, 8))
}
fn cb_iq4(second: bool) -> &'static Codebook<4> {
    static C1: OnceLock<Codebook<4>> = OnceLock::new();
    static C2: OnceLock<Codebook<4>> = OnceLock::new();
    if second {
        C2.get_or_init(|| Codebook::new(15, 4096 + 32768, false, 6))
    } else {
        C1.get_or_init(|| Codebook::new(15, 4096, false, 6))
    }
}

fn amax(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, v| m.max(v.abs()))
}

/// Per-row state of the IQ1_KT / IQ2_KT quantizers (they differ only in the block packing and final factor).
struct Rows8 {
    w: Vec<f32>,
    scales: Vec<f32>,
    idx: Vec<u32>,
}

/// IQ1_KT and IQ2_KT, steps 1–4: block scales (`all_scales`) and indices (`all_idx`) from the starting scales
/// `amax/scale_0` (IQ1_KT also `amax/(scale_0 − 8)`), then the row scale `d` over the IQ4_NL scale grid
/// (19 tries). Returns `d` and the 4-bit scale index per block, or `None` for an all-zero row.
fn kt8_scales(cb: &Codebook<8>, x: &[f32], st: &mut Rows8, second_try: bool) -> Option<(f32, Vec<usize>)> {
    let nblk = x.len() / 32;
    let amax_row = amax(x);
    let (mut amax_scale, mut max_scale) = (0f32, 0f32);
    let mut bi = [0u32; 8];
    for ib in 0..nblk {
        let xb = &x[32 * ib..32 * ib + 32];
        let w = &st.w[32 * ib..32 * ib + 32];
        let am = amax(xb);
        st.scales[ib] = 0.0;
        st.idx[4 * ib..4 * ib + 4].fill(0);
        if am < 1e-16 {
            continue;
        }
        let mut scale_0 = 90f32.max(124.0 * am / amax_row);
        let try_scale = |s0: f32, bi: &mut [u32; 8]| {
            cb.find_best_match(am / s0, xb, w, &mut bi[..4]);
            let (dp, sp) = cb.find_best_scale(xb, w, &bi[..4]);
            cb.find_best_match(-am / s0, xb, w, &mut bi[4..]);
            let (dm, sm) = cb.find_best_scale(xb, w, &bi[4..]);
            if sp > sm {
                (dp, sp, 0)
            } else {
                (dm, sm, 4)
            }
        };
        let (d, s, o) = try_scale(scale_0, &mut bi);
        st.scales[ib] = d;
        st.idx[4 * ib..4 * ib + 4].copy_from_slice(&bi[o..o + 4]);
        if second_try {
            scale_0 -= 8.0;
            let (d1, s1, o1) = try_scale(scale_0, &mut bi);
            if s1 > s {
                st.scales[ib] = d1;
                st.idx[4 * ib..4 * ib + 4].copy_from_slice(&bi[o1..o1 + 4]);
            }
        }
        if st.scales[ib].abs() > amax_scale {
            amax_scale = st.scales[ib].abs();
            max_scale = st.scales[ib];
        }
    }
    if max_scale == 0.0 {
        return None;
    }
    let mut d = max_scale / IQ4NL[0] as f32;
    let mut best = 0f32;
    for itry in -9..=9 {
        let id = (itry as f32 + IQ4NL[0] as f32) / max_scale;
        let (mut qx, mut q2) = (0f32, 0f32);
        for ib in 0..nblk {
            let dl = IQ4NL[best_index_iq4nl(&IQ4NL, id * st.scales[ib])] as f32;
            for g in 0..4 {
                let qb = cb.group(st.idx[4 * ib + g]);
                for j in 0..8 {
                    let jj = 32 * ib + 8 * g + j;
                    let q = dl * qb[j];
                    qx += st.w[jj] * x[jj] * q;
                    q2 += st.w[jj] * q * q;
                }
            }
        }
        if q2 > 0.0 && qx * qx > best * q2 {
            d = qx / q2;
            best = d * qx;
        }
    }
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let ls = (0..nblk).map(|ib| best_index_iq4nl(&IQ4NL, id * st.scales[ib])).collect();
    Some((d, ls))
}

/// Step 5 of IQ1_KT / IQ2_KT: best match with the quantized block scale, kept only where it beats the earlier
/// indices; `put(block, indices)` packs; returns the LS refit of `d` (or `None`).
fn kt8_final(cb: &Codebook<8>, x: &[f32], st: &mut Rows8, d: f32, ls: &[usize], mut put: impl FnMut(usize, &[u32; 4])) -> Option<f32> {
    let (mut qx, mut q2) = (0f32, 0f32);
    let mut bi = [0u32; 4];
    for ib in 0..x.len() / 32 {
        let xb = &x[32 * ib..32 * ib + 32];
        let w = &st.w[32 * ib..32 * ib + 32];
        let l = IQ4NL[ls[ib]] as f32;
        let dl = d * l;
        cb.find_best_match(dl, xb, w, &mut bi);
        let prev = &mut st.idx[4 * ib..4 * ib + 4];
        let (mut e1, mut e2) = (0f32, 0f32);
        for g in 0..4 {
            let (q1, qn) = (cb.group(prev[g]), cb.group(bi[g]));
            for j in 0..8 {
                let jj = 8 * g + j;
                let (r1, r2) = (xb[jj] - dl * q1[j], xb[jj] - dl * qn[j]);
                e1 += w[jj] * r1 * r1;
                e2 += w[jj] * r2 * r2;
            }
        }
        if e1 < e2 {
            bi.copy_from_slice(prev);
        } else {
            prev.copy_from_slice(&bi);
        }
        put(ib, &bi);
        for g in 0..4 {
            let q = cb.group(bi[g]);
            for k in 0..8 {
                let (xv, wv) = (xb[8 * g + k], w[8 * g + k]);
                let qv = q[k] * l;
                qx += wv * xv * qv;
                q2 += wv * qv * qv;
            }
        }
    }
    (q2 > 0.0).then(|| qx / q2)
}

pub fn quantize_iq1_kt(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let cb = cb_iq1();
    let mut st = Rows8 { w: vec![0f32; ne0], scales: vec![0f32; ne0 / 32], idx: vec![0u32; ne0 / 8] };
    for (x, y) in rows(src, dst, ne0, 4 + ne0 / QK * 56) {
        y.fill(0);
        set_weights(2.0, x, imatrix, &mut st.w);
        let Some((d, ls)) = kt8_scales(cb, x, &mut st, true) else { continue };
        wr_f32(y, 0, d);
        if d == 0.0 {
            continue;
        }
        let r = kt8_final(cb, x, &mut st, d, &ls, |ibg, bi| {
            let b = &mut y[4 + 56 * (ibg / 8)..4 + 56 * (ibg / 8 + 1)];
            let ib = ibg % 8;
            b[ib] = ls[ibg] as u8 & 15;
            for (j, &i) in bi.iter().enumerate() {
                b[8 + 4 * ib + j] = i as u8;
                b[40 + 4 * (ib % 4) + j] |= (((i >> 8) & 15) as u8) << (4 * (ib / 4));
                b[ib] |= ((i >> 12) as u8) << (4 + j);
            }
        });
        // why 1.07: ik's empirical correction of the LS row scale for IQ1_KT (stored in the file)
        if let Some(d) = r {
            wr_f32(y, 0, d * 1.07);
        }
    }
}

pub fn quantize_iq2_kt(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let cb = cb_iq2();
    let mut st = Rows8 { w: vec![0f32; ne0], scales: vec![0f32; ne0 / 32], idx: vec![0u32; ne0 / 8] };
    for (x, y) in rows(src, dst, ne0, 4 + ne0 / QK * 68) {
        y.fill(0);
        set_weights(2.0, x, imatrix, &mut st.w);
        let Some((d, ls)) = kt8_scales(cb, x, &mut st, false) else { continue };
        for (ibl, b) in y[4..].chunks_exact_mut(68).enumerate() {
            for ib in 0..4 {
                b[ib] = (ls[8 * ibl + ib] | (ls[8 * ibl + ib + 4] << 4)) as u8;
            }
        }
        wr_f32(y, 0, d);
        if d == 0.0 {
            continue;
        }
        let r = kt8_final(cb, x, &mut st, d, &ls, |ib, bi| {
            let b = &mut y[4 + 68 * (ib / 8)..4 + 68 * (ib / 8 + 1)];
            for (j, &i) in bi.iter().enumerate() {
                let o = 4 + 2 * (4 * (ib % 8) + j);
                b[o..o + 2].copy_from_slice(&(i as u16).to_le_bytes());
            }
        });
        if let Some(d) = r {
            wr_f32(y, 0, d);
        }
    }
}

/// IQ3_KT: matches on |x| in the |v| codebook (signs stored separately), 7 starting scales per block,
/// unsigned 4-bit block scales against `d` (19 tries around `max_scale/15`), final match and LS refit.
pub fn quantize_iq3_kt(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let cb = cb_iq3();
    let nblk = ne0 / 32;
    let (mut w, mut scales, mut qtmp) = (vec![0f32; ne0], vec![0f32; nblk], vec![0f32; ne0]);
    let mut bi = [0u32; 4];
    for (x, y) in rows(src, dst, ne0, 4 + ne0 / QK * 100) {
        y.fill(0);
        let amax_row = amax(x);
        if amax_row == 0.0 {
            continue;
        }
        set_weights(2.0, x, imatrix, &mut w);
        let mut max_scale = 0f32;
        for ib in 0..nblk {
            let xa: [f32; 32] = core::array::from_fn(|j| x[32 * ib + j].abs());
            let wb = &w[32 * ib..32 * ib + 32];
            let am = amax(&xa);
            scales[ib] = 0.0;
            qtmp[32 * ib..32 * ib + 32].fill(0.0);
            if am < 1e-16 {
                continue;
            }
            let scale_0 = 84f32.max(123.0 * am / amax_row);
            let mut best = 0f32;
            for itry in -3..=3 {
                // why 8: ik's step between the starting scales
                cb.find_best_match(am / (scale_0 + 8.0 * itry as f32), &xa, wb, &mut bi);
                let (d, s) = cb.find_best_scale(&xa, wb, &bi);
                if s > best {
                    best = s;
                    scales[ib] = d;
                    for g in 0..4 {
                        qtmp[32 * ib + 8 * g..32 * ib + 8 * g + 8].copy_from_slice(cb.group(bi[g]));
                    }
                }
            }
            max_scale = max_scale.max(scales[ib]);
        }
        if max_scale <= 0.0 {
            continue;
        }
        let mut d = max_scale / 15.0;
        let mut best = 0f32;
        for itry in -9..=9 {
            let id = (itry as f32 * 0.2 + 15.0) / max_scale;
            let (mut qx, mut q2) = (0f32, 0f32);
            for ib in 0..nblk {
                let dl = nearest_int(id * scales[ib]).clamp(0, 15) as f32;
                for j in 32 * ib..32 * ib + 32 {
                    let q = dl * qtmp[j];
                    qx += w[j] * x[j].abs() * q;
                    q2 += w[j] * q * q;
                }
            }
            if q2 > 0.0 && qx * qx > best * q2 {
                d = qx / q2;
                best = d * qx;
            }
        }
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let ls: Vec<i32> = scales.iter().map(|&s| nearest_int(id * s).clamp(0, 15)).collect();
        wr_f32(y, 0, d);
        let (mut qx, mut q2) = (0f32, 0f32);
        for (ibl, b) in y[4..].chunks_exact_mut(100).enumerate() {
            for ib in 0..4 {
                b[ib] = (ls[8 * ibl + ib] | (ls[8 * ibl + ib + 4] << 4)) as u8;
            }
            for ib in 0..8 {
                let o = QK * ibl + 32 * ib;
                let xa: [f32; 32] = core::array::from_fn(|j| x[o + j].abs());
                for j in 0..32 {
                    b[68 + j] |= ((x[o + j] < 0.0) as u8) << ib;
                }
                let l = ls[8 * ibl + ib];
                let wb = &w[o..o + 32];
                cb.find_best_match(d * l as f32, &xa, wb, &mut bi);
                for (g, &i) in bi.iter().enumerate() {
                    let p = 4 + 2 * (4 * ib + g);
                    b[p..p + 2].copy_from_slice(&(i as u16).to_le_bytes());
                    let q = cb.group(i);
                    for k in 0..8 {
                        let qv = q[k] * l as f32;
                        qx += wb[8 * g + k] * xa[8 * g + k] * qv;
                        q2 += wb[8 * g + k] * qv * qv;
                    }
                }
            }
        }
        if q2 > 0.0 {
            wr_f32(y, 0, qx / q2);
        }
    }
}

/// IQ4_KT: per block 5 starting scales × 2 signs on the first codebook, then the second codebook (offset
/// 32768 + 4096; flag bit 0 of the block word) from the best scale and the same starts; signed 7-bit block
/// scales against `d = −max_scale/64`, final match and LS refit.
pub fn quantize_iq4_kt(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
    let (c1, c2) = (cb_iq4(false), cb_iq4(true));
    let nblk = ne0 / 32;
    let (mut w, mut scales, mut second) = (vec![0f32; ne0], vec![0f32; nblk], vec![false; nblk]);
    let mut bi = [0u32; 8];
    for (x, y) in rows(src, dst, ne0, 4 + ne0 / QK * 128) {
        y.fill(0);
        let amax_row = amax(x);
        if amax_row == 0.0 {
            continue;
        }
        set_weights(2.0, x, imatrix, &mut w);
        let (mut amax_scale, mut max_scale) = (0f32, 0f32);
        for ib in 0..nblk {
            let xb = &x[32 * ib..32 * ib + 32];
            let wb = &w[32 * ib..32 * ib + 32];
            let am = amax(xb);
            scales[ib] = 0.0;
            second[ib] = false;
            if am < 1e-16 {
                continue;
            }
            let scale_0 = 90f32.max(124.0 * am / amax_row);
            let mut best = 0f32;
            let tries = |cb: &Codebook<4>, best: &mut f32, bi: &mut [u32; 8]| {
                let mut found = None;
                for itry in -2..=2 {
                    for s in [1f32, -1.0] {
                        cb.find_best_match(s * am / (8.0 * itry as f32 + scale_0), xb, wb, bi);
                        let (d, sc) = cb.find_best_scale(xb, wb, bi);
                        if sc > *best {
                            *best = sc;
                            found = Some(d);
                        }
                    }
                }
                found
            };
            if let Some(d) = tries(c1, &mut best, &mut bi) {
                scales[ib] = d;
            }
            c2.find_best_match(scales[ib], xb, wb, &mut bi);
            let (d, sc) = c2.find_best_scale(xb, wb, &bi);
            if sc > best {
                scales[ib] = d;
                second[ib] = true;
            }
            if let Some(d) = tries(c2, &mut best, &mut bi) {
                scales[ib] = d;
                second[ib] = true;
            }
            if scales[ib].abs() > amax_scale {
                amax_scale = scales[ib].abs();
                max_scale = scales[ib];
            }
        }
        // why 64: signed 7-bit block scales −64…63
        let d = -max_scale / 64.0;
        wr_f32(y, 0, d);
        if d == 0.0 {
            continue;
        }
        let id = 1.0 / d;
        let (mut qx, mut q2) = (0f32, 0f32);
        for (ibl, b) in y[4..].chunks_exact_mut(128).enumerate() {
            for ib in 0..8 {
                let k = 8 * ibl + ib;
                let cb = if second[k] { c2 } else { c1 };
                let (xb, wb) = (&x[32 * k..32 * k + 32], &w[32 * k..32 * k + 32]);
                let ls = nearest_int(id * scales[k]).clamp(-64, 63);
                let mut word = (((ls + 64) as u32) << 1) & 0xFF | second[k] as u32;
                cb.find_best_match(d * ls as f32, xb, wb, &mut bi);
                for (j, &i) in bi.iter().enumerate() {
                    word |= (i >> 12) << (8 + 3 * j);
                    let jj = 8 * ib + j;
                    b[32 + jj] = i as u8;
                    b[96 + jj % 32] |= (((i >> 8) & 15) as u8) << (4 * (jj / 32));
                    let q = cb.group(i);
                    for t in 0..4 {
                        let qv = q[t] * ls as f32;
                        qx += wb[4 * j + t] * xb[4 * j + t] * qv;
                        q2 += wb[4 * j + t] * qv * qv;
                    }
                }
                b[4 * ib..4 * ib + 4].copy_from_slice(&word.to_le_bytes());
            }
        }
        if q2 > 0.0 {
            wr_f32(y, 0, qx / q2);
        }
    }
}
