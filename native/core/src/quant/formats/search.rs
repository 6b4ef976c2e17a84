//! Level/scale searches shared by the K-quant and legacy imatrix quantizers (spec/quants.md §13.1, §13.2).
//!
//! Upstream: ggml/src/ggml-quants.c @ 8337e4cd (`make_qx_quants`, `make_q3_quants`, `make_qkx2_quants`,
//! `make_qkx3_quants`, `make_qp_quants`). Arithmetic order (f32 vs f64, products left to right) follows the
//! reference expression by expression: the chosen levels flip on last-bit differences, so bit-exact output
//! depends on it.

use crate::quant::convert::{nearest_int, nearest_int_mul};

/// ggml `GROUP_MAX_EPS`: below this max-abs a group is treated as all zero.
pub const GROUP_MAX_EPS: f32 = 1e-15;

/// Per-weight importance of `make_qx_quants`: explicit weights, or one of the reference's `rmse_type` rules.
#[inline]
fn qx_weight(qw: Option<&[f32]>, rmse_type: i32, x: f32, i: usize) -> f32 {
    match qw {
        Some(w) => w[i],
        None => match rmse_type {
            1 => x * x,
            2 => 1.0,
            3 => x.abs(),
            _ => x.abs().sqrt(),
        },
    }
}

/// (max |x|, the signed value attaining it; the first one on ties) — the reference's `amax`/`max` scan.
#[inline]
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

/// Symmetric levels `l ∈ [−nmax, nmax−1]` (stored `l + nmax` in `levels`), weighted LS scale with the ik
/// two-orientation scan and greedy refinement (§13.1). Returns the scale.
pub fn make_qx_quants(x: &[f32], nmax: i32, levels: &mut [i8], mut rmse_type: i32, qw: Option<&[f32]>) -> f32 {
    let n = x.len();
    debug_assert!(levels.len() >= n);
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        levels[..n].fill(0);
        return 0.0;
    }
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    let mut iscale = -(nmax as f32) / max;
    if rmse_type == 0 {
        for (l, &v) in levels.iter_mut().zip(x) {
            *l = (nmax + clamp(nearest_int(iscale * v))) as i8;
        }
        return 1.0 / iscale;
    }
    let return_early = rmse_type < 0;
    rmse_type = rmse_type.abs();
    let w = |i: usize| qx_weight(qw, rmse_type, x[i], i);

    // Σ w·x·l and Σ w·l² for the levels `nearest_int(is·x)` (products in the reference's order). FMA
    // contraction mirrors the reference build: `nearest_int(is·x)` is always one FMA; the first pass is scalar
    // code whose accumulations are fused, the 38 tries are vectorised products summed without fusion.
    let sums = |is: f32, fused: bool| {
        let (mut slx, mut sl2) = (0.0f32, 0.0f32);
        for i in 0..n {
            let l = clamp(nearest_int_mul(is, x[i])) as f32;
            let wi = w(i);
            if fused {
                slx = (wi * x[i]).mul_add(l, slx);
                sl2 = (wi * l).mul_add(l, sl2);
            } else {
                slx += wi * x[i] * l;
                sl2 += wi * l * l;
            }
        }
        (slx, sl2)
    };
    let (mut sumlx, mut suml2) = sums(iscale, true);
    for i in 0..n {
        levels[i] = (nmax + clamp(nearest_int_mul(iscale, x[i]))) as i8;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    if return_early {
        return if suml2 > 0.0 { 0.5 * (scale + 1.0 / iscale) } else { 1.0 / iscale };
    }
    let mut best = scale * sumlx;
    let (mut best_sumlx, mut best_suml2) = (sumlx, suml2);
    for is in -9..=9 {
        // Both orientations: the largest weight maps to −nmax, or to nmax−1 (ik addition).
        for cand in [-(nmax as f32 + 0.1 * is as f32) / max, ((nmax - 1) as f32 + 0.1 * is as f32) / max] {
            iscale = cand;
            let (slx, sl2) = sums(iscale, false);
            if sl2 > 0.0 && slx * slx > best * sl2 {
                for i in 0..n {
                    levels[i] = (nmax + clamp(nearest_int_mul(iscale, x[i]))) as i8;
                }
                scale = slx / sl2;
                best = scale * slx;
                best_sumlx = slx;
                best_suml2 = sl2;
            }
        }
    }
    sumlx = best_sumlx;
    suml2 = best_suml2;
    for _ in 0..n as i32 * (2 * nmax - 1) {
        let (mut abs_gmax, mut gmax, mut best_j) = (0.0f32, 0.0f32, usize::MAX);
        for j in 0..n {
            let l = levels[j] as i32 - nmax;
            let g = scale * w(j) * (-scale).mul_add(l as f32, x[j]);
            if ((g > 0.0 && l < nmax - 1) || (g < 0.0 && l > -nmax)) && g.abs() > abs_gmax {
                abs_gmax = g.abs();
                gmax = g;
                best_j = j;
            }
        }
        if best_j == usize::MAX {
            break;
        }
        let wj = w(best_j);
        let mut l = levels[best_j] as i32 - nmax;
        let (mut new_sumlx, mut new_suml2) = (sumlx, suml2);
        if gmax > 0.0 {
            new_sumlx += wj * x[best_j];
            new_suml2 = wj.mul_add((2 * l + 1) as f32, new_suml2);
            l += 1;
        } else {
            new_sumlx -= wj * x[best_j];
            new_suml2 = (-wj).mul_add((2 * l - 1) as f32, new_suml2);
            l -= 1;
        }
        if new_suml2 > 0.0 && new_sumlx * new_sumlx > best * new_suml2 {
            sumlx = new_sumlx;
            suml2 = new_suml2;
            scale = sumlx / suml2;
            best = scale * sumlx;
            levels[best_j] = (l + nmax) as i8;
        } else {
            break;
        }
    }
    scale
}

