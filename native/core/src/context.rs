//! Context: one inference session over a `Model` — thread pool, KV cache, activation arena and the logits
//! output buffer, all allocated at creation (STYLE §2 rule 10); `decode` and `score` allocate nothing.
//!
//! `decode` splits a batch into ubatches of `n_ubatch` tokens (node-llama-cpp `decodeBatch`, llama.cpp
//! `llama_decode`), reserves KV cells, runs the forward pass and copies the requested logits rows. `score`
//! computes per-position log-probabilities of target tokens in Rust (perplexity never ships logits).
//! Not here: sampling (sample.rs), CUDA.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::cpu::ops::{self, RopeParams};
use crate::cpu::pool::{SyncPtr, ThreadPool};
use crate::error::{Error, Result};
use crate::kv::cells::MAX_SEQ;
pub use crate::kv::FlashAttn;
use crate::kv::KvCache;
use crate::model::deepseek2;
use crate::model::llama::{alloc, Activations, Ubatch};
use crate::model::{Model, Net};
use crate::quant::QType;

#[derive(Clone, Debug)]
pub struct ContextParams {
    /// KV cells (0 = the model's training context).
    pub n_ctx: usize,
    /// Most tokens one `decode` call accepts.
    pub n_batch: usize,
    /// Tokens per forward pass; activations are sized from it.
    pub n_ubatch: usize,
    /// Most logits rows one `decode` call returns (0 = n_batch). The buffer is n_outputs × n_vocab floats.
    pub n_outputs: usize,
    pub threads: usize,
    pub type_k: QType,
    pub type_v: QType,
    /// `-fa on|off|auto` (auto = on on the CPU, as the reference). Off stores V transposed, which needs an
    /// f16/bf16 V cache.
    pub flash_attn: FlashAttn,
}

impl Default for ContextParams {
    fn default() -> Self {
        ContextParams {
            n_ctx: 4096,
            n_batch: 2048,
            n_ubatch: 512,
            n_outputs: 0,
            threads: 1,
            type_k: QType::F16,
            type_v: QType::F16,
            flash_attn: FlashAttn::Auto,
        }
    }
}

/// The activation arena of the model's architecture (one per Context, so the variants' size difference is moot).
#[allow(clippy::large_enum_variant)]
enum Acts {
    Llama(Activations),
    Deepseek2(deepseek2::Activations),
}

impl Acts {
    fn logits(&self) -> &[f32] {
        match self {
            Acts::Llama(a) => &a.logits,
            Acts::Deepseek2(a) => &a.logits,
        }
    }

    fn cells_mut(&mut self) -> &mut [usize] {
        match self {
            Acts::Llama(a) => &mut a.cells,
            Acts::Deepseek2(a) => &mut a.cells,
        }
    }
}

pub struct Context {
    pub model: Arc<Model>,
    pub params: ContextParams,
    pool: ThreadPool,
    pub kv: KvCache,
    act: Acts,
    rope: RopeParams,
    /// [n_outputs, n_vocab] logits rows returned by `decode`.
    logits: Vec<f32>,
    /// Per-ubatch scratch: rows of the ubatch that want logits, and their destination row.
    out_rows: Vec<usize>,
    out_dst: Vec<usize>,
    /// Compute time of the last `decode`/`score`, microseconds, and its ubatch count.
    pub last_compute_us: u64,
    pub last_n_ubatch: usize,
    /// Set by the caller (any thread) to stop `decode`/`score` before the next ubatch with `Error::Cancelled`.
    pub cancel: Arc<AtomicBool>,
}

