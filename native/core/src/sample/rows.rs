//! Sampling the output rows of one batched decode, each row with its own sampler (the server's continuous
//! batching: one row per generating slot, each with its own chain, penalty history and seed). Per row:
//! `logit_bias` (−Infinity bans) is added to a copy of the row before the sampler's chain, as the reference's
//! `llama_sampling_prepare` does before its penalties; greedy rows without active penalties skip the candidate
//! build (same token: the first maximum wins); the sampled token's log-probability and the row's top tokens
//! (OpenAI `logprobs`: raw logits, before penalties and bias) are computed in f64. The N-API face is
//! native/node/src/sample.rs (`ctx.decodeRows`).

use super::Sampler;

/// One out-row's plan: its sampler (None: no token), bias, how many top tokens to report, logits copy-out.
pub struct RowSpec<'a> {
    pub sampler: Option<&'a mut Sampler>,
    pub bias: &'a [(usize, f32)],
    pub n_probs: Option<usize>,
    pub want_logits: bool,
}

/// Per-row results of one step.
#[derive(Default)]
pub struct RowsOut {
    pub sampled: Vec<i32>,
    pub logprob: Vec<f32>,
    pub top_n: usize,
    pub top_ids: Vec<i32>,
    pub top_logprobs: Vec<f32>,
    pub logits: Option<Vec<f32>>,
}

/// Indices of the `n` largest finite-or-infinite (non-NaN) values, best first, ties to the lower index.
pub fn top_n(row: &[f32], n: usize, out: &mut Vec<usize>) {
    out.clear();
    if n == 0 {
        return;
    }
    for (i, &v) in row.iter().enumerate() {
        if v.is_nan() || (out.len() == n && v <= row[out[n - 1]]) {
            continue;
        }
        // insert after every kept entry that is >= v (earlier indices win ties)
        let at = out.partition_point(|&k| row[k] >= v);
        if out.len() == n {
            out.pop();
        }
        out.insert(at, i);
    }
}

/// Index of the first maximum (NaN never wins; 0 for an all-NaN row): `sample::greedy`'s rule, in two
/// vectorisable passes (max over 16 lanes, then the first index holding it) — 129k logits in tens of µs.
pub fn argmax(row: &[f32]) -> u32 {
    const L: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; L];
    let chunks = row.chunks_exact(L);
    let rem = chunks.remainder();
    for c in chunks {
        for k in 0..L {
            lanes[k] = if c[k] > lanes[k] { c[k] } else { lanes[k] };
        }
    }
    let max = lanes.iter().chain(rem).fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    row.iter().position(|&v| v == max).unwrap_or(0) as u32
}

/// log Σ exp(row), in f64 (NaN entries ignored).
pub fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row.iter().copied().filter(|v| !v.is_nan()).fold(f32::NEG_INFINITY, f32::max) as f64;
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = row.iter().filter(|v| !v.is_nan()).map(|&v| (v as f64 - max).exp()).sum();
    max + sum.ln()
}

