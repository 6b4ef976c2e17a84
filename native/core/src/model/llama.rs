//! The `llama` architecture (spec/models.md §2): hyperparameters, weights (each GGUF tensor name listed once,
//! shapes validated at load) and the CPU forward pass of one ubatch.
//!
//! Mirrors ik_llama.cpp @ 8337e4cd `src/llama-build-context.cpp` `build_llama` (dense, no MoE, no biases)
//! with flash-attention-layout KV (per-cell rows). Not here: MoE variants, attention/FFN biases, Granite
//! scales (all rejected at load with `Error::Unsupported`), CUDA.

use crate::cpu::ops::{self, QMatrix, RopeMode, RopeParams};
use crate::cpu::pool::ThreadPool;
use crate::error::{Error, Result};
use crate::gguf::GgufModel;
use crate::kv::KvCache;
use crate::model::blocks;
use crate::model::hparams::Keys;
use crate::model::weights::{matrix, vector};

// ---------------------------------------------------------------------------------------------------------
// 1. Hparams

#[derive(Clone, Debug)]
pub struct Hparams {
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Per layer (`feed_forward_length` may be an array).
    pub n_ff: Vec<usize>,
    pub n_rot: usize,
    pub head_dim_k: usize,
    pub head_dim_v: usize,
    pub eps: f32,
    pub rope_freq_base: f32,
    /// From the file (`1 / rope.scaling.factor`, 1 when the scaling type is none): the reference takes the
    /// llama rope scale from the model, not the command line (spec/models.md §2.3 quirk).
    pub rope_freq_scale: f32,
    pub rope_scaling: String,
    pub rope_attn_factor: f32,
    pub n_ctx_orig: u32,
}

