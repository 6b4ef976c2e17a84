//! Mixture-of-experts FFN block (spec/models.md §3.6, §3.7, §7.1, §7.2): router (softmax or sigmoid), optional
//! selection bias (`exp_probs_b`, added for selection only; the un-biased probabilities are the weights), top-k,
//! optional renormalisation, `× expert_weights_scale`, SwiGLU experts computed only for the tokens that
//! selected them (rows grouped per expert), plus the shared expert(s).
//!
//! Run-time choices (`MoeParams`, per context):
//! * **fused** (`-fmoe`, default): per expert, gate, up, SiLU·mul and down in one pass over the rows that chose
//!   it. Unfused (`-no-fmoe`): the reference's op sequence (`llm_build_moe_ffn` @ 8337e4cd without
//!   `fused_moe_up_gate`): `up = mul_mat_id`, `gate = mul_mat_id` over all (token, slot) rows, one
//!   `fused_mul_unary`, `down = mul_mat_id`, then the weighted slot sum. Both quantize the same activation rows
//!   with the same kernels, so they agree to rounding (in practice bit for bit).
//! * **grouped** (`-ger`): DeepSeek-V3 group-limited routing, which the reference implements only for
//!   BailingMoE2/3 and ignores for deepseek2 (hence off by default, spec §3.7). Experts form
//!   `expert_group_count` consecutive groups; a group's score is the sum of its two best selection scores; only
//!   the `expert_group_used_count` best groups (ties: lower group index) compete for the top-k.
//! * **ser** (`-ser Kmin,t`, smart expert reduction, PR #239 semantics; the reference parses but ignores it):
//!   of the selected experts, ranked by selection score, the first `Kmin` always stay; a later one is dropped
//!   when its score is below `t ×` the best score. Dropped experts are not computed and weigh 0 (with
//!   `expert_weights_norm` the kept weights are renormalised among themselves). `Kmin ≤ 0` or `t ≤ 0`: off.
//!
//! Expert weights are the 3-D GGUF tensors `[ne0, rows, n_expert]`: each expert is a row range of the same
//! mapping, bound as its own `QMatrix` at load.

use crate::cpu::ops::{self, QMatrix};
use crate::cpu::pool::ThreadPool;
use crate::error::{Error, Result};
use crate::model::llama::alloc;

/// Router probability function (`expert_gating_func`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gating {
    Softmax,
    Sigmoid,
}

/// Marks a selection slot whose expert was dropped by smart expert reduction.
pub const DROPPED: usize = usize::MAX;

/// Routing shape of a MoE model (from hparams).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routing {
    pub n_expert: usize,
    pub n_used: usize,
    /// `expert_group_count` / `expert_group_used_count` (1 / 1 when the file has none).
    pub n_group: usize,
    pub n_group_used: usize,
    pub n_ff_exp: usize,
}

/// Per-context MoE choices (ContextParams `fused_moe`, `ser`, `grouped_experts`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MoeParams {
    pub fused: bool,
    pub grouped: bool,
    /// Smart expert reduction `(Kmin, t)`; `(-1, 0.0)` = off.
    pub ser: (i32, f32),
}

impl Default for MoeParams {
    fn default() -> Self {
        MoeParams { fused: true, grouped: false, ser: (-1, 0.0) }
    }
}

impl MoeParams {
    /// The group restriction to apply, if any (`None` when off or when the file has no groups).
    fn groups(&self, r: &Routing) -> Option<(usize, usize)> {
        (self.grouped && r.n_group > 1 && r.n_group_used < r.n_group).then_some((r.n_group, r.n_group_used))
    }

    fn ser_active(&self) -> Option<(usize, f32)> {
        (self.ser.0 > 0 && self.ser.1 > 0.0).then_some((self.ser.0 as usize, self.ser.1))
    }
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
    pub routing: Routing,
    pub gating: Gating,
    pub w_norm: bool,
    pub w_scale: f32,
}

