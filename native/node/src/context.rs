//! `Context`: one inference session (KV cache, activations, logits buffer — all allocated in `create`).
//! `decode` and `score` run on libuv workers; sampling is fused into `decode` (one async call per generated
//! token, STYLE §1.4 rule 1); logits cross only on request, as copies (rule 3). One call in flight per context:
//! a second one rejects with IKL_E_BUSY (rule 5). `abort()` sets the core's cancel flag, checked between ubatches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use ikl_core::context::{Context as CoreContext, ContextParams, FlashAttn};
use ikl_core::quant::QType;
use ikl_core::sample::Sampler as CoreSampler;
use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::errors::{guarded, js_error, Failure};
use crate::model::Model;
use crate::sample::{plan_rows, DecodeRowsTask, RowSampling};
use crate::sampler::{lock as lock_sampler, Sampler};

pub(crate) struct Shared {
    ctx: Mutex<CoreContext>,
    busy: AtomicBool,
    cancel: Arc<AtomicBool>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, CoreContext> {
        self.ctx.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The in-flight claim of a context; releasing it (drop) makes the context available again.
pub(crate) struct Claim(pub(crate) Arc<Shared>);

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

pub(crate) fn busy() -> Failure {
    Failure { code: "IKL_E_BUSY", message: "context busy: another decode/score call is in flight on it; await it first".into() }
}

/// Claim the context on the JS thread, at call time, so two calls issued back to back are told apart.
fn claim(s: &Arc<Shared>) -> Option<Claim> {
    s.busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).ok()?;
    s.cancel.store(false, Ordering::Release);
    Some(Claim(s.clone()))
}

#[napi(object)]
pub struct ContextOptions {
    /// KV cells; 0 or absent = the model's training context.
    pub n_ctx: Option<u32>,
    pub n_batch: Option<u32>,
    pub n_ubatch: Option<u32>,
    pub threads: Option<u32>,
    /// Threads for batches of more than one token (prompt processing); absent = `threads`.
    pub threads_batch: Option<u32>,
    /// ggml type names, e.g. "f16".
    pub type_k: Option<String>,
    pub type_v: Option<String>,
    /// "on" | "off" | "auto".
    pub flash_attn: Option<String>,
    /// Fused MoE expert FFN (default true; false = the reference's unfused op sequence).
    pub fused_moe: Option<bool>,
    /// Smart expert reduction `[Kmin, t]`; absent or `[-1, 0]` = off.
    pub ser: Option<Vec<f64>>,
    /// DeepSeek-V3 group-limited expert routing (`-ger`; default false).
    pub grouped_experts: Option<bool>,
    /// `-mla 0..3` (absent = 0; forced to 0 for non-MLA models).
    pub mla: Option<u32>,
    /// `-amb` MiB (absent = 256, the reference's default; 0 = no cap).
    pub attention_max_batch: Option<u32>,
}

#[napi]
pub struct Context {
    shared: Arc<Shared>,
    n_ctx: u32,
    n_batch: u32,
    n_ubatch: u32,
    /// KV cache facts fixed at creation: MLA mode in force, bytes per token and in total, the reference's line.
    mla: u32,
    kv_bytes_per_token: f64,
    kv_total_bytes: f64,
    kv_size_line: String,
}

/// `-ctk`/`-ctv` name → type, validated by the KV cache's own table (unsupported names are named in the error).
fn kv_type(which: &str, name: Option<&str>) -> std::result::Result<QType, Failure> {
    let name = name.unwrap_or("f16");
    ikl_core::kv::cache_type_from_name(name).map_err(|e| Failure { code: e.code(), message: format!("{which} cache type '{name}': {e}") })
}

fn positive(name: &str, v: Option<u32>, def: usize) -> std::result::Result<usize, Failure> {
    match v {
        None => Ok(def),
        Some(0) => Err(Failure { code: "IKL_E_INVALID", message: format!("{name} must be at least 1") }),
        Some(n) => Ok(n as usize),
    }
}

fn params(o: &ContextOptions) -> std::result::Result<ContextParams, Failure> {
    let d = ContextParams::default();
    let flash_attn = match o.flash_attn.as_deref() {
        None => d.flash_attn,
        Some(v) => FlashAttn::from_name(v).map_err(Failure::from)?,
    };
    let threads = positive("threads", o.threads, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))?;
    Ok(ContextParams {
        n_ctx: o.n_ctx.unwrap_or(0) as usize,
        n_batch: positive("nBatch", o.n_batch, d.n_batch)?,
        n_ubatch: positive("nUbatch", o.n_ubatch, d.n_ubatch)?,
        n_outputs: 0,
        threads,
        threads_batch: positive("threadsBatch", o.threads_batch, threads)?,
        type_k: kv_type("K", o.type_k.as_deref())?,
        type_v: kv_type("V", o.type_v.as_deref())?,
        flash_attn,
        fused_moe: o.fused_moe.unwrap_or(d.fused_moe),
        ser: ser(o.ser.as_deref())?,
        grouped_experts: o.grouped_experts.unwrap_or(d.grouped_experts),
        mla: match o.mla {
            None => d.mla,
            Some(m @ 0..=3) => m as u8,
            Some(m) => return Err(Failure { code: "IKL_E_INVALID", message: format!("mla must be 0, 1, 2 or 3; got {m}") }),
        },
        amb: o.attention_max_batch.map_or(d.amb, |v| v as usize),
    })
}

