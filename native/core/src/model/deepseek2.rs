//! The `deepseek2` architecture (spec/models.md §3, spec/gguf.md §15): hyperparameters (both on-disk MLA
//! conventions), weights (each GGUF tensor name listed once, shapes validated at load) and the CPU forward pass
//! of one ubatch: MLA mode 0 (standard attention over a K/V cache with `H_kv = H`) here, modes 1–3 (absorbed
//! attention over the latent cache) in blocks/mla.rs.
//!
//! Mirrors ik_llama.cpp @ 8337e4cd `build_deepseek2`. Deliberate differences: q-LoRA is chosen by
//! `q_lora_rank` and the presence of `attn_q_a` (the reference uses the layer count); a file with only the
//! split `attn_k_b`/`attn_v_b` form gets `attn_kv_b` rebuilt at load (the reference forces mla 1 instead).
//! Not here: CUDA. Group-limited routing (not applied by the reference) is opt-in, `-ger` (blocks/moe.rs).

use crate::cpu::ops::{self, QMatrix, RopeMode, RopeParams};
use crate::cpu::pool::ThreadPool;
use crate::error::{Error, Result};
use crate::gguf::{GgufModel, Value};
use crate::kv::KvCache;
use crate::model::blocks::moe::{Gating, Moe, MoeScratch};
use crate::model::blocks::{self, mla, moe};
use crate::model::hparams::Keys;
use crate::model::llama::{alloc, Ubatch};
use crate::model::weights::{bind, check_shape, find, matrix, vector};

// ---------------------------------------------------------------------------------------------------------
// 1. Hparams

#[derive(Clone, Debug)]
pub struct Hparams {
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// Q/K head dim `d_k = nope + rope` (192 for V3) and V head dim (128).
    pub head_dim_k: usize,
    pub head_dim_v: usize,
    /// `rope.dimension_count` (= d_rope) and `d_k − d_rope`.
    pub n_rot: usize,
    pub n_nope: usize,
    /// 0: no Q compression ("lite": `attn_q`).
    pub q_lora_rank: usize,
    pub kv_lora_rank: usize,
    pub n_dense: usize,
    /// Dense FFN size per layer (`feed_forward_length`, scalar or array).
    pub n_ff: Vec<usize>,
    pub n_ff_exp: usize,
    pub n_expert: usize,
    pub n_expert_used: usize,
    pub n_expert_shared: usize,
    /// `expert_group_count` / `expert_group_used_count` (V3: 8 / 4; 1 / 1 when absent). Used only with `-ger`.
    pub n_expert_groups: usize,
    pub n_group_used: usize,
    pub expert_weights_scale: f32,
    pub expert_weights_norm: bool,
    pub gating: Gating,
    pub eps: f32,
    pub rope_freq_base: f32,
    pub rope_freq_scale: f32,
    pub rope_scaling: String,
    pub rope_attn_factor: f32,
    pub yarn_log_mul: f32,
    pub n_ctx_orig: u32,
}

fn invalid(what: String) -> Error {
    Error::Invalid { what: format!("deepseek2: {what}") }
}

