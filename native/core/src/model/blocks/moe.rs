//! Mixture-of-experts FFN block (spec/models.md §3.6): router (softmax or sigmoid), optional selection bias
//! (`exp_probs_b`, added for top-k selection only), top-k, optional renormalisation, `× expert_weights_scale`,
//! SwiGLU experts computed only for the tokens that selected them (rows gathered per expert), plus the shared
//! expert(s). No group-limited routing (spec §3.7: ik_llama.cpp does not apply it for deepseek2).
//!
//! Expert weights are the 3-D GGUF tensors `[ne0, rows, n_expert]`: each expert is a row range of the same
//! mapping, bound as its own `QMatrix` at load.

use crate::cpu::ops::{self, QMatrix};
use crate::cpu::pool::ThreadPool;
use crate::error::Result;
use crate::model::llama::alloc;

/// Router probability function (`expert_gating_func`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gating {
    Softmax,
    Sigmoid,
}

pub struct Moe {
    /// Router `[n_embd, n_expert]`.
    pub gate_inp: QMatrix,
    /// Selection bias `[n_expert]` (V3 `e_score_correction_bias`).
    pub probs_b: Option<Vec<f32>>,
    /// Per expert: gate/up `[n_embd, n_ff_exp]`, down `[n_ff_exp, n_embd]`.
    pub gate: Vec<QMatrix>,
    pub up: Vec<QMatrix>,
    pub down: Vec<QMatrix>,
    /// Shared expert(s): gate/up `[n_embd, n_ff_sh]`, down `[n_ff_sh, n_embd]`.
    pub sh_gate: QMatrix,
    pub sh_up: QMatrix,
    pub sh_down: QMatrix,
    pub n_used: usize,
    pub gating: Gating,
    pub w_norm: bool,
    pub w_scale: f32,
}

/// Scratch of one context (sized at creation from n_ubatch).
pub struct MoeScratch {
    pub probs: Vec<f32>,  // [n, n_expert]
    pub sel: Vec<usize>,  // [n, n_used] selected experts, best first
    pub w: Vec<f32>,      // [n, n_used] their weights
    pub rows: Vec<usize>, // [n · n_used] (token · n_used + slot) of the current expert
    pub xg: Vec<f32>,     // [n, n_embd] gathered inputs
    pub g: Vec<f32>,      // [n, max(n_ff_exp, n_ff_sh)]
    pub u: Vec<f32>,      // [n, max(n_ff_exp, n_ff_sh)]
    pub yg: Vec<f32>,     // [n, n_embd] expert outputs of the gathered rows
    pub slots: Vec<f32>,  // [n · n_used, n_embd] per (token, slot) expert outputs
}

impl MoeScratch {
    pub fn new(n: usize, n_embd: usize, n_expert: usize, n_used: usize, n_ff: usize, total: &mut usize) -> Result<MoeScratch> {
        Ok(MoeScratch {
            probs: alloc(n * n_expert, "moe router probabilities", total)?,
            sel: alloc(n * n_used, "moe selection", total)?,
            w: alloc(n * n_used, "moe weights", total)?,
            rows: alloc(n * n_used, "moe rows", total)?,
            xg: alloc(n * n_embd, "moe gathered inputs", total)?,
            g: alloc(n * n_ff, "moe gate", total)?,
            u: alloc(n * n_ff, "moe up", total)?,
            yg: alloc(n * n_embd, "moe outputs", total)?,
            slots: alloc(n * n_used * n_embd, "moe slot outputs", total)?,
        })
    }
}

/// SwiGLU FFN of `n` rows: `out = down(silu(gate x) ⊙ up x)`.
#[allow(clippy::too_many_arguments)]
pub fn swiglu(
    pool: &ThreadPool,
    gate: &QMatrix,
    up: &QMatrix,
    down: &QMatrix,
    x: &[f32],
    n: usize,
    g: &mut [f32],
    u: &mut [f32],
    actq: &mut [u8],
    out: &mut [f32],
) {
    let ff = gate.ne1;
    let xq = ops::quantize_act(pool, gate, x, n, actq);
    ops::matmul_q(pool, gate, xq, n, g);
    if std::ptr::eq(up.act, gate.act) {
        ops::matmul_q(pool, up, xq, n, u);
    } else {
        ops::matmul(pool, up, x, n, actq, u);
    }
    ops::silu_mul(&mut g[..n * ff], &u[..n * ff]);
    ops::matmul(pool, down, g, n, actq, out);
}