/// `[Kmin, t]`: Kmin an integer ≥ -1, t finite and ≥ 0.
fn ser(v: Option<&[f64]>) -> std::result::Result<(i32, f32), Failure> {
    match v {
        None => Ok((-1, 0.0)),
        Some(&[k, t]) if k.fract() == 0.0 && (-1.0..=1e6).contains(&k) && t.is_finite() && t >= 0.0 => Ok((k as i32, t as f32)),
        Some(x) => Err(Failure { code: "IKL_E_INVALID", message: format!("ser must be [Kmin >= -1 (integer), t >= 0]; got {x:?}") }),
    }
}

pub struct CreateTask {
    model: Option<Arc<ikl_core::model::Model>>,
    params: std::result::Result<ContextParams, Failure>,
}

impl Task for CreateTask {
    type Output = std::result::Result<CoreContext, Failure>;
    type JsValue = Context;

    fn compute(&mut self) -> Result<Self::Output> {
        let p = match std::mem::replace(&mut self.params, Err(busy())) {
            Ok(p) => p,
            Err(f) => return Ok(Err(f)),
        };
        let Some(model) = self.model.take() else {
            return Ok(Err(Failure { code: "IKL_E_INVALID", message: "model is closed".into() }));
        };
        Ok(guarded(|| CoreContext::new(model, p)))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Context> {
        let ctx = out.map_err(|f| js_error(&env, f))?;
        let (n_ctx, n_batch, n_ubatch) = (ctx.params.n_ctx as u32, ctx.params.n_batch as u32, ctx.params.n_ubatch as u32);
        let cancel = ctx.cancel.clone();
        let (mla, kv_bytes_per_token, kv_total_bytes, kv_size_line) =
            (ctx.params.mla as u32, ctx.kv.bytes_per_token() as f64, ctx.kv.total_bytes() as f64, ctx.kv_size_line());
        let shared = Arc::new(Shared { ctx: Mutex::new(ctx), busy: AtomicBool::new(false), cancel });
        Ok(Context { shared, n_ctx, n_batch, n_ubatch, mla, kv_bytes_per_token, kv_total_bytes, kv_size_line })
    }
}

#[napi(object)]
pub struct DecodeBatch {
    pub tokens: Uint32Array,
    pub pos: Int32Array,
    pub seq: Int32Array,
    /// Strictly increasing batch indices whose logits are sampled / returned.
    pub out_rows: Int32Array,
    pub want_logits: Option<bool>,
}

#[napi(object)]
pub struct DecodeResult {
    /// One token per out-row (−1 where no sampler was given).
    pub sampled: Int32Array,
    /// outRows.length × nVocab floats, only when wantLogits.
    pub logits: Option<Float32Array>,
    /// Rust time of the forward passes (µs) and of sampling (µs).
    pub compute_us: f64,
    pub sample_us: f64,
    pub n_ubatch: u32,
}

pub struct DecodeOut {
    sampled: Vec<i32>,
    logits: Option<Vec<f32>>,
    compute_us: u64,
    sample_us: u64,
    n_ubatch: usize,
}

pub struct DecodeTask {
    claim: Option<Claim>,
    tokens: Vec<u32>,
    pos: Vec<i32>,
    seq: Vec<i32>,
    out_rows: Vec<i32>,
    sampler: Option<Arc<Mutex<CoreSampler>>>,
    want_logits: bool,
}

impl Task for DecodeTask {
    type Output = std::result::Result<DecodeOut, Failure>;
    type JsValue = DecodeResult;

