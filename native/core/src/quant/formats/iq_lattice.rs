//! Shared machinery of the lattice i-quants: grid maps and neighbour lists (built once, lazily), the
//! neighbour searches, the quantizers' common scale search, the `Format` boilerplate, and little-endian field
//! readers for blocks and Q8_K activations.
//!
//! Ports of ggml-quants.c `iq2xs_init_impl`, `iq3xs_init_impl`, `iq2_find_best_neighbour`,
//! `iq3_find_best_neighbour`, `iq1_find_best_neighbour2` (ik_llama.cpp @ 8337e4cd),
//! spec/quants.md §13.3.

// Index loops mirror the reference C loops one to one, which keeps the port reviewable.
#![allow(clippy::needless_range_loop)]

use std::sync::OnceLock;

pub use super::common::{rd_u32, sum_sq};
use super::grids;
pub use super::search::make_qp_quants_lattice;
use crate::quant::convert::nearest_int;

/// Weights per super-block of every lattice i-quant.
pub const QK_K: usize = 256;

/// Q8_K (ik layout, spec §5.6): f32 d @0, f32 sum @4, i8 qs[256] @8, i16 bsums[16] @264; 296 bytes.
pub const Q8K_SIZE: usize = 296;
const Q8K_QS: usize = 8;
const Q8K_BSUMS: usize = 264;

#[inline]
pub fn rd_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

#[inline]
pub fn wr_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

#[inline]
pub fn wr_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// `d` of one Q8_K block.
#[inline]
pub fn q8k_d(y: &[u8]) -> f32 {
    f32::from_bits(rd_u32(y, 0))
}

/// Quant `j` (0…255) of one Q8_K block.
#[inline]
pub fn q8k_q(y: &[u8], j: usize) -> i32 {
    y[Q8K_QS + j] as i8 as i32
}

/// `bsums[k]` (sum of quants 16k…16k+15) of one Q8_K block.
#[inline]
pub fn q8k_bsum(y: &[u8], k: usize) -> i32 {
    rd_u16(y, Q8K_BSUMS + 2 * k) as i16 as i32
}

/// Map entry of codes that no search produces (a 2-bit digit 3): no candidate list.
const NO_LIST: i32 = i32::MIN;

/// A lattice in the quantizer's coordinates: every coordinate is `2l + 1` for a level `l`, `map[code]` is the
/// grid index of an on-grid code or `-(offset + 1)` with `neighbours[offset]` = candidate count, followed by the
/// candidate indices sorted by (squared distance, index) — exactly the reference's layout.
pub struct Lattice {
    /// Coordinates per grid point (8 for the 2-bit and 1-bit grids, 4 for the 3-bit grids).
    pub dim: usize,
    /// Bits per coordinate in a code (2 or 3).
    bits: u32,
    /// `grid[dim·i + j]` = `2l + 1` of coordinate j of point i.
    pub grid: Vec<i8>,
    map: Vec<i32>,
    neighbours: Vec<u16>,
}

impl Lattice {
    /// Build from a sorted code list. `nwant` = number of distinct nearest distances kept as candidates.
    fn build(codes: &[u16], dim: usize, bits: u32, nwant: usize) -> Lattice {
        let mask = (1u16 << bits) - 1;
        let mut grid = Vec::with_capacity(codes.len() * dim);
        for &c in codes {
            for j in 0..dim {
                grid.push((2 * ((c >> (bits as usize * j)) & mask) + 1) as i8);
            }
        }
        let map_size = 1usize << (bits as usize * dim);
        let mut map = vec![NO_LIST; map_size];
        for (i, &c) in codes.iter().enumerate() {
            map[c as usize] = i as i32;
        }
        // Levels a quantizer can produce: 0..=2 for 2-bit codes (kMaxQ = 3), 0..=7 for 3-bit codes. Codes with
        // a 2-bit digit 3 are never looked up, so they get no neighbour list (the reference builds unused ones).
        let max_level = if bits == 2 { 2 } else { 7 };
        let mut neighbours = Vec::new();
        let mut dist: Vec<(i32, u16)> = Vec::with_capacity(codes.len());
        for code in 0..map_size {
            if map[code] >= 0 {
                continue;
            }
            let mut pos = [0i32; 8];
            let mut valid = true;
            for (j, p) in pos.iter_mut().enumerate().take(dim) {
                let l = ((code >> (bits as usize * j)) & mask as usize) as i32;
                valid &= l <= max_level;
                *p = 2 * l + 1;
            }
            if !valid {
                continue;
            }
            dist.clear();
            for (i, g) in grid.chunks_exact(dim).enumerate() {
                let d2: i32 = g.iter().zip(&pos).map(|(&a, &b)| (a as i32 - b) * (a as i32 - b)).sum();
                dist.push((d2, i as u16));
            }
            dist.sort_unstable();
            map[code] = -(neighbours.len() as i32 + 1);
            let start = neighbours.len();
            neighbours.push(0);
            let (mut d2, mut nhave) = (dist[0].0, 1);
            for &(d, i) in dist.iter() {
                if d > d2 {
                    if nhave == nwant {
                        break;
                    }
                    d2 = d;
                    nhave += 1;
                }
                neighbours.push(i);
            }
            neighbours[start] = (neighbours.len() - start - 1) as u16;
        }
        Lattice { dim, bits, grid, map, neighbours }
    }