/// Scratch of one context (sized at creation from n_ubatch; the unfused buffers only when chosen).
pub struct MoeScratch {
    pub params: MoeParams,
    routing: Routing,
    pub probs: Vec<f32>,    // [n, n_expert] router probabilities
    pub score: Vec<f32>,    // [n_expert] selection scores of one token
    pub gscore: Vec<f32>,   // [n_group] group scores of one token
    pub sel: Vec<usize>,    // [n, n_used] selected experts, best first (DROPPED: reduced away)
    pub w: Vec<f32>,        // [n, n_used] their weights
    pub rows: Vec<usize>,   // [n] slots (token · n_used + j) of the current expert
    pub xq: Vec<u8>,        // [n, act row bytes] x encoded once for the expert matmuls
    pub xgq: Vec<u8>,       // [n, act row bytes] encoded rows of the current expert
    pub xg: Vec<f32>,       // [n, n_embd] gathered f32 rows (only when gate and up differ in activation type)
    pub g: Vec<f32>,        // [n, max(n_ff_exp, n_ff_sh)]
    pub u: Vec<f32>,        // [n, max(n_ff_exp, n_ff_sh)]
    pub yg: Vec<f32>,       // [n, n_embd] expert outputs of the gathered rows
    pub slots: Vec<f32>,    // [n · n_used, n_embd] per (token, slot) expert outputs
    pub up_all: Vec<f32>,   // unfused: [n · n_used, n_ff_exp]
    pub gate_all: Vec<f32>, // unfused: [n · n_used, n_ff_exp]
}

impl MoeScratch {
    /// `n_ff`: the larger of the expert and shared-expert FFN sizes; `act_rb`: the largest activation row.
    pub fn new(n: usize, n_embd: usize, r: &Routing, n_ff: usize, act_rb: usize, total: &mut usize) -> Result<MoeScratch> {
        let k = r.n_used;
        Ok(MoeScratch {
            params: MoeParams::default(),
            routing: *r,
            probs: alloc(n * r.n_expert, "moe router probabilities", total)?,
            score: alloc(r.n_expert, "moe selection scores", total)?,
            gscore: alloc(r.n_group.max(1), "moe group scores", total)?,
            sel: alloc(n * k, "moe selection", total)?,
            w: alloc(n * k, "moe weights", total)?,
            rows: alloc(n, "moe rows", total)?,
            xq: alloc(n * act_rb, "moe encoded inputs", total)?,
            xgq: alloc(n * act_rb, "moe gathered encoded inputs", total)?,
            xg: alloc(n * n_embd, "moe gathered inputs", total)?,
            g: alloc(n * n_ff, "moe gate", total)?,
            u: alloc(n * n_ff, "moe up", total)?,
            yg: alloc(n * n_embd, "moe outputs", total)?,
            slots: alloc(n * k * n_embd, "moe slot outputs", total)?,
            up_all: Vec::new(),
            gate_all: Vec::new(),
        })
    }

    /// Apply the context's MoE choices: validates `-ger` against the model's groups and allocates the unfused
    /// path's `[n·k, n_ff_exp]` buffers when `-no-fmoe` is chosen. Called once, at context creation.
    pub fn configure(&mut self, p: MoeParams, total: &mut usize) -> Result<()> {
        let r = self.routing;
        if p.grouped && r.n_group > 1 {
            let per = r.n_expert / r.n_group;
            if r.n_expert % r.n_group != 0 || r.n_group_used == 0 || r.n_group_used > r.n_group || per * r.n_group_used < r.n_used {
                return Err(Error::Invalid {
                    what: format!(
                        "grouped expert routing: expert_group_count {} / expert_group_used_count {} do not fit {} experts with {} used",
                        r.n_group, r.n_group_used, r.n_expert, r.n_used
                    ),
                });
            }
        }
        let n = self.sel.len() / r.n_used.max(1);
        if !p.fused {
            self.up_all = alloc(n * r.n_used * r.n_ff_exp, "moe unfused up (-no-fmoe)", total)?;
            self.gate_all = alloc(n * r.n_used * r.n_ff_exp, "moe unfused gate (-no-fmoe)", total)?;
        } else {
            self.up_all = Vec::new();
            self.gate_all = Vec::new();
        }
        self.params = p;
        Ok(())
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

/// Top-k selection of one token from `score` (`n_expert` selection scores) into `sel` (k experts, best first;
/// ties keep the lower index first). `groups = Some((n_group, n_group_used))` restricts the candidates to the
/// best groups (DeepSeek-V3: group score = sum of the group's two best scores); `gscore` is `n_group` scratch.
/// `ser = Some((Kmin, t))` then drops slots `j ≥ Kmin` whose score is below `t · score[sel[0]]` (→ `DROPPED`).
pub fn select(score: &[f32], groups: Option<(usize, usize)>, ser: Option<(usize, f32)>, gscore: &mut [f32], sel: &mut [usize]) {
    let (ne, k) = (score.len(), sel.len());
    let per = groups.map_or(ne, |(ng, _)| ne / ng);
    if let Some((ng, used)) = groups {
        for (gi, gs) in gscore[..ng].iter_mut().enumerate() {
            let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY); // best two of the group
            for &s in &score[gi * per..(gi + 1) * per] {
                if s > a {
                    b = a;
                    a = s;
                } else if s > b {
                    b = s;
                }
            }
            *gs = if per >= 2 { a + b } else { a };
        }
        // keep the `used` best groups: drop the worst one at a time (ties: the higher index goes), marked NaN
        for _ in used..ng {
            let mut worst = usize::MAX;
            for (g, &v) in gscore[..ng].iter().enumerate() {
                if !v.is_nan() && (worst == usize::MAX || v <= gscore[worst]) {
                    worst = g;
                }
            }
            if worst != usize::MAX {
                gscore[worst] = f32::NAN;
            }
        }
    }
    let allowed = |e: usize| groups.is_none() || !gscore[e / per].is_nan();
    let mut n_sel = 0;
    for e in (0..ne).filter(|&e| allowed(e)) {
        let sc = score[e];
        if n_sel == k && sc <= score[sel[k - 1]] {
            continue;
        }
        let mut j = if n_sel < k {
            n_sel += 1;
            n_sel - 1
        } else {
            k - 1
        };
        while j > 0 && score[sel[j - 1]] < sc {
            sel[j] = sel[j - 1];
            j -= 1;
        }
        sel[j] = e;
    }
    if let Some((kmin, t)) = ser {
        let top = score[sel[0]];
        for s in sel.iter_mut().skip(kmin) {
            if score[*s] < t * top {
                *s = DROPPED;
            }
        }
    }
}

impl Moe {
    pub fn n_expert(&self) -> usize {
        self.gate.len()
    }

