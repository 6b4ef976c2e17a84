//! CPU ops of the forward pass, row-major f32 activations (one row per token): RMSNorm, RoPE (normal/NeoX,
//! freq scaling, YaRN, per-frequency factors), softmax, SwiGLU, add, get_rows and the quantized matmul.
//!
//! Numerics mirror ggml's CPU ops @ 8337e4cd (`ggml/src/ggml.c`: `ggml_compute_forward_rms_norm_f32`,
//! `rope_yarn`, `ggml_rope_yarn_corr_dims`, `ggml_vec_soft_max_f32`). The matmul follows ggml's plan: quantize
//! the activation rows to the weight's `vec_dot_type` once, then one `vec_dot` per (weight row, activation
//! row), threaded over weight-row chunks. Kernels come from the format table resolved at load
//! (`quant::formats::lookup`); this file never matches on a type in the hot path.

use crate::cpu::pool::{SyncPtr, ThreadPool};
use crate::cpu::tier::{tier, Tier};
use crate::quant::formats::{Format, VecDotFn};
use crate::quant::QType;

/// RMSNorm of each row of `x` (rows of `w.len()`), scaled by `w`, into `out`. Sum of squares in f64 as ggml.
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let n = w.len();
    for (xr, yr) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let sum: f64 = xr.iter().map(|&v| (v * v) as f64).sum();
        let mean = (sum / n as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((y, &v), &g) in yr.iter_mut().zip(xr).zip(w) {
            *y = (v * scale) * g;
        }
    }
}

/// `a += b` elementwise.
pub fn add(a: &mut [f32], b: &[f32]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// SwiGLU: `gate = silu(gate) * up` in place (ggml `ggml_silu_f32`: x / (1 + exp(-x))).
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// In-place softmax of `x` (max-subtracted, sum in f64 as `ggml_vec_soft_max_f32`); −∞ entries give 0.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        let e = if *v == f32::NEG_INFINITY { 0.0 } else { (*v - max).exp() };
        sum += e as f64;
        *v = e;
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// log p(target) of one row of logits (max in f32, Σexp in f64: ik `perplexity.cpp` `log_softmax`).
pub fn log_softmax_at(logits: &[f32], target: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    (logits[target] - max) as f64 - sum.ln()
}

/// RoPE pairing (spec/models.md §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeMode {
    /// `(x[2i], x[2i+1])`, ggml mode 0.
    Normal,
    /// `(x[i], x[i + n_rot/2])`, ggml mode 2.
    Neox,
}

/// Rotation parameters resolved once at context creation (spec/models.md §1.3).
#[derive(Clone, Debug)]
pub struct RopeParams {
    pub mode: RopeMode,
    pub n_rot: usize,
    pub freq_base: f32,
    pub freq_scale: f32,
    pub ext_factor: f32,
    pub attn_factor: f32,
    pub beta_fast: f32,
    pub beta_slow: f32,
    pub n_ctx_orig: u32,
    /// Per-pair divisors (`rope_freqs.weight`, n_rot/2 values), if the model has them.
    pub freq_factors: Option<Vec<f32>>,
}

impl RopeParams {
    /// ggml `ggml_rope_yarn_corr_dims`.
    fn corr_dims(&self) -> [f32; 2] {
        let corr = |beta: f32| {
            self.n_rot as f32 * (self.n_ctx_orig as f32 / (beta * 2.0 * std::f32::consts::PI)).ln()
                / (2.0 * self.freq_base.ln())
        };
        let start = corr(self.beta_fast).floor();
        let end = corr(self.beta_slow).ceil();
        [start.max(0.0), end.min(self.n_rot as f32 - 1.0)]
    }

    /// cos/sin pairs for position `p` into `cache` (length n_rot: cos at 2i, sin at 2i+1), as ggml's
    /// `ggml_rope_cache_init`: θ is accumulated by repeated multiplication in f32, like the reference.
    pub fn fill_cache(&self, p: i32, cache: &mut [f32]) {
        let theta_scale = self.freq_base.powf(-2.0 / self.n_rot as f32);
        let corr = self.corr_dims();
        let mut theta = p as f32;
        for i0 in (0..self.n_rot).step_by(2) {
            let ff = self.freq_factors.as_ref().map_or(1.0, |f| f[i0 / 2]);
            let (c, s) = rope_yarn(theta / ff, self.freq_scale, corr, i0, self.ext_factor, self.attn_factor);
            cache[i0] = c;
            cache[i0 + 1] = s;
            theta *= theta_scale;
        }
    }
}