impl Hparams {
    pub fn read(gguf: &GgufModel) -> Result<Hparams> {
        let k = Keys { gguf, arch: "deepseek2" };
        let n_layer = k.u32("block_count")? as usize;
        let n_embd = k.u32("embedding_length")? as usize;
        let n_head = k.u32("attention.head_count")? as usize;
        let n_head_kv = k.u32_or("attention.head_count_kv", n_head as u32)? as usize;
        let kv_lora_rank = k.u32("attention.kv_lora_rank")? as usize;
        let n_rot = k.u32_or("rope.dimension_count", 64)? as usize;
        let mut head_dim_k = k.u32_or("attention.key_length", (n_embd / n_head.max(1)) as u32)? as usize;
        let mut head_dim_v = k.u32_or("attention.value_length", (n_embd / n_head.max(1)) as u32)? as usize;
        if n_head == 0 {
            return Err(invalid("attention.head_count is 0".into()));
        }
        if n_head_kv == 1 && n_head > 1 {
            // Convention B (mainline MLA-as-MQA, spec/gguf.md §15.1): the file's key/value lengths are the latent
            // row sizes; the real head dims are the *_mla keys.
            if head_dim_k != kv_lora_rank + n_rot || head_dim_v != kv_lora_rank {
                return Err(invalid(format!(
                    "head_count_kv 1 with key_length {head_dim_k} / value_length {head_dim_v}: expected {} / {kv_lora_rank} (kv_lora_rank + rope dims / kv_lora_rank)",
                    kv_lora_rank + n_rot
                )));
            }
            head_dim_k = k.u32("attention.key_length_mla")? as usize;
            head_dim_v = k.u32("attention.value_length_mla")? as usize;
        } else if n_head_kv != n_head {
            return Err(invalid(format!("head_count_kv {n_head_kv} must equal head_count {n_head} (or be 1)")));
        }
        if n_rot == 0 || n_rot % 2 != 0 || n_rot >= head_dim_k {
            return Err(invalid(format!("rope.dimension_count {n_rot} must be even and below key_length {head_dim_k}")));
        }
        // q-LoRA: decided by the key and the tensors, not by the layer count (spec §3.1).
        let q_lora_key = k.u32_or("attention.q_lora_rank", 0)? as usize;
        let has_q_a = gguf.tensor("blk.0.attn_q_a.weight").is_some();
        let q_lora_rank = match (q_lora_key, has_q_a) {
            (0, true) => return Err(invalid("attn_q_a present but attention.q_lora_rank is missing or 0".into())),
            (r, true) => r,
            (_, false) => 0,
        };
        let n_vocab = match k.u32_or("vocab_size", 0)? {
            0 => gguf.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).map_or(0, |a| a.len()),
            n => n as usize,
        };
        let n_ctx_train = k.u32_or("context_length", 4096)? as usize;
        let n_dense = k.u32("leading_dense_block_count")? as usize;
        let n_expert = k.u32("expert_count")? as usize;
        let n_expert_used = k.u32("expert_used_count")? as usize;
        if n_expert == 0 || n_expert_used == 0 || n_expert_used > n_expert {
            return Err(invalid(format!("expert_count {n_expert} / expert_used_count {n_expert_used}")));
        }
        let gating = match k.u32_or("expert_gating_func", if n_layer == 47 || n_layer == 48 { 2 } else { 1 })? {
            0 | 1 => Gating::Softmax,
            2 => Gating::Sigmoid,
            g => return Err(Error::Unsupported { what: format!("deepseek2 expert_gating_func {g}") }),
        };
        let expert_weights_norm = match gguf.get("deepseek2.expert_weights_norm") {
            None => false,
            Some(Value::Bool(b)) => *b != 0,
            Some(v) => return Err(invalid(format!("expert_weights_norm: expected a bool, found {}", v.value_type().name()))),
        };
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
            head_dim_k,
            head_dim_v,
            n_rot,
            n_nope: head_dim_k - n_rot,
            q_lora_rank,
            kv_lora_rank,
            n_dense: n_dense.min(n_layer),
            n_ff: k.per_layer_or("feed_forward_length", n_layer, None)?.into_iter().map(|x| x as usize).collect(),
            n_ff_exp: k.u32("expert_feed_forward_length")? as usize,
            n_expert,
            n_expert_used,
            n_expert_shared: k.u32("expert_shared_count")? as usize,
            n_expert_groups: k.u32_or("expert_group_count", 1)?.max(1) as usize,
            n_group_used: k.u32_or("expert_group_used_count", 1)?.max(1) as usize,
            expert_weights_scale: k.f32("expert_weights_scale")?,
            expert_weights_norm,
            gating,
            eps: k.f32("attention.layer_norm_rms_epsilon")?,
            rope_freq_base: k.f32_or("rope.freq_base", 10000.0)?,
            rope_freq_scale,
            rope_attn_factor: k.f32_or("rope.scaling.attn_factor", 1.0)?,
            yarn_log_mul: k.f32_or("rope.scaling.yarn_log_multiplier", 0.0)?,
            n_ctx_orig: k.u32_or("rope.scaling.original_context_length", n_ctx_train as u32)?,
            rope_scaling,
        })
    }

    /// Routing shape of the MoE layers.
    pub fn routing(&self) -> moe::Routing {
        moe::Routing {
            n_expert: self.n_expert,
            n_used: self.n_expert_used,
            n_group: self.n_expert_groups,
            n_group_used: self.n_group_used,
            n_ff_exp: self.n_ff_exp,
        }
    }

    /// RoPE of q_pe / k_pe (spec §3.4): NORM pairing over the d_rope dims, with the attention factor
    /// `1 / (1 + 0.1·ln(1/s))` that cancels YaRN's internal magnitude correction.
    pub fn rope(&self) -> RopeParams {
        RopeParams {
            mode: RopeMode::Normal,
            n_rot: self.n_rot,
            freq_base: self.rope_freq_base,
            freq_scale: self.rope_freq_scale,
            ext_factor: if self.rope_scaling == "yarn" { 1.0 } else { 0.0 },
            attn_factor: 1.0 / (1.0 + 0.1 * (1.0 / self.rope_freq_scale).ln()),
            beta_fast: 32.0,
            beta_slow: 1.0,
            n_ctx_orig: self.n_ctx_orig,
            freq_factors: None,
        }
    }

    /// `mscale² / sqrt(d_k)` with `mscale = attn_factor · (1 + yarn_log_mul · ln(1/s))` (spec §3.4).
    pub fn kq_scale(&self) -> f32 {
        let mscale = self.rope_attn_factor * (1.0 + self.yarn_log_mul * (1.0 / self.rope_freq_scale).ln());
        mscale * mscale / (self.head_dim_k as f32).sqrt()
    }
}

