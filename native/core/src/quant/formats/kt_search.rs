//! The trellis codebook search shared by the KT quantizers (spec/quants.md §6.12.1, §13.6).
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`QuantizerIQKT`: `set_values` with `is_int = true`,
//! `cluster_points` for the binned cluster counts 256 and 625, `finalize_clusters`, `find_best_match`,
//! `find_best_scale`, `set_weights`). Written from that algorithm: the codebook is every group the generator
//! can produce; points are binned into clusters (one bit per coordinate against the per-coordinate midpoint —
//! or median for the |v| codebook of IQ3_KT — for 8-value groups; 5 fixed bins per coordinate for IQ4_KT's
//! 4-value groups); each point joins the lists of its `n` nearest cluster centres (lists padded to multiples of
//! 8 with the nearest outsiders); a scaled group is matched by locating its bin and scanning that list.
//!
//! Why the lists are stored as structure-of-arrays blocks of 8 points: the scan, the quantizers' only hot loop,
//! then runs 8 points per step in vector registers (AVX2 when the CPU has it, selected once at run time).

use super::kt::gen;

/// One codebook with its cluster lists, for groups of `G` (8 or 4) values.
pub struct Codebook<const G: usize> {
    /// `values[G·i + k]` = value k of group index i (|v| for the abs codebook).
    values: Vec<f32>,
    /// Per-cluster candidate indices and their values, in SoA blocks of 8 points: `soa[c][(8·G)·blk + 8·k + i]`.
    lists: Vec<Vec<u32>>,
    soa: Vec<Vec<f32>>,
    /// The whole codebook in the same SoA form (scanned for a cluster no point chose).
    all_soa: Vec<f32>,
    /// Per-coordinate thresholds of the 256-bin lookup (8-value groups).
    mid: [f32; 8],
}

/// 5 bins per coordinate of IQ4_KT's 4-value groups (625 clusters).
#[inline]
fn bin5(x: f32) -> usize {
    if x < -48.0 {
        0
    } else if x < -16.0 {
        1
    } else if x < 16.0 {
        2
    } else if x < 48.0 {
        3
    } else {
        4
    }
}

fn to_soa<const G: usize>(values: &[f32], idx: &[u32]) -> Vec<f32> {
    debug_assert!(idx.len() % 8 == 0);
    let mut out = vec![0f32; idx.len() * G];
    for (b, chunk) in idx.chunks_exact(8).enumerate() {
        for (i, &p) in chunk.iter().enumerate() {
            for k in 0..G {
                out[8 * G * b + 8 * k + i] = values[G * p as usize + k];
            }
        }
    }
    out
}