impl Hparams {
    pub fn read(gguf: &GgufModel) -> Result<Hparams> {
        let k = Keys { gguf, arch: "llama" };
        let n_layer = k.u32("block_count")? as usize;
        let n_embd = k.u32("embedding_length")? as usize;
        let heads = k.per_layer_or("attention.head_count", n_layer, None)?;
        let n_head = heads[0] as usize;
        let heads_kv = k.per_layer_or("attention.head_count_kv", n_layer, Some(n_head as u32))?;
        let n_head_kv = heads_kv[0] as usize;
        if heads.iter().any(|&h| h as usize != n_head) || heads_kv.iter().any(|&h| h as usize != n_head_kv) {
            return Err(Error::Unsupported { what: "llama with per-layer head counts".into() });
        }
        if n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 || n_embd % n_head != 0 {
            return Err(Error::Invalid {
                what: format!("llama: n_head {n_head} / n_head_kv {n_head_kv} / n_embd {n_embd} are inconsistent"),
            });
        }
        let n_ff = k.per_layer_or("feed_forward_length", n_layer, None)?.into_iter().map(|x| x as usize).collect();
        let head_dim_k = k.u32_or("attention.key_length", (n_embd / n_head) as u32)? as usize;
        let head_dim_v = k.u32_or("attention.value_length", (n_embd / n_head) as u32)? as usize;
        let n_rot = k.u32_or("rope.dimension_count", head_dim_k as u32)? as usize;
        if n_rot != head_dim_k || n_rot % 2 != 0 {
            return Err(Error::Invalid { what: format!("llama: rope.dimension_count {n_rot} must equal the head dim {head_dim_k}") });
        }
        if k.u32_or("expert_count", 0)? > 0 {
            return Err(Error::Unsupported { what: "llama MoE (expert_count > 0)".into() });
        }
        let n_vocab = match k.u32_or("vocab_size", 0)? {
            0 => gguf.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).map_or(0, |a| a.len()),
            n => n as usize,
        };
        let n_ctx_train = k.u32_or("context_length", 4096)? as usize;
        let rope_scaling = k.str_or("rope.scaling.type", "linear")?;
        let mut factor = k.f32_or("rope.scaling.factor", 0.0)?;
        if factor == 0.0 {
            factor = k.f32_or("rope.scale_linear", 1.0)?;
        }
        let rope_freq_scale = if rope_scaling == "none" || factor == 0.0 { 1.0 } else { 1.0 / factor };
        Ok(Hparams {
            n_vocab,
            n_ctx_train,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            n_ff,
            n_rot,
            head_dim_k,
            head_dim_v,
            eps: k.f32("attention.layer_norm_rms_epsilon")?,
            rope_freq_base: k.f32_or("rope.freq_base", 10000.0)?,
            rope_freq_scale,
            rope_attn_factor: k.f32_or("rope.scaling.attn_factor", 1.0)?,
            n_ctx_orig: k.u32_or("rope.scaling.original_context_length", n_ctx_train as u32)?,
            rope_scaling,
        })
    }

    /// Rotation parameters (spec/models.md §1.3): YaRN ext_factor 1 only for the `yarn` scaling type.
    pub fn rope(&self, freq_factors: Option<Vec<f32>>) -> RopeParams {
        RopeParams {
            mode: RopeMode::Normal,
            n_rot: self.n_rot,
            freq_base: self.rope_freq_base,
            freq_scale: self.rope_freq_scale,
            ext_factor: if self.rope_scaling == "yarn" { 1.0 } else { 0.0 },
            attn_factor: self.rope_attn_factor,
            beta_fast: 32.0,
            beta_slow: 1.0,
            n_ctx_orig: self.n_ctx_orig,
            freq_factors,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// 2. Weights

pub struct Layer {
    pub attn_norm: Vec<f32>,
    pub wq: QMatrix,
    pub wk: QMatrix,
    pub wv: QMatrix,
    pub wo: QMatrix,
    pub ffn_norm: Vec<f32>,
    pub ffn_gate: QMatrix,
    pub ffn_up: QMatrix,
    pub ffn_down: QMatrix,
}

pub struct Weights {
    pub token_embd: QMatrix,
    pub output_norm: Vec<f32>,
    /// `output.weight`, or `token_embd.weight` again when the file ties them.
    pub output: QMatrix,
    pub rope_freqs: Option<Vec<f32>>,
    pub layers: Vec<Layer>,
}

impl Weights {
    pub fn load(g: &GgufModel, hp: &Hparams) -> Result<Weights> {
        let (d, nv) = (hp.n_embd, hp.n_vocab);
        let (qd, kd, vd) = (hp.n_head * hp.head_dim_k, hp.n_head_kv * hp.head_dim_k, hp.n_head_kv * hp.head_dim_v);
        for t in &g.tensors {
            if t.name.ends_with(".bias") || t.name.contains("_exps") || t.name.contains("attn_qkv") {
                return Err(Error::Unsupported {
                    what: format!("llama tensor {} (biases, MoE and fused QKV are not implemented)", t.name),
                });
            }
        }
        let token_embd = matrix(g, "token_embd.weight", d, nv)?; // [n_embd, n_vocab]
        let output = if g.tensor("output.weight").is_some() { matrix(g, "output.weight", d, nv)? } else { token_embd }; // [n_embd, n_vocab]
        let rope_freqs = if g.tensor("rope_freqs.weight").is_some() { Some(vector(g, "rope_freqs.weight", hp.n_rot / 2)?) } else { None }; // [n_rot/2]
        let mut layers = Vec::with_capacity(hp.n_layer);
        for il in 0..hp.n_layer {
            let b = |n: &str| format!("blk.{il}.{n}.weight");
            let ff = hp.n_ff[il];
            layers.push(Layer {
                attn_norm: vector(g, &b("attn_norm"), d)?,                       // [n_embd]
                wq: matrix(g, &b("attn_q"), d, qd)?,                             // [n_embd, n_head·d_k]
                wk: matrix(g, &b("attn_k"), d, kd)?,                             // [n_embd, n_head_kv·d_k]
                wv: matrix(g, &b("attn_v"), d, vd)?,                             // [n_embd, n_head_kv·d_v]
                wo: matrix(g, &b("attn_output"), hp.n_head * hp.head_dim_v, d)?, // [n_head·d_v, n_embd]
                ffn_norm: vector(g, &b("ffn_norm"), d)?,                         // [n_embd]
                ffn_gate: matrix(g, &b("ffn_gate"), d, ff)?,                     // [n_embd, n_ff]
                ffn_up: matrix(g, &b("ffn_up"), d, ff)?,                         // [n_embd, n_ff]
                ffn_down: matrix(g, &b("ffn_down"), ff, d)?,                     // [n_ff, n_embd]
            });
        }
        Ok(Weights { token_embd, output_norm: vector(g, "output_norm.weight", d)?, output, rope_freqs, layers })
    }

    fn all(&self) -> impl Iterator<Item = &QMatrix> {
        self.layers
            .iter()
            .flat_map(|l| [&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down])
            .chain(std::iter::once(&self.output))
    }
}

// ---------------------------------------------------------------------------------------------------------
// 3. Forward

/// Activation arena of one context (llama2.c `RunState`), sized from hparams × n_ubatch at creation.
pub struct Activations {
    pub x: Vec<f32>,       // [n_ubatch, n_embd] residual stream
    pub xn: Vec<f32>,      // [n_ubatch, n_embd] normed
    pub q: Vec<f32>,       // [n_ubatch, n_head·d_k]
    pub k: Vec<f32>,       // [n_ubatch, n_head_kv·d_k]
    pub v: Vec<f32>,       // [n_ubatch, n_head_kv·d_v]
    pub att: Vec<f32>,     // [n_ubatch, n_head·d_v]
    pub tmp: Vec<f32>,     // [n_ubatch, n_embd]
    pub gate: Vec<f32>,    // [n_ubatch, n_ff]
    pub up: Vec<f32>,      // [n_ubatch, n_ff]
    pub actq: Vec<u8>,     // [n_ubatch, max activation row bytes]
    pub scores: Vec<f32>,  // [n_threads, n_ctx]
    pub rope: Vec<f32>,    // [n_ubatch, n_rot]
    pub logits: Vec<f32>,  // [n_ubatch, n_vocab]
    pub cells: Vec<usize>, // [n_ubatch] KV cell of each token
}

/// Types whose all-zero bit pattern is a valid value (and their `Default`).
///
/// # Safety
/// Implement only for types for which every byte being zero is a valid, initialised value.
pub(crate) unsafe trait ZeroBits: Copy {}
macro_rules! zero_bits {
    ($($t:ty),*) => { $(unsafe impl ZeroBits for $t {})* };
}
zero_bits!(u8, i8, u16, i16, u32, i32, u64, i64, usize, isize, f32, f64);

/// `n` zeroed elements from `alloc_zeroed` (calloc: large blocks are fresh zero pages), or None when the
/// allocation fails. Such a buffer costs resident memory only where it is written — like the reference's lazily
/// touched compute buffer, unlike a `resize`, which touches every page (≈1 GB of RSS for the logits rows of
/// `-b 2048` on a 129k vocabulary).
pub(crate) fn zeroed_vec<T: ZeroBits>(n: usize) -> Option<Vec<T>> {
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(n).ok()?;
    // SAFETY: the layout has a non-zero size; the pointer, if non-null, is a fresh allocation of exactly `layout`
    // from the global allocator (what Vec<T> with capacity n owns), and all-zero bytes are valid `T`s (ZeroBits).
    unsafe {
        let p = std::alloc::alloc_zeroed(layout) as *mut T;
        (!p.is_null()).then(|| Vec::from_raw_parts(p, n, n))
    }
}

/// A zeroed arena buffer of `n` elements (`zeroed_vec`), counted into `total`, or a clear out-of-memory error.
pub(crate) fn alloc<T: ZeroBits>(n: usize, what: &str, total: &mut usize) -> Result<Vec<T>> {
    let bytes = n.saturating_mul(std::mem::size_of::<T>());
    let v = zeroed_vec(n).ok_or_else(|| Error::OutOfMemory {
        what: format!("{what}: {bytes} bytes requested ({total} already allocated); lower --ubatch-size or --ctx-size"),
    })?;
    *total += bytes;
    Ok(v)
}

impl Activations {
    pub fn new(hp: &Hparams, w: &Weights, n_ubatch: usize, n_ctx: usize, n_threads: usize) -> Result<Activations> {
        let nu = n_ubatch;
        let ff = hp.n_ff.iter().copied().max().unwrap_or(0);
        let act_rb = w.all().map(|m| m.act_row_bytes).max().unwrap_or(0);
        let t = &mut 0usize;
        Ok(Activations {
            x: alloc(nu * hp.n_embd, "activations x", t)?,
            xn: alloc(nu * hp.n_embd, "activations xn", t)?,
            q: alloc(nu * hp.n_head * hp.head_dim_k, "activations q", t)?,
            k: alloc(nu * hp.n_head_kv * hp.head_dim_k, "activations k", t)?,
            v: alloc(nu * hp.n_head_kv * hp.head_dim_v, "activations v", t)?,
            att: alloc(nu * hp.n_head * hp.head_dim_v, "activations att", t)?,
            tmp: alloc(nu * hp.n_embd, "activations tmp", t)?,
            gate: alloc(nu * ff, "activations ffn gate", t)?,
            up: alloc(nu * ff, "activations ffn up", t)?,
            actq: alloc(nu * act_rb, "quantized activations", t)?,
            scores: alloc(n_threads * n_ctx, "attention scores", t)?,
            rope: alloc(nu * hp.n_rot, "rope cache", t)?,
            logits: alloc(nu * hp.n_vocab, "logits", t)?,
            cells: alloc(nu, "cell index", t)?,
        })
    }
}

/// One ubatch: token ids, positions and sequence ids, plus which rows want logits.
pub struct Ubatch<'a> {
    pub tokens: &'a [u32],
    pub pos: &'a [i32],
    pub seq: &'a [i32],
    /// Row indices (into this ubatch) whose logits go to `Activations::logits`, in order.
    pub out: &'a [usize],
}

pub struct Llama {
    pub hp: Hparams,
    pub w: Weights,
}

impl Llama {
    pub fn load(g: &GgufModel) -> Result<Llama> {
        let hp = Hparams::read(g)?;
        let w = Weights::load(g, &hp)?;
        Ok(Llama { hp, w })
    }

    /// Run one ubatch; logits of `ub.out` rows land in `a.logits` (rows of n_vocab, in `ub.out` order).
    /// KV slots must already be reserved: `a.cells[i]` is the cell of token i.
    pub fn forward(&self, pool: &ThreadPool, a: &mut Activations, kv: &mut KvCache, rope: &RopeParams, ub: &Ubatch) -> Result<()> {
        let hp = &self.hp;
        let n = ub.tokens.len();
        let (d, dk, dv) = (hp.n_embd, hp.head_dim_k, hp.head_dim_v);
        let (nq, nkv) = (hp.n_head * dk, hp.n_head_kv * dk);
        for (i, &tok) in ub.tokens.iter().enumerate() {
            if tok as usize >= hp.n_vocab {
                return Err(Error::Invalid { what: format!("token id {tok} out of range (n_vocab {})", hp.n_vocab) });
            }
            ops::get_row(&self.w.token_embd, tok as usize, &mut a.x[i * d..(i + 1) * d]); // [n, n_embd]
            rope.fill_cache(ub.pos[i], &mut a.rope[i * hp.n_rot..(i + 1) * hp.n_rot]);
        }
        let kq_scale = 1.0 / (dk as f32).sqrt();
        for (il, l) in self.w.layers.iter().enumerate() {
            ops::rmsnorm(&a.x[..n * d], &l.attn_norm, hp.eps, &mut a.xn[..n * d]); // [n, n_embd]
            let xq = ops::quantize_act(pool, &l.wq, &a.xn, n, &mut a.actq);
            ops::matmul_q(pool, &l.wq, xq, n, &mut a.q); // [n, n_head·d_k]
                                                         // K and V share Q's encoded input when their activation type matches (decide once per op pair).
            if std::ptr::eq(l.wk.act, l.wq.act) && std::ptr::eq(l.wv.act, l.wq.act) {
                ops::matmul_q(pool, &l.wk, xq, n, &mut a.k); // [n, n_head_kv·d_k]
                ops::matmul_q(pool, &l.wv, xq, n, &mut a.v); // [n, n_head_kv·d_v]
            } else {
                ops::matmul(pool, &l.wk, &a.xn, n, &mut a.actq, &mut a.k);
                ops::matmul(pool, &l.wv, &a.xn, n, &mut a.actq, &mut a.v);
            }
            for i in 0..n {
                let rc = &a.rope[i * hp.n_rot..(i + 1) * hp.n_rot];
                ops::rope_row(&mut a.q[i * nq..(i + 1) * nq], dk, rope.mode, hp.n_rot, rc);
                ops::rope_row(&mut a.k[i * nkv..(i + 1) * nkv], dk, rope.mode, hp.n_rot, rc);
                kv.write(il, a.cells[i], &a.k[i * nkv..(i + 1) * nkv], &a.v[i * hp.n_head_kv * dv..(i + 1) * hp.n_head_kv * dv]);
            }
            blocks::attn::attention(pool, kv, il, &a.q[..n * nq], ub.pos, ub.seq, kq_scale, &mut a.att[..n * hp.n_head * dv]);
            ops::matmul(pool, &l.wo, &a.att, n, &mut a.actq, &mut a.tmp); // [n, n_embd]
            ops::add(&mut a.x[..n * d], &a.tmp[..n * d]);
            ops::rmsnorm(&a.x[..n * d], &l.ffn_norm, hp.eps, &mut a.xn[..n * d]);
            let ff = l.ffn_gate.ne1;
            let xq = ops::quantize_act(pool, &l.ffn_gate, &a.xn, n, &mut a.actq);
            ops::matmul_q(pool, &l.ffn_gate, xq, n, &mut a.gate); // [n, n_ff]
            if std::ptr::eq(l.ffn_up.act, l.ffn_gate.act) {
                ops::matmul_q(pool, &l.ffn_up, xq, n, &mut a.up); // [n, n_ff]
            } else {
                ops::matmul(pool, &l.ffn_up, &a.xn, n, &mut a.actq, &mut a.up);
            }
            ops::silu_mul(&mut a.gate[..n * ff], &a.up[..n * ff]);
            ops::matmul(pool, &l.ffn_down, &a.gate, n, &mut a.actq, &mut a.tmp); // [n, n_embd]
            ops::add(&mut a.x[..n * d], &a.tmp[..n * d]);
        }
        // Output head on the requested rows only (gathered into xn, then normed into tmp).
        let no = ub.out.len();
        for (j, &r) in ub.out.iter().enumerate() {
            let (src, dst) = (&a.x[r * d..(r + 1) * d], &mut a.tmp[j * d..(j + 1) * d]);
            dst.copy_from_slice(src);
        }
        ops::rmsnorm(&a.tmp[..no * d], &self.w.output_norm, hp.eps, &mut a.xn[..no * d]); // [no, n_embd]
        ops::matmul(pool, &self.w.output, &a.xn, no, &mut a.actq, &mut a.logits); // [no, n_vocab]
        Ok(())
    }
}