/// ggml `rope_yarn`: YaRN mix of interpolated and extrapolated angles plus the magnitude correction.
fn rope_yarn(theta_extrap: f32, freq_scale: f32, corr: [f32; 2], i0: usize, ext_factor: f32, attn_factor: f32) -> (f32, f32) {
    let theta_interp = freq_scale * theta_extrap;
    let mut theta = theta_interp;
    let mut mscale = attn_factor;
    if ext_factor != 0.0 {
        // ramp over pair index i0/2 (integer division in the reference)
        let y = ((i0 / 2) as f32 - corr[0]) / (corr[1] - corr[0]).max(0.001);
        let ramp_mix = (1.0 - y.clamp(0.0, 1.0)) * ext_factor;
        theta = theta_interp * (1.0 - ramp_mix) + theta_extrap * ramp_mix;
        mscale *= 1.0 + 0.1 * (1.0 / freq_scale).ln();
    }
    (theta.cos() * mscale, theta.sin() * mscale)
}

/// Rotate every head of one token row `x` (n_head × head_dim) with a cache from `fill_cache`.
pub fn rope_row(x: &mut [f32], head_dim: usize, mode: RopeMode, n_rot: usize, cache: &[f32]) {
    for h in x.chunks_exact_mut(head_dim) {
        match mode {
            RopeMode::Normal => {
                for i0 in (0..n_rot).step_by(2) {
                    let (c, s) = (cache[i0], cache[i0 + 1]);
                    let (x0, x1) = (h[i0], h[i0 + 1]);
                    h[i0] = x0 * c - x1 * s;
                    h[i0 + 1] = x0 * s + x1 * c;
                }
            }
            RopeMode::Neox => {
                let half = n_rot / 2;
                for i0 in (0..n_rot).step_by(2) {
                    let (c, s) = (cache[i0], cache[i0 + 1]);
                    let (x0, x1) = (h[i0 / 2], h[i0 / 2 + half]);
                    h[i0 / 2] = x0 * c - x1 * s;
                    h[i0 / 2 + half] = x0 * s + x1 * c;
                }
            }
        }
    }
}

/// A 2-D weight resolved at load: encoded rows in the mmap plus its format table entries.
#[derive(Clone, Copy)]
pub struct QMatrix {
    pub data: &'static [u8],
    /// Elements per row (input features).
    pub ne0: usize,
    /// Rows (output features).
    pub ne1: usize,
    pub row_bytes: usize,
    pub fmt: &'static Format,
    /// Format of the activation type (`fmt.vec_dot_type`): its `quantize` encodes activation rows.
    pub act: &'static Format,
    pub act_row_bytes: usize,
    /// The dot product used by `matmul_q`: a tier kernel from `fast_vec_dot`, else the format's scalar one.
    pub dot: VecDotFn,
}

/// SIMD dot products for the plain float types, chosen once per weight at load (STYLE §2 rule 4); the
/// scalar twins are the formats' `vec_dot` (`quant/formats/float.rs`). `None`: use the scalar one.
pub fn fast_vec_dot(q: QType) -> Option<VecDotFn> {
    #[cfg(target_arch = "x86_64")]
    {
        if tier() >= Tier::Avx2 {
            return match q {
                QType::F32 => Some(x86::dot_f32),
                QType::F16 => Some(x86::dot_f16),
                _ => None,
            };
        }
    }
    let _ = q;
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    pub fn dot_f32(n: usize, x: &[u8], y: &[u8]) -> f32 {
        assert!(x.len() >= n * 4 && y.len() >= n * 4);
        // SAFETY: selected only when the CPU has AVX2+FMA (tier check); lengths checked above.
        unsafe { dot_f32_avx2(n, x.as_ptr() as *const f32, y.as_ptr() as *const f32) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_f32_avx2(n: usize, x: *const f32, y: *const f32) -> f32 {
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= n {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x.add(i)), _mm256_loadu_ps(y.add(i)), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x.add(i + 8)), _mm256_loadu_ps(y.add(i + 8)), a1);
            i += 16;
        }
        let mut s = hsum(_mm256_add_ps(a0, a1));
        while i < n {
            s += *x.add(i) * *y.add(i);
            i += 1;
        }
        s
    }

    pub fn dot_f16(n: usize, x: &[u8], y: &[u8]) -> f32 {
        assert!(x.len() >= n * 2 && y.len() >= n * 2);
        // SAFETY: selected only when the CPU has AVX2+FMA+F16C (tier check); lengths checked above.
        unsafe { dot_f16_avx2(n, x.as_ptr() as *const u16, y.as_ptr() as *const u16) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_f16_avx2(n: usize, x: *const u16, y: *const u16) -> f32 {
        let ld = |p: *const u16| _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= n {
            a0 = _mm256_fmadd_ps(ld(x.add(i)), ld(y.add(i)), a0);
            a1 = _mm256_fmadd_ps(ld(x.add(i + 8)), ld(y.add(i + 8)), a1);
            i += 16;
        }
        let mut s = hsum(_mm256_add_ps(a0, a1));
        while i < n {
            s += crate::quant::convert::f16_to_f32(*x.add(i)) * crate::quant::convert::f16_to_f32(*y.add(i));
            i += 1;
        }
        s
    }
}

/// get_rows: dequantize row `idx` of `m` (an embedding table) into `out` (length ne0).
pub fn get_row(m: &QMatrix, idx: usize, out: &mut [f32]) {
    let r = &m.data[idx * m.row_bytes..(idx + 1) * m.row_bytes];
    (m.fmt.dequantize)(r, out, m.ne0);
}

/// Encode `n_rows` activation rows of `x` into `scratch` in `m`'s activation type, in parallel over rows.
/// Returns the encoded bytes (`n_rows × act_row_bytes`).
pub fn quantize_act<'a>(pool: &ThreadPool, m: &QMatrix, x: &[f32], n_rows: usize, scratch: &'a mut [u8]) -> &'a [u8] {
    let (k, rb) = (m.ne0, m.act_row_bytes);
    let quant = m.act.quantize.expect("activation type without quantize (checked at load)");
    let dst = SyncPtr::new(&mut scratch[..n_rows * rb]);
    pool.run(n_rows, |r| {
        // SAFETY: each task writes its own row `r` of `scratch`.
        let d = unsafe { dst.slice(r * rb, rb) };
        quant(&x[r * k..(r + 1) * k], d, k, None);
    });
    &scratch[..n_rows * rb]
}