    /// Router: probabilities, selection and weights of the `n` rows of `x` into `s.sel` / `s.w`.
    pub fn route(&self, pool: &ThreadPool, x: &[f32], n: usize, s: &mut MoeScratch, actq: &mut [u8]) {
        let (ne, k) = (self.n_expert(), self.routing.n_used);
        let (groups, ser) = (s.params.groups(&self.routing), s.params.ser_active());
        ops::matmul(pool, &self.gate_inp, x, n, actq, &mut s.probs); // [n, n_expert]
        for i in 0..n {
            let p = &mut s.probs[i * ne..(i + 1) * ne];
            match self.gating {
                Gating::Softmax => ops::softmax(p),
                Gating::Sigmoid => p.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
            }
            for (e, sc) in s.score.iter_mut().enumerate() {
                *sc = p[e] + self.probs_b.as_ref().map_or(0.0, |b| b[e]);
            }
            let sel = &mut s.sel[i * k..(i + 1) * k];
            select(&s.score[..ne], groups, ser, &mut s.gscore, sel);
            let w = &mut s.w[i * k..(i + 1) * k];
            for j in 0..k {
                w[j] = if sel[j] == DROPPED { 0.0 } else { p[sel[j]] };
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

    /// Slots (token · k + j) that selected expert `e`, in token order, into `s.rows`; returns their count.
    fn rows_of(s: &mut MoeScratch, e: usize, n: usize, k: usize) -> usize {
        let mut m = 0;
        for (slot, &x) in s.sel[..n * k].iter().enumerate() {
            if x == e {
                s.rows[m] = slot;
                m += 1;
            }
        }
        m
    }

    /// Copy the encoded rows of the tokens in `s.rows[..m]` from `s.xq` into `s.xgq` (`rb` bytes per row).
    fn gather_q(s: &mut MoeScratch, m: usize, k: usize, rb: usize) {
        for r in 0..m {
            let i = s.rows[r] / k;
            s.xgq[r * rb..(r + 1) * rb].copy_from_slice(&s.xq[i * rb..(i + 1) * rb]);
        }
    }

    /// `out[n, n_embd] = MoE(x) + shared(x)` for the `n` rows of `x`.
    pub fn forward(&self, pool: &ThreadPool, x: &[f32], n: usize, s: &mut MoeScratch, actq: &mut [u8], out: &mut [f32]) {
        let d = self.gate_inp.ne0;
        let k = self.routing.n_used;
        self.route(pool, x, n, s, actq);
        if s.params.fused {
            self.experts_fused(pool, x, n, s, actq);
        } else {
            self.experts_unfused(pool, x, n, s, actq);
        }
        // weighted sum in slot order (the reference's mul + multi_add over per-slot views), then the shared expert(s)
        swiglu(pool, &self.sh_gate, &self.sh_up, &self.sh_down, x, n, &mut s.g, &mut s.u, actq, &mut s.yg);
        for i in 0..n {
            let o = &mut out[i * d..(i + 1) * d];
            o.fill(0.0);
            for j in 0..k {
                if s.sel[i * k + j] == DROPPED {
                    continue;
                }
                let (w, y) = (s.w[i * k + j], &s.slots[(i * k + j) * d..(i * k + j + 1) * d]);
                o.iter_mut().zip(y).for_each(|(a, &b)| *a += w * b);
            }
            o.iter_mut().zip(&s.yg[i * d..(i + 1) * d]).for_each(|(a, &b)| *a += b);
        }
    }

    /// Fused: per expert, gate and up over its rows (x encoded once for all experts), SiLU·mul, down, into the
    /// rows' slots.
    fn experts_fused(&self, pool: &ThreadPool, x: &[f32], n: usize, s: &mut MoeScratch, actq: &mut [u8]) {
        let (d, k, ff) = (self.gate_inp.ne0, self.routing.n_used, self.routing.n_ff_exp);
        let (g0, u0) = (&self.gate[0], &self.up[0]);
        let rb = g0.act_row_bytes;
        let same_act = std::ptr::eq(u0.act, g0.act);
        ops::quantize_act(pool, g0, x, n, &mut s.xq); // [n, act row]
        for e in 0..self.n_expert() {
            let m = Self::rows_of(s, e, n, k);
            if m == 0 {
                continue;
            }
            Self::gather_q(s, m, k, rb);
            ops::matmul_q(pool, &self.gate[e], &s.xgq[..m * rb], m, &mut s.g); // [m, n_ff_exp]
            if same_act {
                // [m, n_ff_exp]
                ops::matmul_q(pool, &self.up[e], &s.xgq[..m * rb], m, &mut s.u);
            } else {
                for r in 0..m {
                    let i = s.rows[r] / k;
                    s.xg[r * d..(r + 1) * d].copy_from_slice(&x[i * d..(i + 1) * d]);
                }
                ops::matmul(pool, &self.up[e], &s.xg, m, actq, &mut s.u);
            }
            ops::silu_mul(&mut s.g[..m * ff], &s.u[..m * ff]);
            ops::matmul(pool, &self.down[e], &s.g, m, actq, &mut s.yg); // [m, n_embd]
            for r in 0..m {
                let slot = s.rows[r];
                s.slots[slot * d..(slot + 1) * d].copy_from_slice(&s.yg[r * d..(r + 1) * d]);
            }
        }
    }

    /// Unfused, the reference's sequence: `up = mul_mat_id(up_exps)`, `gate = mul_mat_id(gate_exps)` into
    /// `[n·k, n_ff_exp]`, one SiLU·mul over all slots, `down = mul_mat_id(down_exps)` into the slots.
    fn experts_unfused(&self, pool: &ThreadPool, x: &[f32], n: usize, s: &mut MoeScratch, actq: &mut [u8]) {
        let (d, k, ff) = (self.gate_inp.ne0, self.routing.n_used, self.routing.n_ff_exp);
        for pass in 0..2 {
            let mats = if pass == 0 { &self.up } else { &self.gate };
            let rb = mats[0].act_row_bytes;
            ops::quantize_act(pool, &mats[0], x, n, &mut s.xq); // [n, act row]: src1 converted once per mul_mat_id
            for (e, w) in mats.iter().enumerate() {
                let m = Self::rows_of(s, e, n, k);
                if m == 0 {
                    continue;
                }
                Self::gather_q(s, m, k, rb);
                ops::matmul_q(pool, w, &s.xgq[..m * rb], m, &mut s.u); // [m, n_ff_exp]
                let dst = if pass == 0 { &mut s.up_all } else { &mut s.gate_all };
                for r in 0..m {
                    let slot = s.rows[r];
                    dst[slot * ff..(slot + 1) * ff].copy_from_slice(&s.u[r * ff..(r + 1) * ff]);
                }
            }
        }
        for slot in 0..n * k {
            if s.sel[slot] != DROPPED {
                // [n·k, n_ff_exp]
                let row = slot * ff..(slot + 1) * ff;
                ops::silu_mul(&mut s.gate_all[row.clone()], &s.up_all[row]);
            }
        }
        for e in 0..self.n_expert() {
            let m = Self::rows_of(s, e, n, k);
            if m == 0 {
                continue;
            }
            for r in 0..m {
                let slot = s.rows[r];
                s.g[r * ff..(r + 1) * ff].copy_from_slice(&s.gate_all[slot * ff..(slot + 1) * ff]);
            }
            ops::matmul(pool, &self.down[e], &s.g, m, actq, &mut s.yg); // [m, n_embd]
            for r in 0..m {
                let slot = s.rows[r];
                s.slots[slot * d..(slot + 1) * d].copy_from_slice(&s.yg[r * d..(r + 1) * d]);
            }
        }
    }
}