    fn compute(&mut self) -> Result<Self::Output> {
        let Some(claim) = self.claim.take() else { return Ok(Err(busy())) };
        let out = guarded(|| {
            let mut ctx = claim.0.lock();
            let logits = ctx.decode(&self.tokens, &self.pos, &self.seq, &self.out_rows)?;
            let nv = logits.len() / self.out_rows.len().max(1);
            let t0 = Instant::now();
            let mut sampled = vec![-1i32; self.out_rows.len()];
            if let Some(s) = &self.sampler {
                let mut s = lock_sampler(s);
                for (j, out) in sampled.iter_mut().enumerate() {
                    let t = s.sample(&logits[j * nv..(j + 1) * nv]);
                    s.accept(t);
                    *out = t as i32;
                }
            }
            let sample_us = t0.elapsed().as_micros() as u64;
            let logits = self.want_logits.then(|| logits.to_vec());
            Ok(DecodeOut { sampled, logits, compute_us: ctx.last_compute_us, sample_us, n_ubatch: ctx.last_n_ubatch })
        });
        drop(claim);
        Ok(out)
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<DecodeResult> {
        let o = out.map_err(|f| js_error(&env, f))?;
        Ok(DecodeResult {
            sampled: Int32Array::new(o.sampled),
            logits: o.logits.map(Float32Array::new),
            compute_us: o.compute_us as f64,
            sample_us: o.sample_us as f64,
            n_ubatch: o.n_ubatch as u32,
        })
    }
}

#[napi(object)]
pub struct ScoreBatch {
    pub tokens: Uint32Array,
    pub pos: Int32Array,
    pub seq: Int32Array,
}

pub struct ScoreTask {
    claim: Option<Claim>,
    tokens: Vec<u32>,
    pos: Vec<i32>,
    seq: Vec<i32>,
    targets: Vec<i32>,
}

impl Task for ScoreTask {
    type Output = std::result::Result<Vec<f64>, Failure>;
    type JsValue = Float64Array;

    fn compute(&mut self) -> Result<Self::Output> {
        let Some(claim) = self.claim.take() else { return Ok(Err(busy())) };
        let out = guarded(|| {
            let mut ctx = claim.0.lock();
            let mut out = vec![0f64; self.tokens.len()];
            ctx.score(&self.tokens, &self.pos, &self.seq, &self.targets, &mut out)?;
            Ok(out)
        });
        drop(claim);
        Ok(out)
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Float64Array> {
        out.map(Float64Array::new).map_err(|f| js_error(&env, f))
    }
}

#[napi]
impl Context {
    /// Allocate a context (KV cache, activations, logits) on a worker thread. OOM → IKL_E_OOM naming the buffer.
    #[napi(ts_return_type = "Promise<Context>")]
    pub fn create(model: &Model, opts: Option<ContextOptions>) -> AsyncTask<CreateTask> {
        let model_arc = model.loaded().ok().map(|l| l.model.clone());
        let params = match &opts {
            Some(o) => params(o),
            None => Ok(ContextParams::default()),
        };
        AsyncTask::new(CreateTask { model: model_arc, params })
    }

    #[napi(getter)]
    pub fn n_ctx(&self) -> u32 {
        self.n_ctx
    }

    #[napi(getter)]
    pub fn n_batch(&self) -> u32 {
        self.n_batch
    }

    #[napi(getter)]
    pub fn n_ubatch(&self) -> u32 {
        self.n_ubatch
    }

    /// MLA mode in force (0 for non-MLA models, whatever was asked).
    #[napi(getter)]
    pub fn mla(&self) -> u32 {
        self.mla
    }

    /// KV cache bytes per token (all layers) and in total (spec/models.md §4.7).
    #[napi(getter)]
    pub fn kv_bytes_per_token(&self) -> f64 {
        self.kv_bytes_per_token
    }

    #[napi(getter)]
    pub fn kv_total_bytes(&self) -> f64 {
        self.kv_total_bytes
    }

    /// The reference's creation line, `llama_init_from_model: KV self size  = … MiB, …`.
    #[napi(getter)]
    pub fn kv_size_line(&self) -> String {
        self.kv_size_line.clone()
    }

    /// Evaluate one batch; with a sampler, sample (and accept) one token per out-row in Rust.
    #[napi(ts_return_type = "Promise<DecodeResult>")]
    pub fn decode(&self, batch: DecodeBatch, sampler: Option<&Sampler>) -> AsyncTask<DecodeTask> {
        AsyncTask::new(DecodeTask {
            claim: claim(&self.shared),
            tokens: batch.tokens.to_vec(),
            pos: batch.pos.to_vec(),
            seq: batch.seq.to_vec(),
            out_rows: batch.out_rows.to_vec(),
            sampler: sampler.map(|s| s.inner.clone()),
            want_logits: batch.want_logits.unwrap_or(false),
        })
    }

