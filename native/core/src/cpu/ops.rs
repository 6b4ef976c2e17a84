//! CPU ops of the forward pass, row-major f32 activations (one row per token): RMSNorm, RoPE (normal/NeoX,
//! freq scaling, YaRN, per-frequency factors), softmax, SwiGLU, add, get_rows and the quantized matmul.
//!
//! Numerics mirror ggml's CPU ops @ 8337e4cd (`ggml/src/ggml.c`: `ggml_compute_forward_rms_norm_f32`,
//! `rope_yarn`, `ggml_rope_yarn_corr_dims`, `ggml_vec_soft_max_f32`). The matmul follows ik's plan
//! (`iqk_mul_mat`): quantize the activation rows to the weight's `vec_dot_type` once (`Kernels::quantize_act`),
//! then `gemm[ny-1]` over tiles of up to 8 activation rows, threaded over weight-row chunks. Kernels come from
//! the kernel table resolved at load (`cpu/table.rs`); this file never matches on a type in the hot path.

use crate::cpu::pool::{SyncPtr, ThreadPool};
use crate::cpu::table::{self, BatchPlan, Kernels, MAX_NY};
use crate::cpu::tier::Tier;
use crate::quant::formats::{lookup, Format};
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
            self.n_rot as f32 * (self.n_ctx_orig as f32 / (beta * 2.0 * std::f32::consts::PI)).ln() / (2.0 * self.freq_base.ln())
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

/// A 2-D weight resolved at load: encoded rows in the mmap plus its kernel-table entry (`cpu/table.rs`).
#[derive(Clone, Copy)]
pub struct QMatrix {
    pub data: &'static [u8],
    /// Elements per row (input features).
    pub ne0: usize,
    /// Rows (output features).
    pub ne1: usize,
    pub row_bytes: usize,
    /// Scalar reference of the weight type (dequantize for get_rows).
    pub fmt: &'static Format,
    /// Format of the activation type (`fmt.vec_dot_type`); `std::ptr::eq` on it tells whether two weights can
    /// share one encoded activation.
    pub act: &'static Format,
    pub act_row_bytes: usize,
    /// `quantize_act` + `gemm[ny-1]` for this weight type at the CPU's tier (scalar twins under
    /// `IKL_CPU_TIER=scalar`), resolved once at load.
    pub k: &'static Kernels,
    /// ik's large-batch plan for this type (`table::batch_plan`): at ≥ `min_rows` activation rows `matmul_q`
    /// converts row chunks and runs the target's kernels, as the reference does (docs/batch-path.md).
    pub batch: Option<BatchPlan>,
    /// Set when the placement put this weight on a GPU (`cuda::place`): `matmul_q` then runs there.
    pub gpu: Option<crate::cuda::GpuMatrix>,
}

impl QMatrix {
    /// Bind `data` (`ne1` rows of `ne0` elements of type `q`) to its format and kernels. `None` when the type
    /// has no CPU dot product or the rows are not whole blocks; `data` must hold at least `ne1` rows.
    pub fn new(data: &'static [u8], q: QType, ne0: usize, ne1: usize) -> Option<QMatrix> {
        let fmt = lookup(q)?;
        let k = table::kernels(q)?;
        let act = crate::cpu::kernels::act::act_format(k.act)?;
        let row_bytes = q.row_size(ne0 as u64)? as usize;
        let act_row_bytes = k.act.row_size(ne0 as u64)? as usize;
        let batch = table::batch_plan(q, k.tier);
        (data.len() >= row_bytes * ne1).then_some(QMatrix { data, ne0, ne1, row_bytes, fmt, act, act_row_bytes, k, batch, gpu: None })
    }

    /// The same weight with the kernels of `tier` (tests and benches compare tiers inside one process).
    /// Leaks one small `Kernels` per call: not for the hot path.
    pub fn with_tier(mut self, tier: Tier) -> Option<QMatrix> {
        let k = table::kernels_for_tier(self.fmt.qtype, tier)?;
        self.k = Box::leak(Box::new(k));
        self.batch = table::batch_plan(self.fmt.qtype, tier);
        Some(self)
    }
}

/// get_rows: dequantize row `idx` of `m` (an embedding table) into `out` (length ne0).
pub fn get_row(m: &QMatrix, idx: usize, out: &mut [f32]) {
    let r = &m.data[idx * m.row_bytes..(idx + 1) * m.row_bytes];
    (m.fmt.dequantize)(r, out, m.ne0);
}