    /// Code of levels `l[0..dim]` (each level masked to the code's bits, so the code always indexes the map).
    #[inline]
    pub fn code(&self, l: &[i8]) -> usize {
        let mask = (1usize << self.bits) - 1;
        l.iter().take(self.dim).enumerate().fold(0, |u, (j, &v)| u | ((v as usize & mask) << (self.bits as usize * j)))
    }

    /// Grid index of an on-grid code, or `Err(candidates)` for an off-grid one.
    #[inline]
    pub fn lookup(&self, code: usize) -> Result<usize, &[u16]> {
        let m = self.map[code];
        if m >= 0 {
            return Ok(m as usize);
        }
        if m == NO_LIST {
            return Err(&[]);
        }
        let off = (-m - 1) as usize;
        let n = self.neighbours[off] as usize;
        Err(&self.neighbours[off + 1..off + 1 + n])
    }

    /// Grid index of levels the search left on the grid; an off-grid code (only after degenerate input) takes
    /// its nearest grid neighbour instead of aborting like the reference.
    pub fn on_grid_index(&self, l: &[i8]) -> usize {
        match self.lookup(self.code(l)) {
            Ok(i) => i,
            Err(c) => c.first().copied().unwrap_or(0) as usize,
        }
    }

    #[inline]
    pub fn point(&self, i: usize) -> &[i8] {
        &self.grid[self.dim * i..self.dim * (i + 1)]
    }

    /// Write the levels `(g − 1)/2` of grid point `i` to `l`.
    #[inline]
    pub fn levels(&self, i: usize, l: &mut [i8]) {
        for (o, &g) in l.iter_mut().zip(self.point(i)) {
            *o = (g - 1) / 2;
        }
    }

    /// Snap levels `l` to the grid: on-grid codes map directly, off-grid codes take the candidate minimising
    /// `Σ w·(scale·g − x)²` (ggml `iq2_find_best_neighbour` / `iq3_find_best_neighbour`), rewriting `l`.
    /// Returns (grid index, whether the code was on the grid).
    pub fn snap(&self, x: &[f32], w: &[f32], scale: f32, l: &mut [i8]) -> (usize, bool) {
        match self.lookup(self.code(l)) {
            Ok(i) => (i, true),
            Err(cands) => {
                let mut best = f32::MAX;
                let mut best_i = cands.first().copied().unwrap_or(0) as usize;
                for &c in cands {
                    let mut d2 = 0f32;
                    for ((&g, &xv), &wv) in self.point(c as usize).iter().zip(x).zip(w) {
                        let diff = scale * g as f32 - xv;
                        d2 += wv * diff * diff;
                    }
                    if d2 < best {
                        best = d2;
                        best_i = c as usize;
                    }
                }
                self.levels(best_i, l);
                (best_i, false)
            }
        }
    }