impl<const G: usize> Codebook<G> {
    /// Build the codebook of `bits`-bit indices at generator offset `offset`; `abs` = use |v| (IQ3_KT);
    /// `n_neigh` = clusters each point joins.
    pub fn new(bits: u32, offset: u32, abs: bool, n_neigh: usize) -> Self {
        let n = 1usize << bits;
        let mut values = vec![0f32; n * G];
        for (i, v) in values.chunks_exact_mut(G).enumerate() {
            gen(i as u32, offset, v);
            if abs {
                v.iter_mut().for_each(|t| *t = t.abs());
            }
        }
        let mut mid = [0f32; 8];
        let ncl = if G == 8 { 256 } else { 625 };
        if G == 8 {
            for (k, m) in mid.iter_mut().enumerate() {
                if abs {
                    let mut p: Vec<i32> = (0..n).map(|i| values[G * i + k] as i32).collect();
                    p.sort_unstable();
                    *m = 0.5 * (p[n / 2] + p[n / 2 - 1]) as f32;
                } else {
                    let (lo, hi) =
                        (0..n).fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), i| (a.min(values[G * i + k]), b.max(values[G * i + k])));
                    *m = 0.5 * (lo + hi);
                }
            }
        }
        let mut cb = Codebook { values, lists: Vec::new(), soa: Vec::new(), all_soa: Vec::new(), mid };
        // cluster centres: the mean of the points of each bin
        let mut sump = vec![0f32; ncl * G];
        let mut counts = vec![0u32; ncl];
        for i in 0..n {
            let v = &cb.values[G * i..G * i + G];
            let u = cb.bin(v);
            counts[u] += 1;
            for k in 0..G {
                sump[G * u + k] += v[k];
            }
        }
        let centres: Vec<f32> =
            (0..ncl * G).map(|j| if counts[j / G] > 0 { sump[j] / counts[j / G] as f32 } else { f32::INFINITY }).collect();
        let dist = |p: &[f32], c: usize| -> f32 {
            let mut d2 = 0f32;
            for k in 0..G {
                let d = p[k] - centres[G * c + k];
                d2 += d * d;
            }
            d2
        };
        // every point joins its n_neigh nearest clusters (ties keep the lower cluster)
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); ncl];
        let mut which = vec![0u32; n * n_neigh];
        let (mut best, mut ibest) = (vec![0f32; n_neigh], vec![0u32; n_neigh]);
        for ip in 0..n {
            let p = &cb.values[G * ip..G * ip + G];
            best.fill(f32::INFINITY);
            ibest.fill(u32::MAX);
            for c in 0..ncl {
                let d2 = dist(p, c);
                if let Some(j) = best.iter().position(|&b| d2 < b) {
                    best.copy_within(j..n_neigh - 1, j + 1);
                    ibest.copy_within(j..n_neigh - 1, j + 1);
                    best[j] = d2;
                    ibest[j] = c as u32;
                }
            }
            for &c in &ibest {
                lists[c as usize].push(ip as u32);
            }
            which[n_neigh * ip..n_neigh * ip + n_neigh].copy_from_slice(&ibest);
        }
        // pad each non-empty list to a multiple of 8 with the nearest points not yet in it
        for (c, list) in lists.iter_mut().enumerate() {
            let nadd = (8 - list.len() % 8) % 8;
            if list.is_empty() || nadd == 0 {
                continue;
            }
            let mut extra: Vec<(f32, u32)> = (0..n)
                .filter(|&ip| !which[n_neigh * ip..n_neigh * ip + n_neigh].contains(&(c as u32)))
                .map(|ip| (dist(&cb.values[G * ip..G * ip + G], c), ip as u32))
                .collect();
            extra.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            list.extend(extra.iter().take(nadd).map(|e| e.1));
        }
        cb.soa = lists.iter().map(|l| to_soa::<G>(&cb.values, l)).collect();
        cb.all_soa = to_soa::<G>(&cb.values, &(0..n as u32).collect::<Vec<_>>());
        cb.lists = lists;
        cb
    }

    /// Values of group index `i`.
    #[inline]
    pub fn group(&self, i: u32) -> &[f32] {
        &self.values[G * i as usize..G * i as usize + G]
    }

    #[inline]
    fn bin(&self, sx: &[f32]) -> usize {
        if G == 8 {
            (0..8).fold(0, |u, k| u | ((sx[k] > self.mid[k]) as usize) << k)
        } else {
            let mut s = 1;
            let mut u = 0;
            for &x in &sx[..G] {
                u += s * bin5(x);
                s *= 5;
            }
            u
        }
    }

    /// For each of the `xb.len()/G` groups, the index whose values best match `xb/d` (weighted squared
    /// error, searched in the group's cluster list); all zero when `d == 0`.
    pub fn find_best_match(&self, d: f32, xb: &[f32], w: &[f32], out: &mut [u32]) {
        if d == 0.0 {
            out.fill(0);
            return;
        }
        let id = 1.0 / d;
        for (l, o) in out.iter_mut().enumerate() {
            let sx: [f32; G] = core::array::from_fn(|k| id * xb[G * l + k]);
            let wl: [f32; G] = core::array::from_fn(|k| w[G * l + k]);
            let c = self.bin(&sx);
            let (soa, list) = if self.lists[c].is_empty() { (&self.all_soa[..], None) } else { (&self.soa[c][..], Some(&self.lists[c])) };
            let j = scan::<G>(soa, &sx, &wl);
            *o = list.map_or(j as u32, |li| li[j]);
        }
    }

    /// Weighted LS scale of the assignment `idx` and its score `(Σwqx)²/Σwq²`; `(0, 0)` when Σwq² = 0.
    pub fn find_best_scale(&self, xb: &[f32], w: &[f32], idx: &[u32]) -> (f32, f32) {
        let (mut qx, mut q2) = (0f32, 0f32);
        for (l, &i) in idx.iter().enumerate() {
            let q = self.group(i);
            for k in 0..G {
                qx += w[G * l + k] * q[k] * xb[G * l + k];
                q2 += w[G * l + k] * q[k] * q[k];
            }
        }
        if q2 > 0.0 {
            (qx / q2, qx * qx / q2)
        } else {
            (0.0, 0.0)
        }
    }
}