/// Weight rows per task (why: enough work per task to amortise the atomic hand-out, small enough to balance).
const ROWS_PER_TASK: usize = 16;

/// `out[j][r] = W[r] · x[j]` for `n_rows` activation rows already encoded by `quantize_act`; `out` has rows of
/// `m.ne1`. Threads take chunks of weight rows and sweep all activation rows (weights stay in cache).
pub fn matmul_q(pool: &ThreadPool, m: &QMatrix, xq: &[u8], n_rows: usize, out: &mut [f32]) {
    let vec_dot = m.dot;
    let (n_out, k, rb, arb) = (m.ne1, m.ne0, m.row_bytes, m.act_row_bytes);
    debug_assert!(out.len() >= n_rows * n_out && xq.len() >= n_rows * arb);
    let dst = SyncPtr::new(&mut out[..n_rows * n_out]);
    let n_tasks = n_out.div_ceil(ROWS_PER_TASK);
    pool.run(n_tasks, |t| {
        let r0 = t * ROWS_PER_TASK;
        let r1 = (r0 + ROWS_PER_TASK).min(n_out);
        for j in 0..n_rows {
            let y = &xq[j * arb..(j + 1) * arb];
            // SAFETY: task t owns columns r0..r1 of every output row.
            let o = unsafe { dst.slice(j * n_out + r0, r1 - r0) };
            for (r, oo) in (r0..r1).zip(o.iter_mut()) {
                *oo = vec_dot(k, &m.data[r * rb..(r + 1) * rb], y);
            }
        }
    });
}

/// Quantize then multiply: `out = x · Wᵀ` for `n_rows` rows of `x`.
pub fn matmul(pool: &ThreadPool, m: &QMatrix, x: &[f32], n_rows: usize, scratch: &mut [u8], out: &mut [f32]) {
    let xq = quantize_act(pool, m, x, n_rows, scratch);
    matmul_q(pool, m, xq, n_rows, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_float_dots_match_scalar_twins() {
        use crate::quant::formats::lookup;
        for q in [QType::F32, QType::F16] {
            let (Some(fast), Some(f)) = (fast_vec_dot(q), lookup(q)) else { continue };
            for n in [1usize, 15, 16, 33, 256] {
                let x: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.25).collect();
                let y: Vec<f32> = (0..n).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.5).collect();
                let rb = q.row_size(n as u64).unwrap() as usize;
                let (mut xb, mut yb) = (vec![0u8; rb], vec![0u8; rb]);
                (f.quantize.unwrap())(&x, &mut xb, n, None);
                (f.quantize.unwrap())(&y, &mut yb, n, None);
                let (a, b) = (fast(n, &xb, &yb), (f.vec_dot.unwrap())(n, &xb, &yb));
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{q:?} n={n}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn softmax_sums_to_one_and_masks() {
        let mut v = [1.0, 2.0, f32::NEG_INFINITY, 0.5];
        softmax(&mut v);
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(v[2], 0.0);
    }

    #[test]
    fn rope_position_zero_is_identity_and_norm_preserving() {
        let p = RopeParams {
            mode: RopeMode::Normal,
            n_rot: 8,
            freq_base: 10000.0,
            freq_scale: 1.0,
            ext_factor: 0.0,
            attn_factor: 1.0,
            beta_fast: 32.0,
            beta_slow: 1.0,
            n_ctx_orig: 4096,
            freq_factors: None,
        };
        let mut c = [0.0; 8];
        p.fill_cache(0, &mut c);
        let x0 = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let mut x = x0;
        rope_row(&mut x, 8, RopeMode::Normal, 8, &c);
        assert_eq!(x, x0);
        p.fill_cache(17, &mut c);
        for mode in [RopeMode::Normal, RopeMode::Neox] {
            let mut x = x0;
            rope_row(&mut x, 8, mode, 8, &c);
            let n = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>();
            assert!((n(&x) - n(&x0)).abs() < 1e-3);
        }
    }
}