    /// IQ1 variant (ggml `iq1_find_best_neighbour2`): value of level t is `xg[t]`; falls back to a scan of the
    /// whole grid if no candidate beats `f32::MAX` (only possible with non-finite input).
    pub fn snap_iq1(&self, x: &[f32], w: &[f32], scale: f32, xg: &[f32; 3], l: &mut [i8]) -> usize {
        let score = |i: usize| -> f32 {
            let mut d2 = 0f32;
            for ((&g, &xv), &wv) in self.point(i).iter().zip(x).zip(w) {
                let diff = scale * xg[((g - 1) / 2) as usize] - xv;
                d2 += wv * diff * diff;
            }
            d2
        };
        let idx = match self.lookup(self.code(l)) {
            Ok(i) => return i,
            Err(cands) => {
                let mut best = f32::MAX;
                let mut best_i = None;
                for &c in cands {
                    let d2 = score(c as usize);
                    if d2 < best {
                        best = d2;
                        best_i = Some(c as usize);
                    }
                }
                best_i.unwrap_or(0)
            }
        };
        self.levels(idx, l);
        idx
    }
}

fn lattice(cell: &'static OnceLock<Lattice>, codes: &[u16], dim: usize, bits: u32, nwant: usize) -> &'static Lattice {
    cell.get_or_init(|| Lattice::build(codes, dim, bits, nwant))
}

// nwant per grid as in the reference (spec §13.3): 2 for IQ2_XXS/IQ2_XS, 1 for IQ2_S, 3 for IQ1_S/IQ1_M,
// 2 for the 256-point and 3 for the 512-point 3-bit grid.
pub fn lattice_iq2xxs() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    lattice(&L, &grids::KGRID_IQ2XXS, 8, 2, 2)
}
pub fn lattice_iq2xs() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    lattice(&L, &grids::KGRID_IQ2XS, 8, 2, 2)
}
pub fn lattice_iq2s() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    lattice(&L, &grids::KGRID_IQ2S, 8, 2, 1)
}
pub fn lattice_iq3xxs() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    lattice(&L, &grids::KGRID_IQ3XXS, 4, 3, 2)
}
pub fn lattice_iq3s() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    lattice(&L, &grids::KGRID_IQ3S, 4, 3, 3)
}
pub fn lattice_iq1s() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    lattice(&L, &grids::KGRID_IQ1S, 8, 2, 3)
}

/// Importance weight of one element given imatrix column weight `qw` (ggml: `qw · sqrt(sigma2 + x²)`).
#[inline]
pub fn imatrix_weight(qw: f32, sigma2: f32, x: f32) -> f32 {
    qw * (sigma2 + x * x).sqrt()
}

/// Signs of groups of 8 for the 7-bit sign codes: `xval = |x|`, and when a group has an odd number of
/// negatives, the element with the smallest `w·x²` is flipped back (spec §13.3 step 1). Returns the 7-bit codes.
pub fn even_signs(x: &[f32], w: &[f32], xval: &mut [f32], signs: &mut [u8]) {
    for (k, s_out) in signs.iter_mut().enumerate() {
        let mut s = 0u8;
        let mut nflip = 0;
        for i in 0..8 {
            let v = x[8 * k + i];
            if v >= 0.0 {
                xval[8 * k + i] = v;
            } else {
                xval[8 * k + i] = -v;
                nflip += 1;
                s |= 1 << i;
            }
        }
        if nflip % 2 == 1 {
            let mut imin = 0;
            let mut min = w[8 * k] * x[8 * k] * x[8 * k];
            for i in 1..8 {
                let ax = w[8 * k + i] * x[8 * k + i] * x[8 * k + i];
                if ax < min {
                    min = ax;
                    imin = i;
                }
            }
            xval[8 * k + imin] = -xval[8 * k + imin];
            s ^= 1 << imin;
        }
        *s_out = s & 127;
    }
}

/// Plain 8-bit sign masks (IQ2_S, IQ3_S): `xval = |x|`.
pub fn plain_signs(x: &[f32], xval: &mut [f32], signs: &mut [u8]) {
    for (k, s_out) in signs.iter_mut().enumerate() {
        let mut s = 0u8;
        for i in 0..8 {
            let v = x[8 * k + i];
            xval[8 * k + i] = v.abs();
            if v < 0.0 {
                s |= 1 << i;
            }
        }
        *s_out = s;
    }
}

/// `Σ w·x·q`, `Σ w·q²` with `q = 2l + 1`.
#[inline]
pub fn sums_odd(x: &[f32], w: &[f32], l: &[i8]) -> (f32, f32) {
    let (mut sqx, mut sq2) = (0f32, 0f32);
    for ((&xv, &wv), &lv) in x.iter().zip(w).zip(l) {
        let q = (2 * lv as i32 + 1) as f32;
        sqx += wv * xv * q;
        sq2 += wv * q * q;
    }
    (sqx, sq2)
}

