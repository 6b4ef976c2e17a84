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
use crate::kv::state::{Ident, RopeSlice};
pub use crate::kv::FlashAttn;
use crate::kv::KvCache;
use crate::model::blocks::mla::MlaScratch;
use crate::model::blocks::moe::MoeParams;
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
    /// Threads for one-token ubatches (generation; `-t`).
    pub threads: usize,
    /// Threads for ubatches of more than one token (prompt processing, perplexity; `-tb`); 0 = `threads`.
    /// As the reference (`n_tokens == 1 ? n_threads : n_threads_batch`).
    pub threads_batch: usize,
    pub type_k: QType,
    pub type_v: QType,
    /// `-fa on|off|auto` (auto = on on the CPU, as the reference). Off stores V transposed, which needs an
    /// f16/bf16 V cache.
    pub flash_attn: FlashAttn,
    /// `-fmoe` (default) / `-no-fmoe`: fused MoE expert FFN, or the reference's unfused op sequence (moe.rs).
    pub fused_moe: bool,
    /// `-ser Kmin,t` smart expert reduction; `(-1, 0.0)` = off (spec/models.md §7.2).
    pub ser: (i32, f32),
    /// `-ger`: DeepSeek-V3 group-limited expert routing (off by default, as the reference for deepseek2).
    pub grouped_experts: bool,
    /// `-mla 0|1|2|3` (spec/models.md §4.1); forced to 0 for non-MLA architectures (as the reference). The
    /// library default is 0 (standard attention); the CLI passes the reference's default, 3.
    pub mla: u8,
    /// `-amb N` MiB (0 = no cap): bounds the attention intermediates of the absorbed non-FA path and the
    /// materialised prompt path (§4.5); results do not depend on it.
    pub amb: usize,
}