// ---------------------------------------------------------------------------------------------------------
// 2. Weights

pub enum QProj {
    /// Lite: `attn_q` `[n_embd, H·d_k]`.
    Full(QMatrix),
    /// `attn_q_a` `[n_embd, r_q]`, `attn_q_a_norm` `[r_q]`, `attn_q_b` `[r_q, H·d_k]`.
    Lora { a: QMatrix, norm: Vec<f32>, b: QMatrix },
}

// One value per layer: the size difference between the variants costs nothing worth another Box.
#[allow(clippy::large_enum_variant)]
pub enum Ffn {
    Dense { gate: QMatrix, up: QMatrix, down: QMatrix },
    Moe(Box<Moe>),
}

pub struct Layer {
    pub attn_norm: Vec<f32>,
    pub q: QProj,
    /// `attn_kv_a_mqa` `[n_embd, r_kv + d_rope]`: latent rows first, then the shared k_pe rows.
    pub kv_a: QMatrix,
    pub kv_a_norm: Vec<f32>,
    /// `attn_kv_b` `[r_kv, H·(nope + d_v)]` (from the file, or rebuilt from the split form).
    pub kv_b: QMatrix,
    /// The file's `attn_k_b` `[nope, H·r_kv]` / `attn_v_b` `[r_kv, H·d_v]` (2-D or 3-D), when present.
    pub k_b: Option<QMatrix>,
    pub v_b: Option<QMatrix>,
    pub wo: QMatrix,
    pub ffn_norm: Vec<f32>,
    pub ffn: Ffn,
}

pub struct Weights {
    pub token_embd: QMatrix,
    pub output_norm: Vec<f32>,
    pub output: QMatrix,
    pub layers: Vec<Layer>,
    /// Tensors derived at load (rebuilt `attn_kv_b`); QMatrix values above point into these heap buffers.
    owned: Vec<Vec<u8>>,
    /// `wk_b`/`wv_b` of the absorbed MLA modes, built on first use (`absorbed`).
    absorbed: std::sync::OnceLock<std::result::Result<mla::Absorbed, Error>>,
}