/// Levels `clamp(nearest_int(0.5·(id·x − 1)), 0, kmax−1)` of the lattice search.
#[inline]
pub fn odd_level(id: f32, x: f32, kmax: i32) -> i8 {
    nearest_int(0.5 * (id * x - 1.0)).clamp(0, kmax - 1) as i8
}

/// Indices `0..n` sorted by ascending `x` (ggml `qsort` with `iq1_sort_helper`; ties keep index order here).
pub fn sort_idx(x: &[f32], idx: &mut [usize]) {
    for (i, o) in idx.iter_mut().enumerate() {
        *o = i;
    }
    idx.sort_by(|&a, &b| x[a].partial_cmp(&x[b]).unwrap_or(std::cmp::Ordering::Equal));
}

/// Run `block` over every 256-weight super-block of every row: `block(x[256], imatrix[256], out[size])`.
pub fn quantize_rows(
    src: &[f32],
    dst: &mut [u8],
    ne0: usize,
    imatrix: Option<&[f32]>,
    size: usize,
    block: fn(&[f32], Option<&[f32]>, &mut [u8]),
) {
    debug_assert!(ne0.is_multiple_of(QK_K) && src.len().is_multiple_of(ne0.max(1)));
    debug_assert!(dst.len() == src.len() / QK_K * size);
    debug_assert!(imatrix.is_none_or(|q| q.len() == ne0));
    let nb = ne0 / QK_K;
    if nb == 0 {
        return;
    }
    for (xr, yr) in src.chunks_exact(ne0).zip(dst.chunks_exact_mut(nb * size)) {
        for (ibl, (xb, yb)) in xr.chunks_exact(QK_K).zip(yr.chunks_exact_mut(size)).enumerate() {
            let qw = imatrix.and_then(|q| q.get(QK_K * ibl..QK_K * (ibl + 1)));
            block(xb, qw, yb);
        }
    }
}

/// Run `block` over every super-block: `block(encoded[size], out[256])`.
pub fn dequantize_blocks(src: &[u8], dst: &mut [f32], size: usize, block: fn(&[u8], &mut [f32])) {
    debug_assert!(src.len() == dst.len() / QK_K * size);
    for (b, y) in src.chunks_exact(size).zip(dst.chunks_exact_mut(QK_K)) {
        block(b, y);
    }
}

/// Pairs (weight super-block of `size` bytes, Q8_K block) of a dot product over `n` elements.
#[inline]
pub fn q8k_blocks<'a>(n: usize, x: &'a [u8], y: &'a [u8], size: usize) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    x.chunks_exact(size).zip(y.chunks_exact(Q8K_SIZE)).take(n / QK_K)
}

/// The `FORMAT` static of a lattice i-quant (Q8_K activations) plus its row-level `dequantize` / `quantize`,
/// built from the module's `SIZE`, `dequantize_block`, `quantize_block` and `vec_dot`.
macro_rules! lattice_format {
    ($q:ident) => {
        pub static FORMAT: Format =
            Format { qtype: QType::$q, dequantize, quantize: Some(quantize), vec_dot_type: QType::Q8_K, vec_dot: Some(vec_dot) };

        fn dequantize(src: &[u8], dst: &mut [f32], _ne0: usize) {
            dequantize_blocks(src, dst, SIZE, dequantize_block);
        }

        fn quantize(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>) {
            quantize_rows(src, dst, ne0, imatrix, SIZE, quantize_block);
        }
    };
}
pub(super) use lattice_format;

/// Importance weights of one group: `imatrix_weight` with the imatrix column weights `qw` (the group's slice),
/// else `fallback(x)`.
#[inline]
pub fn group_weights<const N: usize>(xb: &[f32], qw: Option<&[f32]>, sigma2: f32, fallback: impl Fn(f32) -> f32) -> [f32; N] {
    let mut weight = [0f32; N];
    for i in 0..N {
        weight[i] = match qw {
            Some(q) => imatrix_weight(q[i], sigma2, xb[i]),
            None => fallback(xb[i]),
        };
    }
    weight
}