/// Index (within `soa`) of the point minimising `Σ_k w_k·(p_k − x_k)²` (first minimum wins).
fn scan<const G: usize>(soa: &[f32], x: &[f32; G], w: &[f32; G]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { scan_avx2::<G>(soa, x, w) };
        }
    }
    scan_body::<G>(soa, x, w)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scan_avx2<const G: usize>(soa: &[f32], x: &[f32; G], w: &[f32; G]) -> usize {
    scan_body::<G>(soa, x, w)
}

#[inline(always)]
fn scan_body<const G: usize>(soa: &[f32], x: &[f32; G], w: &[f32; G]) -> usize {
    let mut best = [f32::INFINITY; 8];
    let mut bidx = [0u32; 8];
    for (b, blk) in soa.chunks_exact(8 * G).enumerate() {
        let mut acc = [0f32; 8];
        for k in 0..G {
            let p: &[f32; 8] = blk[8 * k..8 * k + 8].try_into().unwrap_or(&[0.0; 8]);
            for i in 0..8 {
                let d = p[i] - x[k];
                acc[i] += w[k] * (d * d);
            }
        }
        for i in 0..8 {
            let better = acc[i] < best[i];
            best[i] = if better { acc[i] } else { best[i] };
            bidx[i] = if better { b as u32 } else { bidx[i] };
        }
    }
    let mut j = 0;
    for i in 1..8 {
        if best[i] < best[j] || (best[i] == best[j] && bidx[i] < bidx[j]) {
            j = i;
        }
    }
    8 * bidx[j] as usize + j
}

/// `set_weights`: per 256-block `σ² = scale·Σx²/256`; with an imatrix `w = qw·sqrt(σ² + x²)` (32-blocks whose
/// weights or values vanish get 1e-4), otherwise `σ²/4 + x²`; all-zero 256-blocks get 1e-4.
pub fn set_weights(sigma2_scale: f32, x: &[f32], imatrix: Option<&[f32]>, out: &mut [f32]) {
    const EPS2: f32 = 1e-14;
    const W0: f32 = 1e-4;
    for (ibl, (xbl, wbl)) in x.chunks_exact(256).zip(out.chunks_exact_mut(256)).enumerate() {
        let sumx2 = xbl.iter().fold(0f32, |s, &v| s + v * v);
        if sumx2 < EPS2 * 256.0 {
            wbl.fill(W0);
            continue;
        }
        let sigma2 = sigma2_scale * sumx2 / 256.0;
        match imatrix {
            Some(im) => {
                for (ib, (xb, wb)) in xbl.chunks_exact(32).zip(wbl.chunks_exact_mut(32)).enumerate() {
                    let qw = &im[256 * ibl + 32 * ib..256 * ibl + 32 * ib + 32];
                    let (mut swx, mut sw2, mut sx2) = (0f32, 0f32, 0f32);
                    for j in 0..32 {
                        wb[j] = qw[j] * (sigma2 + xb[j] * xb[j]).sqrt();
                        swx += wb[j] * xb[j].abs();
                        sw2 += wb[j] * wb[j];
                        sx2 += xb[j] * xb[j];
                    }
                    if sx2 < EPS2 || sw2 < EPS2 || swx < EPS2 {
                        wb.fill(W0);
                    }
                }
            }
            None => {
                for (w, &v) in wbl.iter_mut().zip(xbl) {
                    *w = 0.25 * sigma2 + v * v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_the_exact_point() {
        let cb = Codebook::<4>::new(15, 4096, false, 6);
        let w = [1f32; 4];
        for i in [0u32, 77, 4095, 32767] {
            let g: Vec<f32> = cb.group(i).to_vec();
            let mut out = [0u32; 1];
            cb.find_best_match(1.0, &g, &w, &mut out);
            assert_eq!(cb.group(out[0]), &g[..], "index {i}");
        }
        assert!(cb.lists.iter().all(|l| l.len() % 8 == 0));
    }
}