impl Moe {
    pub fn n_expert(&self) -> usize {
        self.gate.len()
    }

    /// Router: probabilities, top-k selection and weights of the `n` rows of `x` into `s.sel` / `s.w`.
    pub fn route(&self, pool: &ThreadPool, x: &[f32], n: usize, s: &mut MoeScratch, actq: &mut [u8]) {
        let (ne, k) = (self.n_expert(), self.n_used);
        ops::matmul(pool, &self.gate_inp, x, n, actq, &mut s.probs); // [n, n_expert]
        for i in 0..n {
            let p = &mut s.probs[i * ne..(i + 1) * ne];
            match self.gating {
                Gating::Softmax => ops::softmax(p),
                Gating::Sigmoid => p.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
            }
            // top-k of (p + bias), descending; ties keep the lower index first
            let sel = &mut s.sel[i * k..(i + 1) * k];
            let score = |e: usize| p[e] + self.probs_b.as_ref().map_or(0.0, |b| b[e]);
            let mut n_sel = 0;
            for e in 0..ne {
                let sc = score(e);
                if n_sel == k && sc <= score(sel[k - 1]) {
                    continue;
                }
                let mut j = if n_sel < k {
                    n_sel += 1;
                    n_sel - 1
                } else {
                    k - 1
                };
                while j > 0 && score(sel[j - 1]) < sc {
                    sel[j] = sel[j - 1];
                    j -= 1;
                }
                sel[j] = e;
            }
            let w = &mut s.w[i * k..(i + 1) * k];
            for j in 0..k {
                w[j] = p[sel[j]];
            }
            if self.w_norm {
                let sum: f32 = w.iter().sum();
                w.iter_mut().for_each(|v| *v /= sum);
            }
            if (self.w_scale - 1.0).abs() > 1e-5 {
                w.iter_mut().for_each(|v| *v *= self.w_scale);
            }
        }
    }

    /// `out[n, n_embd] = MoE(x) + shared(x)` for the `n` rows of `x`.
    pub fn forward(&self, pool: &ThreadPool, x: &[f32], n: usize, s: &mut MoeScratch, actq: &mut [u8], out: &mut [f32]) {
        let d = self.gate_inp.ne0;
        let k = self.n_used;
        self.route(pool, x, n, s, actq);
        for e in 0..self.n_expert() {
            let mut m = 0;
            for i in 0..n {
                for j in 0..k {
                    if s.sel[i * k + j] == e {
                        s.rows[m] = i * k + j;
                        s.xg[m * d..(m + 1) * d].copy_from_slice(&x[i * d..(i + 1) * d]);
                        m += 1;
                    }
                }
            }
            if m == 0 {
                continue;
            }
            swiglu(pool, &self.gate[e], &self.up[e], &self.down[e], &s.xg, m, &mut s.g, &mut s.u, actq, &mut s.yg);
            for r in 0..m {
                let slot = s.rows[r];
                s.slots[slot * d..(slot + 1) * d].copy_from_slice(&s.yg[r * d..(r + 1) * d]);
            }
        }
        // weighted sum in slot order (as the reference's sum of per-slot views), then the shared expert(s)
        swiglu(pool, &self.sh_gate, &self.sh_up, &self.sh_down, x, n, &mut s.g, &mut s.u, actq, &mut s.yg);
        for i in 0..n {
            let o = &mut out[i * d..(i + 1) * d];
            for j in 0..k {
                let (w, y) = (s.w[i * k + j], &s.slots[(i * k + j) * d..(i * k + j + 1) * d]);
                if j == 0 {
                    o.iter_mut().zip(y).for_each(|(a, &b)| *a = w * b);
                } else {
                    o.iter_mut().zip(y).for_each(|(a, &b)| *a += w * b);
                }
            }
            o.iter_mut().zip(&s.yg[i * d..(i + 1) * d]).for_each(|(a, &b)| *a += b);
        }
    }
}