/// Set the levels of each of the `NG` groups of `l` (`N / NG` coordinates each) not marked in `skip` to
/// `odd_level(id, x, kmax)` and snap them to the grid at `scale` ([`Lattice::snap`]); per group the result.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn snap_groups<const N: usize, const NG: usize>(
    lat: &Lattice,
    xval: &[f32; N],
    waux: &[f32; N],
    id: f32,
    scale: f32,
    kmax: i32,
    l: &mut [i8; N],
    skip: &[bool; NG],
) -> [(usize, bool); NG] {
    let g = N / NG;
    let mut out = [(0, true); NG];
    for k in 0..NG {
        if skip[k] {
            continue;
        }
        for i in g * k..g * k + g {
            l[i] = odd_level(id, xval[i], kmax);
        }
        let r = g * k..g * k + g;
        out[k] = lat.snap(&xval[r.clone()], &waux[r.clone()], scale, &mut l[r]);
    }
    out
}

/// Parameters of [`search_scale`] that differ between IQ2_S, IQ3_XXS and IQ3_S.
pub struct ScaleSearch {
    /// Largest level + 1 (ggml `kMaxQ`).
    pub kmax: i32,
    /// Inverse scales tried: `(2·kmax − 1 + is·step) / max` for `is ∈ −nstep..=nstep`.
    pub nstep: i32,
    pub step: f32,
    /// What the "group is on the grid" flags start as before the first improving candidate.
    pub on_grid_init: bool,
    /// Re-snap every group at the best scale (IQ3_S) instead of only the off-grid ones.
    pub resnap_all: bool,
}

/// The grid-constrained scale search of ggml `quantize_row_iq2_s_impl` / `quantize_row_iq3_*_impl`: try each
/// inverse scale, keep the weighted least-squares best; if some group of the best ended off the grid, re-snap
/// at the best scale and refit. Returns (scale, levels).
pub fn search_scale<const N: usize, const NG: usize>(
    lat: &Lattice,
    p: &ScaleSearch,
    xval: &[f32; N],
    weight: &[f32; N],
    waux: &[f32; N],
    max: f32,
) -> (f32, [i8; N]) {
    let kmax = p.kmax;
    let mut best = 0f32;
    let mut scale = max / (2 * kmax - 1) as f32;
    let mut is_on_grid = [p.on_grid_init; NG];
    let mut l = [0i8; N];
    let mut laux = [0i8; N];
    for is in -p.nstep..=p.nstep {
        let id = ((2 * kmax - 1) as f32 + is as f32 * p.step) / max;
        let this_scale = 1.0 / id;
        let snapped = snap_groups(lat, xval, waux, id, this_scale, kmax, &mut laux, &[false; NG]);
        let (sumqx, sumq2) = sums_odd(xval, weight, &laux);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            l = laux;
            is_on_grid = snapped.map(|s| s.1);
        }
    }
    if is_on_grid.contains(&false) && scale > 0.0 {
        let id = 1.0 / scale;
        let skip = if p.resnap_all { [false; NG] } else { is_on_grid };
        snap_groups(lat, xval, waux, id, scale, kmax, &mut l, &skip);
        let (sumqx, sumq2) = sums_odd(xval, weight, &l);
        if sumq2 > 0.0 {
            scale = sumqx / sumq2;
        }
    }
    (scale, l)
}

/// Levels 0, 1, 2 of the elements in sorted order `idx` split at positions `i1 ≤ i2` (the IQ1 exact search).
#[inline]
pub fn split_levels<const N: usize>(idx: &[usize; N], i1: usize, i2: usize) -> [i8; N] {
    let mut l = [0i8; N];
    for (j, &i) in idx.iter().enumerate() {
        l[i] = if j < i1 {
            0
        } else if j < i2 {
            1
        } else {
            2
        };
    }
    l
}

/// Weighted prefix sums over the elements in sorted order `idx`: (Σ w·x, Σ w) of the first j, j = 0…N.
#[inline]
pub fn sorted_prefix_sums<const N: usize, const N1: usize>(idx: &[usize; N], x: &[f32], weight: &[f32]) -> ([f32; N1], [f32; N1]) {
    let (mut sumx, mut sumw) = ([0f32; N1], [0f32; N1]);
    for j in 0..N {
        let i = idx[j];
        sumx[j + 1] = sumx[j] + weight[i] * x[i];
        sumw[j + 1] = sumw[j] + weight[i];
    }
    (sumx, sumw)
}
