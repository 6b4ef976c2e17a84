//! `ctx.decodeRows`: one batched decode whose output rows are sampled in Rust, each row by its own `Sampler`
//! (the server's continuous batching: one row per generating slot, each slot with its own chain, penalty
//! history and seed). Logits stay in Rust unless a row asks for them (the server's JSON mode re-draws in JS);
//! the sampled token's log-probability and the row's top tokens (OpenAI `logprobs`) come back per row.
//! Argument conversion only; the per-row math is ikl-core's `sample::rows` (native/core/src/sample/rows.rs).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ikl_core::sample::rows::{sample_rows, RowSpec, RowsOut};
use ikl_core::sample::Sampler as CoreSampler;
use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::context::{busy, Claim};
use crate::errors::{guarded, js_error, Failure};
use crate::sampler::{lock as lock_sampler, Sampler};

/// Largest `nProbs` a row may ask for (OpenAI allows 20; the native API's n_probs is capped by the server too).
const MAX_PROBS: usize = 100;

/// What one output row wants besides its token.
#[napi(object)]
pub struct RowSampling {
    /// Additive logit bias for these token ids (−Infinity bans a token); applied before the sampler's chain.
    pub bias_ids: Option<Uint32Array>,
    pub bias_values: Option<Float32Array>,
    /// ≥ 0: return the sampled token's log-probability and the `nProbs` most likely tokens (raw logits);
    /// absent or < 0: neither.
    pub n_probs: Option<i32>,
    /// Copy this row's logits out (rows without a sampler usually want them).
    pub want_logits: Option<bool>,
}

#[napi(object)]
pub struct DecodeRowsResult {
    /// One token per out-row; −1 for rows without a sampler.
    pub sampled: Int32Array,
    /// log p(sampled) per out-row under the raw logits; NaN where not asked (or no sampler).
    pub logprob: Float32Array,
    /// Columns of `topIds` / `topLogprobs`: the largest `nProbs` asked by any row.
    pub top_n: u32,
    /// outRows × topN, best first (ties: lower id first); −1 / NaN padding.
    pub top_ids: Int32Array,
    pub top_logprobs: Float32Array,
    /// The rows that asked for logits, in out-row order, nVocab floats each.
    pub logits: Option<Float32Array>,
    pub compute_us: f64,
    pub sample_us: f64,
    pub n_ubatch: u32,
}

/// One out-row's sampling plan, resolved on the JS thread.
pub struct RowPlan {
    sampler: Option<Arc<Mutex<CoreSampler>>>,
    bias: Vec<(usize, f32)>,
    n_probs: Option<usize>,
    want_logits: bool,
}

/// Validate and resolve the per-row arguments (`samplers` and `rows` have one entry per out-row).
pub fn plan_rows(samplers: &[Option<&Sampler>], rows: &[RowSampling], n_out: usize) -> std::result::Result<Vec<RowPlan>, Failure> {
    let bad = |message: String| Failure { code: "IKL_E_INVALID", message };
    if samplers.len() != n_out || rows.len() != n_out {
        return Err(bad(format!("decodeRows: {} samplers and {} row options for {n_out} out-rows", samplers.len(), rows.len())));
    }
    let mut plans = Vec::with_capacity(n_out);
    // each row's sampler is locked for the whole step: one Sampler in two rows would wait on itself
    let mut seen = std::collections::HashSet::new();
    for (j, s) in samplers.iter().enumerate() {
        if let Some(s) = s {
            if !seen.insert(Arc::as_ptr(&s.inner) as usize) {
                return Err(bad(format!("decodeRows row {j}: this Sampler already samples another row; give every row its own")));
            }
        }
    }
    for (j, (s, r)) in samplers.iter().zip(rows).enumerate() {
        let ids = r.bias_ids.as_ref().map_or(&[][..], |a| &a[..]);
        let values = r.bias_values.as_ref().map_or(&[][..], |a| &a[..]);
        if ids.len() != values.len() {
            return Err(bad(format!("decodeRows row {j}: {} bias ids but {} bias values", ids.len(), values.len())));
        }
        if let Some(v) = values.iter().find(|v| v.is_nan() || **v == f32::INFINITY) {
            return Err(bad(format!("decodeRows row {j}: bias value {v} (must be finite or -Infinity)")));
        }
        let n_probs = match r.n_probs {
            Some(n) if n as i64 > MAX_PROBS as i64 => return Err(bad(format!("decodeRows row {j}: nProbs {n} exceeds {MAX_PROBS}"))),
            Some(n) if n >= 0 => Some(n as usize),
            _ => None,
        };
        plans.push(RowPlan {
            sampler: s.map(|s| s.inner.clone()),
            bias: ids.iter().zip(values).map(|(&i, &v)| (i as usize, v)).collect(),
            n_probs,
            want_logits: r.want_logits.unwrap_or(false),
        });
    }
    Ok(plans)
}

pub struct DecodeRowsTask {
    pub(crate) claim: Option<Claim>,
    pub(crate) tokens: Vec<u32>,
    pub(crate) pos: Vec<i32>,
    pub(crate) seq: Vec<i32>,
    pub(crate) out_rows: Vec<i32>,
    pub(crate) plans: std::result::Result<Vec<RowPlan>, Failure>,
}

pub struct DecodeRowsOut {
    rows: RowsOut,
    compute_us: u64,
    sample_us: u64,
    n_ubatch: usize,
}

impl Task for DecodeRowsTask {
    type Output = std::result::Result<DecodeRowsOut, Failure>;
    type JsValue = DecodeRowsResult;

    fn compute(&mut self) -> Result<Self::Output> {
        let Some(claim) = self.claim.take() else { return Ok(Err(busy())) };
        let plans = match std::mem::replace(&mut self.plans, Ok(Vec::new())) {
            Ok(p) => p,
            Err(f) => return Ok(Err(f)),
        };
        let out = guarded(|| {
            let mut ctx = claim.0.lock();
            let logits = ctx.decode(&self.tokens, &self.pos, &self.seq, &self.out_rows)?;
            let nv = logits.len() / self.out_rows.len().max(1);
            let t0 = Instant::now();
            let mut guards: Vec<_> = plans.iter().map(|p| p.sampler.as_ref().map(|s| lock_sampler(s))).collect();
            let mut specs: Vec<RowSpec<'_>> = plans
                .iter()
                .zip(guards.iter_mut())
                .map(|(p, g)| RowSpec { sampler: g.as_deref_mut(), bias: &p.bias, n_probs: p.n_probs, want_logits: p.want_logits })
                .collect();
            let rows = sample_rows(logits, nv, &mut specs);
            let sample_us = t0.elapsed().as_micros() as u64;
            Ok(DecodeRowsOut { rows, compute_us: ctx.last_compute_us, sample_us, n_ubatch: ctx.last_n_ubatch })
        });
        drop(claim);
        Ok(out)
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<DecodeRowsResult> {
        let o = out.map_err(|f| js_error(&env, f))?;
        let r = o.rows;
        Ok(DecodeRowsResult {
            sampled: Int32Array::new(r.sampled),
            logprob: Float32Array::new(r.logprob),
            top_n: r.top_n as u32,
            top_ids: Int32Array::new(r.top_ids),
            top_logprobs: Float32Array::new(r.top_logprobs),
            logits: r.logits.map(Float32Array::new),
            compute_us: o.compute_us as f64,
            sample_us: o.sample_us as f64,
            n_ubatch: o.n_ubatch as u32,
        })
    }
}