/// Encode `n_rows` activation rows of `x` into `scratch` in `m`'s activation type (`Kernels::quantize_act`),
/// in parallel over rows. Returns the encoded bytes (`n_rows × act_row_bytes`).
pub fn quantize_act<'a>(pool: &ThreadPool, m: &QMatrix, x: &[f32], n_rows: usize, scratch: &'a mut [u8]) -> &'a [u8] {
    let (k, rb) = (m.ne0, m.act_row_bytes);
    let quant = m.k.quantize_act;
    let dst = SyncPtr::new(&mut scratch[..n_rows * rb]);
    pool.run(n_rows, |r| {
        // SAFETY: each task writes its own row `r` of `scratch`.
        let d = unsafe { dst.slice(r * rb, rb) };
        quant(&x[r * k..(r + 1) * k], d);
    });
    &scratch[..n_rows * rb]
}

/// Most weight rows per task; also the width of the on-stack output tile (8 × 64 f32 = 2 KiB).
const MAX_ROWS_PER_TASK: usize = 64;
/// Target weight bytes per task (why: a chunk stays in L1/L2 while all activation tiles stream past it, as
/// ggml's chunking; smaller chunks also balance better on the 2-thread decode path).
const TASK_BYTES: usize = 16 << 10;

/// Weight rows per task for `m` with `n_threads` threads: about `TASK_BYTES` of weights, at least 4 tasks per
/// thread when the matrix allows it, between 1 and `MAX_ROWS_PER_TASK`.
fn rows_per_task(m: &QMatrix, n_threads: usize) -> usize {
    let by_cache = (TASK_BYTES / m.row_bytes.max(1)).max(1);
    let by_balance = m.ne1.div_ceil(4 * n_threads).max(1);
    // whole groups of a row-interleaved type (`_R4/_R8/_R16`; ≤ 16 rows, so the result stays ≤ 64)
    let il = m.fmt.qtype.traits().interleave;
    by_cache.min(by_balance).clamp(1, MAX_ROWS_PER_TASK).div_ceil(il) * il
}

/// `out[j][r] = W[r] · x[j]` for `n_rows` activation rows already encoded by `quantize_act`; `out` has rows of
/// `m.ne1`. Threads take chunks of weight rows; each chunk sweeps the activation rows in tiles of up to
/// `MAX_NY` through `gemm[ny-1]` (the weight block is unpacked once per tile), into an on-stack tile that is
/// then copied to `out` (no allocation, no aliasing between tasks).
pub fn matmul_q(pool: &ThreadPool, m: &QMatrix, xq: &[u8], n_rows: usize, out: &mut [f32]) {
    if let Some(g) = &m.gpu {
        // A weight resident on a GPU multiplies there (cuda/ops.rs). The forward pass cannot continue past a
        // failed kernel: the panic becomes IKL_E_INTERNAL at the N-API boundary (catch_unwind), never an abort.
        if let Err(e) = crate::cuda::ops::matmul(g, m, xq, n_rows, out) {
            panic!("{e}");
        }
        return;
    }
    let (n_out, k, rb, arb) = (m.ne1, m.ne0, m.row_bytes, m.act_row_bytes);
    assert!(out.len() >= n_rows * n_out && xq.len() >= n_rows * arb, "matmul_q: buffers too small");
    if let Some(bp) = m.batch.as_ref().filter(|bp| batch_applies(bp, m, n_rows, pool.n_threads())) {
        return matmul_q_batch(pool, m, bp, xq, n_rows, out);
    }
    let gemm = &m.k.gemm;
    let chunk = rows_per_task(m, pool.n_threads());
    let dst = SyncPtr::new(&mut out[..n_rows * n_out]);
    pool.run(n_out.div_ceil(chunk), |t| {
        let r0 = t * chunk;
        let nx = chunk.min(n_out - r0);
        let x = &m.data[r0 * rb..(r0 + nx) * rb];
        let mut tile = [0.0f32; MAX_NY * MAX_ROWS_PER_TASK];
        for j0 in (0..n_rows).step_by(MAX_NY) {
            let ny = MAX_NY.min(n_rows - j0);
            gemm[ny - 1](k, x, rb, nx, &xq[j0 * arb..(j0 + ny) * arb], arb, ny, &mut tile[..ny * nx], nx);
            for iy in 0..ny {
                // SAFETY: task t owns columns r0..r0+nx of every output row.
                let o = unsafe { dst.slice((j0 + iy) * n_out + r0, nx) };
                o.copy_from_slice(&tile[iy * nx..(iy + 1) * nx]);
            }
        }
    });
}