    /// Evaluate one batch and sample each out-row with its own sampler (null: no token), in Rust (sample.rs):
    /// the server's continuous-batching step. `samplers` and `rows` have one entry per out-row.
    #[napi(ts_return_type = "Promise<DecodeRowsResult>")]
    pub fn decode_rows(&self, batch: DecodeBatch, samplers: Vec<Option<&Sampler>>, rows: Vec<RowSampling>) -> AsyncTask<DecodeRowsTask> {
        AsyncTask::new(DecodeRowsTask {
            plans: plan_rows(&samplers, &rows, batch.out_rows.len()),
            claim: claim(&self.shared),
            tokens: batch.tokens.to_vec(),
            pos: batch.pos.to_vec(),
            seq: batch.seq.to_vec(),
            out_rows: batch.out_rows.to_vec(),
        })
    }

    /// Per-position log p(targets[i] | tokens[..=i]) (NaN where targets[i] < 0); logits never cross.
    #[napi(ts_return_type = "Promise<Float64Array>")]
    pub fn score(&self, batch: ScoreBatch, targets: Int32Array) -> AsyncTask<ScoreTask> {
        AsyncTask::new(ScoreTask {
            claim: claim(&self.shared),
            tokens: batch.tokens.to_vec(),
            pos: batch.pos.to_vec(),
            seq: batch.seq.to_vec(),
            targets: targets.to_vec(),
        })
    }

    /// Remove cells of `seq` (all if < 0) with p0 ≤ pos < p1 (p1 < 0: to the end). IKL_E_BUSY while a call runs.
    #[napi]
    pub fn kv_remove(&self, env: Env, seq: i32, p0: i32, p1: i32) -> Result<bool> {
        let c = claim(&self.shared).ok_or_else(|| js_error(&env, busy()))?;
        let r = guarded(|| {
            c.0.lock().kv_remove(seq, p0, p1);
            Ok(true)
        });
        drop(c);
        r.map_err(|f| js_error(&env, f))
    }

    #[napi]
    pub fn kv_clear(&self, env: Env) -> Result<()> {
        let c = claim(&self.shared).ok_or_else(|| js_error(&env, busy()))?;
        let r = guarded(|| {
            c.0.lock().kv_clear();
            Ok(())
        });
        drop(c);
        r.map_err(|f| js_error(&env, f))
    }

    /// Save sequence `seq`: its cache rows and positions behind a layout header (ikl_core kv/state.rs).
    /// IKL_E_BUSY while a call runs.
    #[napi]
    pub fn seq_state_save(&self, env: Env, seq: i32) -> Result<Buffer> {
        let c = claim(&self.shared).ok_or_else(|| js_error(&env, busy()))?;
        let r = guarded(|| c.0.lock().seq_state_save(seq));
        drop(c);
        r.map(Buffer::from).map_err(|f| js_error(&env, f))
    }

    /// Replace sequence `seq` by a saved state; returns the cells restored. Another model, MLA mode, cache type
    /// or layout → IKL_E_INVALID naming the difference (the context is unchanged).
    #[napi]
    pub fn seq_state_load(&self, env: Env, seq: i32, state: Buffer) -> Result<u32> {
        let c = claim(&self.shared).ok_or_else(|| js_error(&env, busy()))?;
        let r = guarded(|| c.0.lock().seq_state_load(seq, &state));
        drop(c);
        r.map(|n| n as u32).map_err(|f| js_error(&env, f))
    }

    /// Context shift: positions of `seq` in [p0, p1) (p1 < 0: to the end) move by `delta`, the cached RoPE part
    /// of K is re-rotated. Returns the cells shifted.
    #[napi]
    pub fn kv_shift(&self, env: Env, seq: i32, p0: i32, p1: i32, delta: i32) -> Result<u32> {
        let c = claim(&self.shared).ok_or_else(|| js_error(&env, busy()))?;
        let r = guarded(|| c.0.lock().kv_shift(seq, p0, p1, delta));
        drop(c);
        r.map(|n| n as u32).map_err(|f| js_error(&env, f))
    }

    /// Cancel the call in flight (if any): it rejects with IKL_E_CANCELLED before its next ubatch.
    #[napi]
    pub fn abort(&self) {
        self.shared.cancel.store(true, Ordering::Release);
    }
}