impl Context {
    pub fn new(model: Arc<Model>, mut p: ContextParams) -> Result<Context> {
        if p.n_ctx == 0 {
            p.n_ctx = model.n_ctx_train();
        }
        p.n_batch = p.n_batch.max(1);
        p.n_ubatch = p.n_ubatch.clamp(1, p.n_batch);
        if p.n_outputs == 0 {
            p.n_outputs = p.n_batch;
        }
        p.threads = p.threads.max(1);
        let fa = p.flash_attn.enabled();
        // Cache types, the quantized-V-needs-FA rule and head-size/block checks are validated here.
        let (kv, act, rope, n_vocab) = match &model.net {
            Net::Llama(m) => {
                let hp = &m.hp;
                let kv = KvCache::new(
                    hp.n_layer,
                    p.n_ctx,
                    hp.n_head,
                    hp.n_head_kv,
                    hp.head_dim_k,
                    hp.head_dim_v,
                    p.type_k,
                    p.type_v,
                    fa,
                    p.threads,
                )?;
                let act = Activations::new(hp, &m.w, p.n_ubatch, p.n_ctx, p.threads)?;
                (kv, Acts::Llama(act), hp.rope(m.w.rope_freqs.clone()), hp.n_vocab)
            }
            Net::Deepseek2(m) => {
                // MLA mode 0: a standard K/V cache with H_kv = H (spec/models.md §3.5).
                let hp = &m.hp;
                let kv = KvCache::new(
                    hp.n_layer,
                    p.n_ctx,
                    hp.n_head,
                    hp.n_head,
                    hp.head_dim_k,
                    hp.head_dim_v,
                    p.type_k,
                    p.type_v,
                    fa,
                    p.threads,
                )?;
                let act = deepseek2::Activations::new(hp, &m.w, p.n_ubatch)?;
                (kv, Acts::Deepseek2(act), hp.rope(), hp.n_vocab)
            }
        };
        let total = &mut 0usize;
        let logits = alloc(p.n_outputs * n_vocab, "logits output buffer (n_outputs × n_vocab); lower --batch-size", total)?;
        let out_rows = alloc(p.n_ubatch, "output rows", total)?;
        let out_dst = alloc(p.n_ubatch, "output rows", total)?;
        let pool = ThreadPool::new(p.threads);
        Ok(Context {
            model,
            params: p,
            pool,
            kv,
            act,
            rope,
            logits,
            out_rows,
            out_dst,
            last_compute_us: 0,
            last_n_ubatch: 0,
            cancel: Arc::default(),
        })
    }

    pub fn n_vocab(&self) -> usize {
        self.model.n_vocab()
    }

    /// Remove cells of `seq` (all sequences if negative) with `p0 ≤ pos < p1` (`p1 < 0`: to the end).
    pub fn kv_remove(&mut self, seq: i32, p0: i32, p1: i32) {
        let s = if seq < 0 { None } else { Some(seq as usize) };
        self.kv.cells.remove(s, p0, p1);
    }

    pub fn kv_clear(&mut self) {
        self.kv.cells.clear();
    }

    fn check_batch(&self, tokens: &[u32], pos: &[i32], seq: &[i32]) -> Result<()> {
        let n = tokens.len();
        if pos.len() != n || seq.len() != n {
            return Err(Error::Invalid {
                what: format!("batch arrays differ in length: tokens {n}, pos {}, seq {}", pos.len(), seq.len()),
            });
        }
        if n == 0 || n > self.params.n_batch {
            return Err(Error::Invalid { what: format!("batch of {n} tokens; must be 1..={} (n_batch)", self.params.n_batch) });
        }
        if let Some(s) = seq.iter().find(|&&s| s < 0 || s as usize >= MAX_SEQ) {
            return Err(Error::Invalid { what: format!("sequence id {s} out of range 0..{MAX_SEQ}") });
        }
        if let Some(p) = pos.iter().find(|&&p| p < 0) {
            return Err(Error::Invalid { what: format!("negative position {p}") });
        }
        Ok(())
    }