/// A 3-D expert tensor `[ne0, ne1 · parts, n_expert]` split into `parts` row ranges of `ne1` rows per expert
/// (`parts = 2` for the fused `ffn_gate_up_exps`: gate rows then up rows).
fn experts(g: &GgufModel, name: &str, ne0: usize, ne1: usize, parts: usize, n_expert: usize) -> Result<Vec<Vec<QMatrix>>> {
    let t = find(g, name)?;
    check_shape(t, &[ne0 as u64, (ne1 * parts) as u64, n_expert as u64])?;
    let rb = t.qtype.row_size(ne0 as u64).ok_or_else(|| Error::Unsupported { what: format!("tensor {name}: row size") })? as usize;
    let data = g.tensor_data(t);
    (0..parts).map(|p| (0..n_expert).map(|e| bind(name, &data[((e * parts + p) * ne1) * rb..], t.qtype, ne0, ne1)).collect()).collect()
}

impl Weights {
    pub fn load(g: &GgufModel, hp: &Hparams) -> Result<Weights> {
        let (d, nv, h) = (hp.n_embd, hp.n_vocab, hp.n_head);
        let (dk, dv, nope, r, rope) = (hp.head_dim_k, hp.head_dim_v, hp.n_nope, hp.kv_lora_rank, hp.n_rot);
        let geom = mla::Geom { n_head: h, nope, d_v: dv, r_kv: r };
        let mut owned: Vec<Vec<u8>> = Vec::new();
        let token_embd = matrix(g, "token_embd.weight", d, nv)?; // [n_embd, n_vocab]
        let output = matrix(g, "output.weight", d, nv)?; // [n_embd, n_vocab] (no tying for deepseek2)
        let mut layers = Vec::with_capacity(hp.n_layer);
        for il in 0..hp.n_layer {
            let b = |n: &str| format!("blk.{il}.{n}.weight");
            let q = if hp.q_lora_rank > 0 {
                let rq = hp.q_lora_rank;
                QProj::Lora {
                    a: matrix(g, &b("attn_q_a"), d, rq)?,      // [n_embd, r_q]
                    norm: vector(g, &b("attn_q_a_norm"), rq)?, // [r_q]
                    b: matrix(g, &b("attn_q_b"), rq, h * dk)?, // [r_q, H·d_k]
                }
            } else {
                QProj::Full(matrix(g, &b("attn_q"), d, h * dk)?) // [n_embd, H·d_k]
            };
            let split = |name: &str, ne0: usize, ne1: usize, ne2: usize| -> Result<Option<QMatrix>> {
                let Some(t) = g.tensor(name) else { return Ok(None) };
                if check_shape(t, &[ne0 as u64, (ne1 * ne2) as u64]).is_err() {
                    check_shape(t, &[ne0 as u64, ne1 as u64, ne2 as u64])?;
                }
                Ok(Some(bind(name, g.tensor_data(t), t.qtype, ne0, ne1 * ne2)?))
            };
            let k_b = split(&b("attn_k_b"), nope, r, h)?; // [nope, H·r_kv] (or [nope, r_kv, H])
            let v_b = split(&b("attn_v_b"), r, dv, h)?; // [r_kv, H·d_v] (or [r_kv, d_v, H])
            let kv_b = if g.tensor(&b("attn_kv_b")).is_some() {
                matrix(g, &b("attn_kv_b"), r, h * (nope + dv))? // [r_kv, H·(nope + d_v)]
            } else {
                // Split form: attn_k_b [nope, H·r_kv] (or 3-D [nope, r_kv, H]), attn_v_b [r_kv, H·d_v] (or [r_kv, d_v, H]).
                let (kn, vn) = (b("attn_k_b"), b("attn_v_b"));
                let (kt, vt) = (find(g, &kn)?, find(g, &vn)?);
                if check_shape(kt, &[nope as u64, (h * r) as u64]).is_err() {
                    check_shape(kt, &[nope as u64, r as u64, h as u64])?;
                }
                if check_shape(vt, &[r as u64, (h * dv) as u64]).is_err() {
                    check_shape(vt, &[r as u64, dv as u64, h as u64])?;
                }
                let (bytes, t) = mla::kv_b_from_split(geom, kt.qtype, g.tensor_data(kt), vt.qtype, g.tensor_data(vt))?;
                owned.push(bytes);
                bind(&b("attn_kv_b (rebuilt)"), owned.last().unwrap(), t, r, h * (nope + dv))?
            };
            let ffn = if il < hp.n_dense {
                let ff = hp.n_ff[il];
                Ffn::Dense {
                    gate: matrix(g, &b("ffn_gate"), d, ff)?, // [n_embd, n_ff]
                    up: matrix(g, &b("ffn_up"), d, ff)?,     // [n_embd, n_ff]
                    down: matrix(g, &b("ffn_down"), ff, d)?, // [n_ff, n_embd]
                }
            } else {
                let (ne, fe, fs) = (hp.n_expert, hp.n_ff_exp, hp.n_ff_exp * hp.n_expert_shared);
                let bias = format!("blk.{il}.exp_probs_b.bias");
                let (gate, up) = if g.tensor(&b("ffn_gate_up_exps")).is_some() {
                    let mut p = experts(g, &b("ffn_gate_up_exps"), d, fe, 2, ne)?.into_iter(); // [n_embd, 2·n_ff_exp, E]
                    (p.next().unwrap(), p.next().unwrap())
                } else {
                    (
                        experts(g, &b("ffn_gate_exps"), d, fe, 1, ne)?.remove(0), // [n_embd, n_ff_exp, E]
                        experts(g, &b("ffn_up_exps"), d, fe, 1, ne)?.remove(0),   // [n_embd, n_ff_exp, E]
                    )
                };
                Ffn::Moe(Box::new(Moe {
                    gate_inp: matrix(g, &b("ffn_gate_inp"), d, ne)?, // [n_embd, E]
                    probs_b: if g.tensor(&bias).is_some() { Some(vector(g, &bias, ne)?) } else { None }, // [E]
                    gate,
                    up,
                    down: experts(g, &b("ffn_down_exps"), fe, d, 1, ne)?.remove(0), // [n_ff_exp, n_embd, E]
                    sh_gate: matrix(g, &b("ffn_gate_shexp"), d, fs)?,               // [n_embd, n_ff_exp·n_shared]
                    sh_up: matrix(g, &b("ffn_up_shexp"), d, fs)?,                   // [n_embd, n_ff_exp·n_shared]
                    sh_down: matrix(g, &b("ffn_down_shexp"), fs, d)?,               // [n_ff_exp·n_shared, n_embd]
                    routing: hp.routing(),
                    gating: hp.gating,
                    w_norm: hp.expert_weights_norm,
                    w_scale: hp.expert_weights_scale,
                }))
            };
            layers.push(Layer {
                attn_norm: vector(g, &b("attn_norm"), d)?, // [n_embd]
                q,
                kv_a: matrix(g, &b("attn_kv_a_mqa"), d, r + rope)?, // [n_embd, r_kv + d_rope]
                kv_a_norm: vector(g, &b("attn_kv_a_norm"), r)?,     // [r_kv]
                kv_b,
                k_b,
                v_b,
                wo: matrix(g, &b("attn_output"), h * dv, d)?, // [H·d_v, n_embd]
                ffn_norm: vector(g, &b("ffn_norm"), d)?,      // [n_embd]
                ffn,
            });
        }
        Ok(Weights {
            token_embd,
            output_norm: vector(g, "output_norm.weight", d)?,
            output,
            layers,
            owned,
            absorbed: std::sync::OnceLock::new(),
        })
    }