/// Sample every planned row of `logits` (out-rows × nv); accepts each sampled token into its sampler.
pub fn sample_rows(logits: &[f32], nv: usize, plans: &mut [RowSpec<'_>]) -> RowsOut {
    let n = plans.len();
    let top = plans.iter().filter_map(|p| p.n_probs).max().unwrap_or(0);
    let mut o = RowsOut {
        sampled: vec![-1; n],
        logprob: vec![f32::NAN; n],
        top_n: top,
        top_ids: vec![-1; n * top],
        top_logprobs: vec![f32::NAN; n * top],
        logits: None,
    };
    let n_logits = plans.iter().filter(|p| p.want_logits).count();
    let mut copied = Vec::with_capacity(n_logits * nv);
    let mut scratch: Vec<f32> = Vec::new();
    let mut best: Vec<usize> = Vec::new();
    for (j, p) in plans.iter_mut().enumerate() {
        let raw = &logits[j * nv..(j + 1) * nv];
        if p.want_logits {
            copied.extend_from_slice(raw);
        }
        let Some(s) = p.sampler.as_deref_mut() else { continue };
        let row = if p.bias.is_empty() {
            raw
        } else {
            scratch.clear();
            scratch.extend_from_slice(raw);
            for &(id, b) in p.bias {
                if let Some(l) = scratch.get_mut(id) {
                    *l += b;
                }
            }
            &scratch[..]
        };
        let sp = &s.params;
        let neutral = sp.repeat_last_n == 0 || (sp.repeat_penalty == 1.0 && sp.frequency_penalty == 0.0 && sp.presence_penalty == 0.0);
        // greedy without penalties: the chain would take the first maximum of this very row
        let tok = if sp.temp == 0.0 && neutral { argmax(row) } else { s.sample(row) };
        s.accept(tok);
        o.sampled[j] = tok as i32;
        if let Some(k) = p.n_probs {
            let lse = log_sum_exp(raw);
            o.logprob[j] = (raw[tok as usize] as f64 - lse) as f32;
            top_n(raw, k, &mut best);
            for (c, &id) in best.iter().enumerate() {
                o.top_ids[j * top + c] = id as i32;
                o.top_logprobs[j * top + c] = (raw[id] as f64 - lse) as f32;
            }
        }
    }
    if n_logits > 0 {
        o.logits = Some(copied);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::SamplerParams;

    fn sampler(temp: f32) -> Sampler {
        Sampler::new(SamplerParams { temp, seed: 7, ..SamplerParams::default() })
    }

    #[test]
    fn top_n_orders_best_first_ties_to_lower_index() {
        let row = [1.0, 3.0, f32::NAN, 3.0, -1.0, 2.0];
        let mut out = Vec::new();
        top_n(&row, 3, &mut out);
        assert_eq!(out, vec![1, 3, 5]);
        top_n(&row, 10, &mut out);
        assert_eq!(out, vec![1, 3, 5, 0, 4]);
    }

    #[test]
    fn rows_sample_independently_with_bias_and_logprobs() {
        let nv = 5;
        let logits = [0.0, 2.0, 1.0, 0.5, -1.0, /* row 1 */ 3.0, 0.0, 0.0, 0.0, 0.0];
        let (mut a, mut b) = (sampler(0.0), sampler(0.0));
        let ban = [(1, f32::NEG_INFINITY)];
        let mut plans = [
            RowSpec { sampler: Some(&mut a), bias: &ban, n_probs: Some(2), want_logits: true },
            RowSpec { sampler: Some(&mut b), bias: &[], n_probs: None, want_logits: false },
        ];
        let o = sample_rows(&logits, nv, &mut plans);
        assert_eq!(o.sampled, vec![2, 0]); // row 0: token 1 banned → 2; row 1: plain argmax
        let lse = log_sum_exp(&logits[..5]);
        assert!((o.logprob[0] as f64 - (1.0 - lse)).abs() < 1e-6);
        assert!(o.logprob[1].is_nan());
        assert_eq!(o.top_n, 2);
        assert_eq!(&o.top_ids[..2], &[1, 2]); // raw logits: the ban does not change the reported top tokens
        assert_eq!(&o.top_ids[2..], &[-1, -1]);
        assert_eq!(o.logits.as_deref(), Some(&logits[..5]));
    }

    #[test]
    fn argmax_is_greedy() {
        let mut row: Vec<f32> = (0..1037).map(|i| ((i * 7919) % 1009) as f32 * 0.01 - 3.0).collect();
        assert_eq!(argmax(&row), crate::sample::greedy(&row));
        row[5] = f32::NAN;
        row[1030] = 100.0;
        row[1031] = 100.0;
        assert_eq!(argmax(&row), 1030);
        assert_eq!(argmax(&[f32::NAN, f32::NEG_INFINITY, f32::NEG_INFINITY]), 1);
        assert_eq!(argmax(&[f32::NAN; 3]), 0);
    }

    #[test]
    fn greedy_fast_path_matches_the_chain() {
        let row: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 997) as f32 * 0.01).collect();
        let mut s = sampler(0.0);
        let fast = sample_rows(&row, row.len(), &mut [RowSpec { sampler: Some(&mut s), bias: &[], n_probs: None, want_logits: false }]);
        let mut chain = Sampler::new(SamplerParams { temp: 0.0, repeat_penalty: 1.0001, ..SamplerParams::default() });
        assert_eq!(fast.sampled[0] as u32, chain.sample(&row));
    }
}