/// Q3_K reference search: weights x², up to 5 coordinate-descent passes (§13.1). Levels stored `l + nmax`.
pub fn make_q3_quants(x: &[f32], nmax: i32, levels: &mut [i8], do_rmse: bool) -> f32 {
    let n = x.len();
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        levels[..n].fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    if !do_rmse {
        for (l, &v) in levels.iter_mut().zip(x) {
            *l = (nearest_int(iscale * v).clamp(-nmax, nmax - 1) + nmax) as i8;
        }
        return 1.0 / iscale;
    }
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for i in 0..n {
        let l = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
        levels[i] = l as i8;
        let w = x[i] * x[i];
        sumlx += w * x[i] * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for i in 0..n {
            let w = x[i] * x[i];
            let li = levels[i] as f32;
            let mut slx = sumlx - w * x[i] * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = nearest_int(x[i] * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != levels[i] as i32 {
                    slx += w * x[i] * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        levels[i] = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for l in levels[..n].iter_mut() {
        *l += nmax as i8;
    }
    sumlx / suml2
}

/// Affine 0…nmax levels, f32 search over `nstep+1` inverse scales (§13.2). Returns (scale, −min).
#[allow(clippy::too_many_arguments)]
pub fn make_qkx2_quants(
    x: &[f32],
    nmax: i32,
    weights: &[f32],
    levels: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        min = if x[i] < min { x[i] } else { min };
        max = if x[i] > max { x[i] } else { max };
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max - min < 1e-10 {
        levels[..n].fill(0);
        return (0.0, -min);
    }
    let err = |d: f32| if use_mad { d.abs() } else { d * d };
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_mad = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        levels[i] = l as u8;
        best_mad += weights[i] * err(scale * l as f32 + min - x[i]);
    }
    if nstep < 1 {
        return (scale, -min);
    }
    let mut aux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            aux[i] = l as u8;
            let (w, lf) = (weights[i], l as f32);
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut mad = 0.0f32;
            for i in 0..n {
                mad += weights[i] * err(this_scale * aux[i] as f32 + this_min - x[i]);
            }
            if mad < best_mad {
                levels[..n].copy_from_slice(&aux[..n]);
                best_mad = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Affine 0…nmax levels, f64 accumulation plus greedy single-level refinement (§13.2). `weights = None`
/// weighs by x². Returns (scale, −min).
#[allow(clippy::too_many_arguments)]
pub fn make_qkx3_quants(
    x: &[f32],
    nmax: i32,
    weights: Option<&[f32]>,
    levels: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let wf = |i: usize| match weights {
        Some(w) => w[i],
        None => x[i] * x[i],
    };
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = wf(0) as f64;
    let mut sum_x = sum_w * x[0] as f64;
    let mut sum_x2 = sum_w * x[0] as f64 * x[0] as f64;
    for i in 1..n {
        min = if x[i] < min { x[i] } else { min };
        max = if x[i] > max { x[i] } else { max };
        let w = wf(i) as f64;
        sum_w += w;
        sum_x += w * x[i] as f64;
        sum_x2 += w * x[i] as f64 * x[i] as f64;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max - min < 1e-10 {
        levels[..n].fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_mad = 0.0f64;
    for i in 0..n {
        let l = nearest_int_mul(iscale, x[i] - min).clamp(0, nmax);
        levels[i] = l as u8;
        let diff = scale as f64 * l as f64 + min as f64 - x[i] as f64;
        best_mad += wf(i) as f64 * if use_mad { diff.abs() } else { diff * diff };
    }
    if nstep < 1 {
        return (scale, -min);
    }
    let mut aux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..n {
            let l = nearest_int_mul(iscale, x[i] - min).clamp(0, nmax);
            aux[i] = l as u8;
            let (w, lf) = (wf(i) as f64, l as f64);
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i] as f64;
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mad = if use_mad {
                let mut m = 0.0f64;
                for i in 0..n {
                    let diff = this_scale * aux[i] as f64 + this_min - x[i] as f64;
                    m += wf(i) as f64 * diff.abs();
                }
                m
            } else {
                sum_x2 - 2.0 * this_scale * sum_xl - 2.0 * this_min * sum_x
                    + 2.0 * this_scale * this_min * sum_l
                    + this_scale * this_scale * sum_l2
                    + this_min * this_min * sum_w
            };
            if mad < best_mad {
                levels[..n].copy_from_slice(&aux[..n]);
                best_mad = mad;
                scale = this_scale as f32;
                min = this_min as f32;
            }
        }
    }
    if use_mad {
        return (scale, -min);
    }
    let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f64, 0.0f64, 0.0f64);
    for i in 0..n {
        let (w, lf) = (wf(i) as f64, levels[i] as f64);
        sum_l += w * lf;
        sum_l2 += w * lf * lf;
        sum_xl += w * lf * x[i] as f64;
    }
    let (s, m) = (scale as f64, min as f64);
    let mut best = 2.0 * s * sum_xl + 2.0 * m * sum_x - 2.0 * s * m * sum_l - s * s * sum_l2 - m * m * sum_w;
    let (mut last_j, mut last_dir) = (usize::MAX, 0i32);
    for _ in 0..nmax as usize * n {
        let (mut gmax, mut best_j, mut dir) = (0.0f32, usize::MAX, 0i32);
        for j in 0..n {
            let g = x[j] - scale * levels[j] as f32 - min;
            if g > 0.0 && (levels[j] as i32) < nmax && g > gmax {
                gmax = g;
                best_j = j;
                dir = 1;
            } else if g < 0.0 && levels[j] > 0 && -g > gmax {
                gmax = -g;
                best_j = j;
                dir = -1;
            }
        }
        if best_j == usize::MAX || (best_j == last_j && dir == -last_dir) {
            break;
        }
        let w = wf(best_j) as f64;
        sum_l += w * dir as f64;
        sum_l2 += w * (2 * levels[best_j] as i32 * dir + 1) as f64;
        sum_xl += w * x[best_j] as f64 * dir as f64;
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d <= 0.0 {
            break;
        }
        let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
        let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
        if this_min > 0.0 {
            this_min = 0.0;
            this_scale = sum_xl / sum_l2;
        }
        if this_scale < 0.0 {
            break;
        }
        let score = 2.0 * this_scale * sum_xl + 2.0 * this_min * sum_x
            - 2.0 * this_scale * this_min * sum_l
            - this_scale * this_scale * sum_l2
            - this_min * this_min * sum_w;
        if score <= best {
            break;
        }
        best = score;
        scale = this_scale as f32;
        min = this_min as f32;
        levels[best_j] = (levels[best_j] as i32 + dir) as u8;
        last_j = best_j;
        last_dir = dir;
    }
    (scale, -min)
}

/// Positive scale for non-negative values (sub-block scales/mins), levels 0…nmax (§13.2 `make_qp_quants`).
pub fn make_qp_quants(x: &[f32], nmax: i32, levels: &mut [u8], qw: &[f32]) -> f32 {
    qp_quants::<false>(x, nmax, levels, qw)
}

/// `make_qp_quants` as the lattice i-quants use it (IQ2_XXS): the max skips NaNs, and refined levels are also
/// clamped below at 0 (a tiny `slx` overflows nearest_int's range; the reference stores the garbage).
pub fn make_qp_quants_lattice(x: &[f32], nmax: i32, levels: &mut [u8], qw: &[f32]) -> f32 {
    qp_quants::<true>(x, nmax, levels, qw)
}

/// Both variants of `make_qp_quants`; they differ only where `LATTICE` is tested.
#[inline]
fn qp_quants<const LATTICE: bool>(x: &[f32], nmax: i32, levels: &mut [u8], qw: &[f32]) -> f32 {
    let n = x.len();
    let max = if LATTICE { x.iter().fold(0.0f32, |m, &v| m.max(v)) } else { x.iter().fold(0.0f32, |m, &v| if m > v { m } else { v }) };
    if max < 1e-16 {
        levels[..n].fill(0);
        return 0.0;
    }
    let mut iscale = nmax as f32 / max;
    for i in 0..n {
        levels[i] = nearest_int(iscale * x[i]) as u8;
    }
    let scale = 1.0 / iscale;
    let mut best_mse = 0.0f32;
    for i in 0..n {
        let diff = x[i] - scale * levels[i] as f32;
        best_mse += qw[i] * diff * diff;
    }
    for is in -4..=4 {
        if is == 0 {
            continue;
        }
        let iscale_is = (0.1 * is as f32 + nmax as f32) / max;
        let scale_is = 1.0 / iscale_is;
        let mut mse = 0.0f32;
        for i in 0..n {
            let l = nearest_int(iscale_is * x[i]).min(nmax);
            let diff = x[i] - scale_is * l as f32;
            mse += qw[i] * diff * diff;
        }
        if mse < best_mse {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for i in 0..n {
        let l = nearest_int(iscale * x[i]).min(nmax);
        levels[i] = l as u8;
        sumlx += qw[i] * x[i] * l as f32;
        suml2 += qw[i] * l as f32 * l as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for i in 0..n {
            let w = qw[i];
            let li = levels[i] as f32;
            let mut slx = sumlx - w * x[i] * li;
            let mut sl2 = suml2 - w * li * li;
            if slx > 0.0 && sl2 > 0.0 {
                let new_l = nearest_int(x[i] * sl2 / slx);
                let new_l = if LATTICE { new_l.clamp(0, nmax) } else { new_l.min(nmax) };
                if new_l != levels[i] as i32 {
                    slx += w * x[i] * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        levels[i] = new_l as u8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    sumlx / suml2
}