    /// The absorbed-mode matrices (`wk_b`, `wv_b`) of every layer, built once (spec §4.3).
    pub fn absorbed(&self, hp: &Hparams) -> Result<&mla::Absorbed> {
        let g = mla::Geom { n_head: hp.n_head, nope: hp.n_nope, d_v: hp.head_dim_v, r_kv: hp.kv_lora_rank };
        let r =
            self.absorbed.get_or_init(|| mla::Absorbed::build(g, self.layers.iter().map(|l| (&l.kv_b, l.k_b.as_ref(), l.v_b.as_ref()))));
        r.as_ref().map_err(|e| Error::Invalid { what: format!("deriving attn_k_b/attn_v_b: {e}") })
    }

    /// The latent-cache geometry of the MLA modes.
    pub fn mla_geom(hp: &Hparams) -> crate::kv::mla::Geom {
        crate::kv::mla::Geom { n_head: hp.n_head, r_kv: hp.kv_lora_rank, n_rope: hp.n_rot, nope: hp.n_nope, d_v: hp.head_dim_v }
    }

    /// Bytes of tensors derived at load.
    pub fn derived_bytes(&self) -> usize {
        self.owned.iter().map(Vec::len).sum()
    }

    fn all(&self) -> impl Iterator<Item = &QMatrix> {
        self.layers
            .iter()
            .flat_map(|l| {
                let mut v: Vec<&QMatrix> = vec![&l.kv_a, &l.kv_b, &l.wo];
                match &l.q {
                    QProj::Full(m) => v.push(m),
                    QProj::Lora { a, b, .. } => v.extend([a, b]),
                }
                match &l.ffn {
                    Ffn::Dense { gate, up, down } => v.extend([gate, up, down]),
                    Ffn::Moe(m) => {
                        v.extend([&m.gate_inp, &m.sh_gate, &m.sh_up, &m.sh_down]);
                        v.extend(m.gate.iter().chain(&m.up).chain(&m.down));
                    }
                }
                v
            })
            .chain(std::iter::once(&self.output))
    }
}