impl Default for ContextParams {
    fn default() -> Self {
        ContextParams {
            n_ctx: 4096,
            n_batch: 2048,
            n_ubatch: 512,
            n_outputs: 0,
            threads: 1,
            threads_batch: 0,
            type_k: QType::F16,
            type_v: QType::F16,
            flash_attn: FlashAttn::Auto,
            fused_moe: true,
            ser: (-1, 0.0),
            grouped_experts: false,
            mla: 0,
            amb: 256,
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
    /// `threads` workers (one-token ubatches), and `threads_batch` ones when that differs (larger ubatches).
    pool: ThreadPool,
    pool_batch: Option<ThreadPool>,
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
        if p.threads_batch == 0 {
            p.threads_batch = p.threads;
        }
        // per-thread scratch is indexed by the executing thread of either pool
        let nt = p.threads.max(p.threads_batch);
        let fa = p.flash_attn.enabled();
        if p.mla > 3 {
            return Err(Error::Invalid { what: format!("-mla {} (must be 0, 1, 2 or 3)", p.mla) });
        }
        // Cache types, the quantized-V-needs-FA rule and head-size/block checks are validated here.
        let (kv, act, rope, n_vocab) = match &model.net {
            Net::Llama(m) => {
                let hp = &m.hp;
                p.mla = 0; // not an MLA architecture: the reference forces 0 too
                let kv =
                    KvCache::new(hp.n_layer, p.n_ctx, hp.n_head, hp.n_head_kv, hp.head_dim_k, hp.head_dim_v, p.type_k, p.type_v, fa, nt)?;
                let act = Activations::new(hp, &m.w, p.n_ubatch, p.n_ctx, nt)?;
                (kv, Acts::Llama(act), hp.rope(m.w.rope_freqs.clone()), hp.n_vocab)
            }
            Net::Deepseek2(m) => {
                let hp = &m.hp;
                let mut act = deepseek2::Activations::new(hp, &m.w, p.n_ubatch)?;
                let kv = if p.mla == 0 {
                    // MLA mode 0: a standard K/V cache with H_kv = H (spec/models.md §3.5).
                    KvCache::new(hp.n_layer, p.n_ctx, hp.n_head, hp.n_head, hp.head_dim_k, hp.head_dim_v, p.type_k, p.type_v, fa, nt)?
                } else {
                    // Latent cache (kv/mla.rs); wk_b/wv_b are derived on the first MLA context (spec §4.3).
                    let g = deepseek2::Weights::mla_geom(hp);
                    let kv = KvCache::new_mla(hp.n_layer, p.n_ctx, g, p.mla, p.type_k, p.type_v, fa, p.amb, p.n_ubatch, nt)?;
                    let ab = m.w.absorbed(hp)?;
                    let kvb_act = m.w.layers.iter().map(|l| l.kv_b.act_row_bytes).max().unwrap_or(0);
                    act.mla = MlaScratch::new(&kv, g, p.n_ubatch, nt, ab, kvb_act)?;
                    kv
                };
                let moe = MoeParams { fused: p.fused_moe, grouped: p.grouped_experts, ser: p.ser };
                act.moe.configure(moe, &mut 0)?;
                (kv, Acts::Deepseek2(act), hp.rope(), hp.n_vocab)
            }
        };
        let total = &mut 0usize;
        let logits = alloc(p.n_outputs * n_vocab, "logits output buffer (n_outputs × n_vocab); lower --batch-size", total)?;
        let out_rows = alloc(p.n_ubatch, "output rows", total)?;
        let out_dst = alloc(p.n_ubatch, "output rows", total)?;
        let pool = ThreadPool::new(p.threads);
        let pool_batch = (p.threads_batch != p.threads).then(|| ThreadPool::new(p.threads_batch));
        // conversion scratch of the large-batch matmul path (cpu/ops.rs `matmul_q_batch`), per thread
        let max_ne0 = model.gguf.tensors.iter().map(|t| t.ne[0] as usize).max().unwrap_or(0);
        for pl in std::iter::once(&pool).chain(pool_batch.as_ref()) {
            crate::cpu::ops::reserve_batch_scratch(pl, crate::cpu::ops::batch_scratch_bytes(max_ne0));
        }
        Ok(Context {
            model,
            params: p,
            pool,
            pool_batch,
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

    /// The reference's context-creation cache line (`llama_init_from_model: KV self size = …`).
    pub fn kv_size_line(&self) -> String {
        self.kv.size_line()
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

    /// Arch id and a fingerprint of the weights (FNV-1a over tensor names, types and shapes) for state headers.
    fn ident(&self) -> Ident {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: &[u8]| b.iter().for_each(|&x| h = (h ^ x as u64).wrapping_mul(0x0100_0000_01b3));
        for t in &self.model.gguf.tensors {
            eat(t.name.as_bytes());
            eat(&t.qtype.id().to_le_bytes());
            t.ne.iter().for_each(|n| eat(&n.to_le_bytes()));
        }
        let arch = match self.model.net {
            Net::Llama(_) => 0,
            Net::Deepseek2(_) => 1,
        };
        Ident { arch, fingerprint: h }
    }

    fn seq_id(seq: i32) -> Result<usize> {
        if seq < 0 || seq as usize >= MAX_SEQ {
            return Err(Error::Invalid { what: format!("sequence id {seq} out of range 0..{MAX_SEQ}") });
        }
        Ok(seq as usize)
    }

    /// The cache rows and positions of sequence `seq` with a layout header (kv/state.rs).
    pub fn seq_state_save(&self, seq: i32) -> Result<Vec<u8>> {
        Ok(self.kv.save_seq(Self::seq_id(seq)?, self.ident()))
    }

    /// Replace sequence `seq` by a saved state; a state of another model or cache layout is refused, naming
    /// the difference. Returns the number of cells (tokens) restored.
    pub fn seq_state_load(&mut self, seq: i32, bytes: &[u8]) -> Result<usize> {
        let id = self.ident();
        self.kv.load_seq(Self::seq_id(seq)?, bytes, id)
    }

    /// Context shift: positions of `seq`'s cells in `[p0, p1)` (`p1 < 0`: to the end) move by `delta` and the
    /// cached RoPE part of K is re-rotated (llama: the first n_rot of each K head; deepseek2 mode 0: the last
    /// d_rope of each head; MLA: the first d_rope of the latent row — spec §6.4). Returns the cells shifted.
    pub fn kv_shift(&mut self, seq: i32, p0: i32, p1: i32, delta: i32) -> Result<usize> {
        let seq = Self::seq_id(seq)?;
        let at = match &self.model.net {
            Net::Llama(m) => RopeSlice { off: 0, n_rot: m.hp.n_rot },
            Net::Deepseek2(m) if self.kv.mla == 0 => RopeSlice { off: m.hp.n_nope, n_rot: m.hp.n_rot },
            Net::Deepseek2(m) => RopeSlice { off: 0, n_rot: m.hp.n_rot },
        };
        Ok(self.kv.shift_seq(seq, p0, p1, delta, &self.rope, at))
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
        let pool = if n == 1 { &self.pool } else { self.pool_batch.as_ref().unwrap_or(&self.pool) };
        match (&self.model.net, &mut self.act) {
            (Net::Llama(m), Acts::Llama(a)) => m.forward(pool, a, &mut self.kv, &self.rope, &ub),
            (Net::Deepseek2(m), Acts::Deepseek2(a)) => m.forward(pool, a, &mut self.kv, &self.rope, &ub),
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
            self.pool_batch.as_ref().unwrap_or(&self.pool).run(n_out, |j| {
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