    /// Run ubatch `u0..u1` of the batch; rows listed in `out_rows/out_dst[..n_out]` get logits in `act.logits`.
    fn run_ubatch(&mut self, tokens: &[u32], pos: &[i32], seq: &[i32], n_out: usize) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let n = tokens.len();
        let slot = self.kv.cells.find_slot(n).ok_or_else(|| Error::Invalid {
            what: format!("KV cache full: no {n} free cells of n_ctx {}; raise --ctx-size or remove sequences", self.kv.cells.n_ctx()),
        })?;
        let cells = self.act.cells_mut();
        for i in 0..n {
            self.kv.cells.occupy(slot + i, pos[i], seq[i] as usize);
            cells[i] = slot + i;
        }
        let ub = Ubatch { tokens, pos, seq, out: &self.out_rows[..n_out] };
        match (&self.model.net, &mut self.act) {
            (Net::Llama(m), Acts::Llama(a)) => m.forward(&self.pool, a, &mut self.kv, &self.rope, &ub),
            (Net::Deepseek2(m), Acts::Deepseek2(a)) => m.forward(&self.pool, a, &mut self.kv, &self.rope, &ub),
            _ => unreachable!("activations are created for the model's architecture"),
        }
    }

    /// Evaluate a batch; `out_rows` (strictly increasing indices into the batch) select the logits rows
    /// returned, `out_rows.len() × n_vocab` floats in that order.
    pub fn decode(&mut self, tokens: &[u32], pos: &[i32], seq: &[i32], out_rows: &[i32]) -> Result<&[f32]> {
        self.check_batch(tokens, pos, seq)?;
        let n = tokens.len();
        if out_rows.len() > self.params.n_outputs {
            return Err(Error::Invalid {
                what: format!("{} output rows requested; the context holds {} (n_outputs)", out_rows.len(), self.params.n_outputs),
            });
        }
        if out_rows.windows(2).any(|w| w[0] >= w[1]) || out_rows.iter().any(|&r| r < 0 || r as usize >= n) {
            return Err(Error::Invalid { what: format!("out_rows must be strictly increasing indices in 0..{n}") });
        }
        let t0 = Instant::now();
        let nv = self.n_vocab();
        let nu = self.params.n_ubatch;
        let mut next = 0;
        self.last_n_ubatch = 0;
        for u0 in (0..n).step_by(nu) {
            let u1 = (u0 + nu).min(n);
            let mut n_out = 0;
            while next < out_rows.len() && (out_rows[next] as usize) < u1 {
                self.out_rows[n_out] = out_rows[next] as usize - u0;
                self.out_dst[n_out] = next;
                n_out += 1;
                next += 1;
            }
            self.run_ubatch(&tokens[u0..u1], &pos[u0..u1], &seq[u0..u1], n_out)?;
            for j in 0..n_out {
                let d = self.out_dst[j];
                self.logits[d * nv..(d + 1) * nv].copy_from_slice(&self.act.logits()[j * nv..(j + 1) * nv]);
            }
            self.last_n_ubatch += 1;
        }
        self.last_compute_us = t0.elapsed().as_micros() as u64;
        Ok(&self.logits[..out_rows.len() * nv])
    }

    /// Per-position log p(targets[i] | tokens[..=i]) into `out` (same length as the batch); positions with a
    /// negative target get NaN and skip the output head.
    pub fn score(&mut self, tokens: &[u32], pos: &[i32], seq: &[i32], targets: &[i32], out: &mut [f64]) -> Result<()> {
        self.check_batch(tokens, pos, seq)?;
        let n = tokens.len();
        if targets.len() != n || out.len() != n {
            return Err(Error::Invalid { what: format!("score: {} targets and {} outputs for {n} tokens", targets.len(), out.len()) });
        }
        let nv = self.n_vocab();
        if let Some(t) = targets.iter().find(|&&t| t >= nv as i32) {
            return Err(Error::Invalid { what: format!("target token {t} out of range (n_vocab {nv})") });
        }
        let t0 = Instant::now();
        let nu = self.params.n_ubatch;
        self.last_n_ubatch = 0;
        for u0 in (0..n).step_by(nu) {
            let u1 = (u0 + nu).min(n);
            let mut n_out = 0;
            for i in u0..u1 {
                if targets[i] >= 0 {
                    self.out_rows[n_out] = i - u0;
                    n_out += 1;
                }
            }
            self.run_ubatch(&tokens[u0..u1], &pos[u0..u1], &seq[u0..u1], n_out)?;
            out[u0..u1].fill(f64::NAN);
            let (logits, rows) = (self.act.logits(), &self.out_rows);
            let dst = SyncPtr::new(&mut out[u0..u1]);
            self.pool.run(n_out, |j| {
                let r = rows[j];
                // SAFETY: each task writes its own element `r` of this ubatch's outputs.
                let o = unsafe { dst.slice(r, 1) };
                o[0] = ops::log_softmax_at(&logits[j * nv..(j + 1) * nv], targets[u0 + r] as usize);
            });
            self.last_n_ubatch += 1;
        }
        self.last_compute_us = t0.elapsed().as_micros() as u64;
        Ok(())
    }
}