// ---------------------------------------------------------------------------------------------------------
// 3. Forward

/// Activation arena of one context, sized from hparams × n_ubatch at creation.
pub struct Activations {
    pub x: Vec<f32>,    // [n_ubatch, n_embd] residual stream
    pub xn: Vec<f32>,   // [n_ubatch, n_embd] normed
    pub qa: Vec<f32>,   // [n_ubatch, r_q] q-LoRA down projection
    pub qan: Vec<f32>,  // [n_ubatch, r_q] normed
    pub q: Vec<f32>,    // [n_ubatch, H·d_k]
    pub z: Vec<f32>,    // [n_ubatch, r_kv + d_rope]
    pub c: Vec<f32>,    // [n_ubatch, r_kv] normed latent
    pub kvb: Vec<f32>,  // [n_ubatch, H·(nope + d_v)]
    pub k: Vec<f32>,    // [n_ubatch, H·d_k]
    pub v: Vec<f32>,    // [n_ubatch, H·d_v]
    pub att: Vec<f32>,  // [n_ubatch, H·d_v]
    pub tmp: Vec<f32>,  // [n_ubatch, n_embd]
    pub gate: Vec<f32>, // [n_ubatch, n_ff]
    pub up: Vec<f32>,   // [n_ubatch, n_ff]
    pub actq: Vec<u8>,  // [n_ubatch, max activation row bytes]
    pub rope: Vec<f32>, // [n_ubatch, d_rope]
    pub moe: MoeScratch,
    pub logits: Vec<f32>,  // [n_ubatch, n_vocab]
    pub cells: Vec<usize>, // [n_ubatch] KV cell of each token
    /// Scratch of the MLA modes 1–3 (empty in mode 0; set by the context).
    pub mla: mla::MlaScratch,
}