/// Weight rows converted per step of the batch path (ik `k_x_step` of `iqk_mul_mat`; why: 32 converted rows
/// stay in L2 while every activation tile streams past them).
const BATCH_ROWS: usize = 32;

/// Whether `matmul_q` takes the batch path, with ik's conditions (`iqk_mul_mat` @ 8337e4cd): enough activation
/// rows for the type, at least 32 weight rows per thread (`k_min_step`; below it ik tiles the original type),
/// and whole groups of the target's interleave.
fn batch_applies(bp: &BatchPlan, m: &QMatrix, n_rows: usize, n_threads: usize) -> bool {
    n_rows >= bp.min_rows && m.ne1 / n_threads.max(1) >= BATCH_ROWS && m.ne1 % bp.target.traits().interleave == 0
}

thread_local! {
    /// Per-thread conversion scratch of the batch path (ik `thread_local_work_buffer`); sized once by
    /// `reserve_batch_scratch` at context creation, so the forward pass does not allocate.
    static CONVERTED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Bytes of batch-path scratch each thread needs for weights of at most `max_ne0` columns (the conversion
/// targets take at most 34 bytes per 32 weights).
pub fn batch_scratch_bytes(max_ne0: usize) -> usize {
    BATCH_ROWS * max_ne0.div_ceil(32) * 34
}

/// Size every pool thread's conversion scratch to `bytes` (context creation). Each thread also grows its
/// scratch on first use if it missed this job, which only happens when one thread took all the tasks.
pub fn reserve_batch_scratch(pool: &ThreadPool, bytes: usize) {
    let grow = || {
        CONVERTED.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() < bytes {
                c.resize(bytes, 0);
            }
        })
    };
    grow();
    let barrier = std::sync::Barrier::new(pool.n_threads());
    pool.run(pool.n_threads(), |_| {
        grow();
        // why: hold every task until all threads have one, so each thread grows its own scratch
        barrier.wait();
    });
}

/// The batch path of `matmul_q`: threads take chunks of `BATCH_ROWS` weight rows, convert each into their
/// scratch (`bp.convert`) and sweep the activation rows in tiles of up to `MAX_NY` with the target's GEMM.
/// Each output element is the target kernel's dot product of its weight row, whatever the chunking.
fn matmul_q_batch(pool: &ThreadPool, m: &QMatrix, bp: &BatchPlan, xq: &[u8], n_rows: usize, out: &mut [f32]) {
    let (n_out, k, rb, arb) = (m.ne1, m.ne0, m.row_bytes, m.act_row_bytes);
    let crb = bp.target.row_size(k as u64).expect("batch target holds the weight's rows") as usize;
    let gemm = &bp.k.gemm;
    let dst = SyncPtr::new(&mut out[..n_rows * n_out]);
    pool.run(n_out.div_ceil(BATCH_ROWS), |t| {
        let r0 = t * BATCH_ROWS;
        let nx = BATCH_ROWS.min(n_out - r0);
        CONVERTED.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() < nx * crb {
                c.resize(batch_scratch_bytes(k).max(BATCH_ROWS * crb), 0);
            }
            let conv = &mut c[..nx * crb];
            (bp.convert)(k, &m.data[r0 * rb..(r0 + nx) * rb], rb, nx, conv);
            let mut tile = [0.0f32; MAX_NY * BATCH_ROWS];
            for j0 in (0..n_rows).step_by(MAX_NY) {
                let ny = MAX_NY.min(n_rows - j0);
                gemm[ny - 1](k, conv, crb, nx, &xq[j0 * arb..(j0 + ny) * arb], arb, ny, &mut tile[..ny * nx], nx);
                for iy in 0..ny {
                    // SAFETY: task t owns columns r0..r0+nx of every output row.
                    let o = unsafe { dst.slice((j0 + iy) * n_out + r0, nx) };
                    o.copy_from_slice(&tile[iy * nx..(iy + 1) * nx]);
                }
            }
        });
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