impl Activations {
    pub fn new(hp: &Hparams, w: &Weights, n_ubatch: usize) -> Result<Activations> {
        let nu = n_ubatch;
        let (h, dk, dv) = (hp.n_head, hp.head_dim_k, hp.head_dim_v);
        let ff = hp.n_ff.iter().copied().max().unwrap_or(0);
        let ff_moe = hp.n_ff_exp.max(hp.n_ff_exp * hp.n_expert_shared);
        let act_rb = w.all().map(|m| m.act_row_bytes).max().unwrap_or(0);
        let t = &mut 0usize;
        Ok(Activations {
            x: alloc(nu * hp.n_embd, "activations x", t)?,
            xn: alloc(nu * hp.n_embd, "activations xn", t)?,
            qa: alloc(nu * hp.q_lora_rank, "activations q_a", t)?,
            qan: alloc(nu * hp.q_lora_rank, "activations q_a normed", t)?,
            q: alloc(nu * h * dk, "activations q", t)?,
            z: alloc(nu * (hp.kv_lora_rank + hp.n_rot), "activations kv_a", t)?,
            c: alloc(nu * hp.kv_lora_rank, "activations kv latent", t)?,
            kvb: alloc(nu * h * (hp.n_nope + dv), "activations kv_b", t)?,
            k: alloc(nu * h * dk, "activations k", t)?,
            v: alloc(nu * h * dv, "activations v", t)?,
            att: alloc(nu * h * dv, "activations att", t)?,
            tmp: alloc(nu * hp.n_embd, "activations tmp", t)?,
            gate: alloc(nu * ff, "activations ffn gate", t)?,
            up: alloc(nu * ff, "activations ffn up", t)?,
            actq: alloc(nu * act_rb, "quantized activations", t)?,
            rope: alloc(nu * hp.n_rot, "rope cache", t)?,
            moe: MoeScratch::new(nu, hp.n_embd, &hp.routing(), ff_moe, act_rb, t)?,
            logits: alloc(nu * hp.n_vocab, "logits", t)?,
            cells: alloc(nu, "cell index", t)?,
            mla: mla::MlaScratch::default(),
        })
    }
}

pub struct Deepseek2 {
    pub hp: Hparams,
    pub w: Weights,
}

impl Deepseek2 {
    pub fn load(g: &GgufModel) -> Result<Deepseek2> {
        let hp = Hparams::read(g)?;
        let w = Weights::load(g, &hp)?;
        Ok(Deepseek2 { hp, w })
    }

    /// Run one ubatch; logits of `ub.out` rows land in `a.logits`. KV slots must already be reserved:
    /// `a.cells[i]` is the cell of token i. Mode 0 caches `H` heads of K (d_k) and V (d_v); MLA modes
    /// (`kv.mla > 0`) cache the latent rows (blocks/mla.rs).
    pub fn forward(&self, pool: &ThreadPool, a: &mut Activations, kv: &mut KvCache, rope: &RopeParams, ub: &Ubatch) -> Result<()> {
        let hp = &self.hp;
        let n = ub.tokens.len();
        let (d, h, dk, dv) = (hp.n_embd, hp.n_head, hp.head_dim_k, hp.head_dim_v);
        let (nope, nr, r) = (hp.n_nope, hp.n_rot, hp.kv_lora_rank);
        let (nq, nz, nkvb) = (h * dk, r + nr, h * (nope + dv));
        for (i, &tok) in ub.tokens.iter().enumerate() {
            if tok as usize >= hp.n_vocab {
                return Err(Error::Invalid { what: format!("token id {tok} out of range (n_vocab {})", hp.n_vocab) });
            }
            ops::get_row(&self.w.token_embd, tok as usize, &mut a.x[i * d..(i + 1) * d]); // [n, n_embd]
            rope.fill_cache(ub.pos[i], &mut a.rope[i * nr..(i + 1) * nr]);
        }
        let kq_scale = hp.kq_scale();
        for (il, l) in self.w.layers.iter().enumerate() {
            ops::rmsnorm(&a.x[..n * d], &l.attn_norm, hp.eps, &mut a.xn[..n * d]); // [n, n_embd]
            match &l.q {
                QProj::Full(wq) => ops::matmul(pool, wq, &a.xn, n, &mut a.actq, &mut a.q), // [n, H·d_k]
                QProj::Lora { a: wa, norm, b: wb } => {
                    let rq = hp.q_lora_rank;
                    ops::matmul(pool, wa, &a.xn, n, &mut a.actq, &mut a.qa); // [n, r_q]
                    ops::rmsnorm(&a.qa[..n * rq], norm, hp.eps, &mut a.qan[..n * rq]);
                    ops::matmul(pool, wb, &a.qan, n, &mut a.actq, &mut a.q); // [n, H·d_k]
                }
            }
            ops::matmul(pool, &l.kv_a, &a.xn, n, &mut a.actq, &mut a.z); // [n, r_kv + d_rope]
            for i in 0..n {
                ops::rmsnorm(&a.z[i * nz..i * nz + r], &l.kv_a_norm, hp.eps, &mut a.c[i * r..(i + 1) * r]);
                // [n, r_kv]
            }
            for i in 0..n {
                let rc = &a.rope[i * nr..(i + 1) * nr];
                ops::rope_row(&mut a.z[i * nz + r..(i + 1) * nz], nr, rope.mode, nr, rc); // k_pe [d_rope]
                for hh in 0..h {
                    // q_pe is the last d_rope of each head's d_k block
                    ops::rope_row(&mut a.q[i * nq + hh * dk + nope..i * nq + (hh + 1) * dk], nr, rope.mode, nr, rc);
                }
            }
            if kv.mla > 0 {
                let (wk_b, wv_b) = &self.w.absorbed(hp)?.layers[il];
                let x = mla::LayerIn {
                    kv_b: &l.kv_b,
                    wk_b,
                    wv_b,
                    q: &a.q[..n * nq],
                    z: &a.z[..n * nz],
                    c: &a.c[..n * r],
                    cells: &a.cells[..n],
                    pos: ub.pos,
                    seq: ub.seq,
                    kq_scale,
                };
                mla::attention(pool, Weights::mla_geom(hp), kv, il, &x, &mut a.mla, &mut a.att[..n * h * dv]);
            // [n, H·d_v]
            } else {
                ops::matmul(pool, &l.kv_b, &a.c, n, &mut a.actq, &mut a.kvb); // [n, H·(nope + d_v)]
                for i in 0..n {
                    let (k, v, kvb) =
                        (&mut a.k[i * nq..(i + 1) * nq], &mut a.v[i * h * dv..(i + 1) * h * dv], &a.kvb[i * nkvb..(i + 1) * nkvb]);
                    for hh in 0..h {
                        // K[h] = [k_nope | rope(k_pe)] (rope part last in mode 0)
                        let src = &kvb[hh * (nope + dv)..(hh + 1) * (nope + dv)];
                        k[hh * dk..hh * dk + nope].copy_from_slice(&src[..nope]);
                        k[hh * dk + nope..(hh + 1) * dk].copy_from_slice(&a.z[i * nz + r..(i + 1) * nz]);
                        v[hh * dv..(hh + 1) * dv].copy_from_slice(&src[nope..]);
                    }
                    kv.write(il, a.cells[i], k, v);
                }
                blocks::attn::attention(pool, kv, il, &a.q[..n * nq], ub.pos, ub.seq, kq_scale, &mut a.att[..n * h * dv]);
            }
            ops::matmul(pool, &l.wo, &a.att, n, &mut a.actq, &mut a.tmp); // [n, n_embd]
            ops::add(&mut a.x[..n * d], &a.tmp[..n * d]);
            ops::rmsnorm(&a.x[..n * d], &l.ffn_norm, hp.eps, &mut a.xn[..n * d]);
            match &l.ffn {
                Ffn::Dense { gate, up, down } => {
                    moe::swiglu(pool, gate, up, down, &a.xn, n, &mut a.gate, &mut a.up, &mut a.actq, &mut a.tmp)
                }
                Ffn::Moe(m) => m.forward(pool, &a.xn, n, &mut a.moe, &mut a.actq, &mut a.tmp),
            }
            ops::add(&mut a.x[..n * d], &a.tmp[..n * d]);
        }
        let no = ub.out.len();
        for (j, &row) in ub.out.iter().enumerate() {
            a.tmp[j * d..(j + 1) * d].copy_from_slice(&a.x[row * d..(row + 1) * d]);
        }
        ops::rmsnorm(&a.tmp[..no * d], &self.w.output_norm, hp.eps, &mut a.xn[..no * d]); // [no, n_embd]
        ops::matmul(pool, &self.w.output, &a.xn, no, &mut a.actq, &mut a.logits); // [no, n_vocab]
        Ok(())
    }
}
