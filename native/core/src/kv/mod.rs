//! KV cache: per-layer K and V buffers allocated once at context creation, typed by `-ctk`/`-ctv`, and the
//! cell bookkeeping (`cells`). Layout (spec/models.md §2.4, §5):
//! - K: per cell `n_head_kv` head rows of `head_dim_k` elements, each row encoded with the cache type's
//!   quantizer (a whole number of blocks), i.e. byte offset `(cell · n_head_kv + head) · k_row`.
//! - V with flash attention: like K. Without flash attention V is stored **transposed** (row `f` of the
//!   `n_head_kv · head_dim_v` features holds `n_ctx` cells, element (c, f) at `f · n_ctx + c`) as the
//!   reference does; quantization blocks run along rows, so a transposed V must be f16 or bf16 and context
//!   creation fails otherwise with the reference's "V cache quantization requires flash_attn".
//!
//! - MLA latent cache (deepseek2 `-mla 1|2|3`): one K head row per cell, `[k_pe | c]`, and V as a view of
//!   its latent part or, for mode 1 without flash attention, a transposed V^T copy — see `mla.rs`.
//!
//! Also here: the attention scratch of each pool thread (sized at creation: the forward pass allocates
//! nothing) and the kernels resolved for the cache types (SIMD and their scalar twins).

pub mod cells;
pub mod mla;
pub mod state;

use crate::cpu::table::{kernels, kernels_for_tier, Kernels};
use crate::cpu::tier::Tier;
use crate::error::{Error, Result};
use crate::model::llama::zeroed_vec;
use crate::quant::formats::{lookup, Format};
use crate::quant::QType;
pub use cells::Cells;

/// `-fa on|off|auto`. The reference resolves `auto` to on (common.cpp: "auto", "1", "on" → true), and on
/// the CPU flash attention is always available, so `Auto` ≡ `On`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FlashAttn {
    Off,
    On,
    #[default]
    Auto,
}

impl FlashAttn {
    pub fn from_name(s: &str) -> Result<FlashAttn> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(FlashAttn::Auto),
            "on" | "1" => Ok(FlashAttn::On),
            "off" | "0" => Ok(FlashAttn::Off),
            _ => Err(Error::Invalid { what: format!("invalid flash attention mode '{s}' (auto|on|off|0|1)") }),
        }
    }

    /// Whether flash attention runs (CPU: `Auto` → on, as the reference).
    pub fn enabled(self) -> bool {
        self != FlashAttn::Off
    }
}

/// Cache types the engine accepts (ik `kv_cache_type_from_str` less `q8_KV`).
pub const CACHE_TYPES: &[QType] =
    &[QType::F32, QType::F16, QType::BF16, QType::Q8_0, QType::Q4_0, QType::Q4_1, QType::IQ4_NL, QType::Q5_0, QType::Q5_1, QType::Q6_0];

/// `-ctk`/`-ctv` name → type; anything else is the reference's "Invalid cache type: NAME".
pub fn cache_type_from_name(s: &str) -> Result<QType> {
    QType::from_name(s).filter(|t| CACHE_TYPES.contains(t)).ok_or_else(|| Error::Invalid { what: format!("Invalid cache type: {s}") })
}

fn unsupported(t: QType) -> Error {
    let names: Vec<&str> = CACHE_TYPES.iter().map(|t| t.name()).collect();
    Error::Unsupported { what: format!("KV cache type {} (supported: {})", t.name(), names.join(", ")) }
}

/// Zeroed cache memory (pages become resident as cells are written).
pub(crate) fn alloc_bytes(n: usize, what: &str) -> Result<Vec<u8>> {
    zeroed_vec(n).ok_or_else(|| Error::OutOfMemory {
        what: format!("{what}: {n} bytes for the KV cache; lower --ctx-size or use a smaller cache type"),
    })
}

pub(crate) fn alloc_f32(n: usize, what: &str) -> Result<Vec<f32>> {
    zeroed_vec(n).ok_or_else(|| Error::OutOfMemory { what: format!("{what}: {} bytes of attention scratch", n.saturating_mul(4)) })
}

/// One cache type bound to its format, kernels (tier-resolved and scalar) and head-row size.
#[derive(Clone, Copy)]
pub struct CacheType {
    pub qtype: QType,
    pub fmt: &'static Format,
    pub fast: Kernels,
    pub scalar: Kernels,
    /// Bytes of one head row (`head_dim` elements).
    pub row: usize,
    /// Bytes of one encoded activation row of `head_dim` elements (the type's `vec_dot_type`).
    pub act_row: usize,
}

impl CacheType {
    fn new(t: QType, head_dim: usize) -> Result<CacheType> {
        if !CACHE_TYPES.contains(&t) {
            return Err(unsupported(t));
        }
        let fmt = lookup(t).filter(|f| f.quantize.is_some()).ok_or_else(|| unsupported(t))?;
        let fast = *kernels(t).ok_or_else(|| unsupported(t))?;
        let scalar = kernels_for_tier(t, Tier::Scalar).ok_or_else(|| unsupported(t))?;
        let row = t.row_size(head_dim as u64).ok_or_else(|| Error::Invalid {
            what: format!("KV cache type {}: head size {head_dim} is not a multiple of its block size", t.name()),
        })? as usize;
        let act_row = fast.act.row_size(head_dim as u64).ok_or_else(|| unsupported(t))? as usize;
        Ok(CacheType { qtype: t, fmt, fast, scalar, row, act_row })
    }

    /// The kernels to use (`scalar`: the reference twin).
    #[inline]
    pub fn kern(&self, scalar: bool) -> &Kernels {
        if scalar {
            &self.scalar
        } else {
            &self.fast
        }
    }
}

/// Per-thread attention scratch (offsets computed from these strides; thread `t` owns `[t·stride, (t+1)·stride)`).
#[derive(Default)]
pub struct Scratch {
    /// Encoded query rows of one KV-head group (`group × act_row` bytes), then probabilities encoded as V's
    /// activation type (`group × n_ctx` elements, non-FA path).
    pub bytes: Vec<u8>,
    pub bytes_stride: usize,
    /// Scores (`group × n_ctx`), dequantized V tile (`TILE × head_dim_v`), accumulators (`group × head_dim_v`),
    /// running max and sum (`group` each).
    pub f: Vec<f32>,
    pub f_stride: usize,
}

/// Cells per flash-attention tile.
pub const TILE: usize = 32;

/// Where attention finds V.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VLayout {
    /// Own buffer, per cell `n_head_kv` rows of `head_dim_v` elements (flash attention).
    Rows,
    /// Own buffer, transposed (f16/bf16): feature row `f` holds `n_ctx` cells.
    Trans,
    /// No V buffer: V is the last `head_dim_v` elements of each K row (MLA latent `[k_pe | c]`, V = c), at
    /// byte offset `KvCache::v_off` of the row. Quantization blocks stay whole because `d_rope` is a multiple
    /// of the block size.
    InK,
}

/// The cache of one context.
pub struct KvCache {
    /// Per layer: K bytes `[n_ctx · n_head_kv · k.row]`, V bytes (FA: `[n_ctx · n_head_kv · v.row]`,
    /// transposed: `[n_head_kv · head_dim_v · n_ctx]` elements).
    pub k: Vec<Vec<u8>>,
    pub v: Vec<Vec<u8>>,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim_k: usize,
    pub head_dim_v: usize,
    pub type_k: QType,
    pub type_v: QType,
    pub kt: CacheType,
    pub vt: CacheType,
    /// Flash attention for the attention over this cache (MLA mode 2 keeps it off for the absorbed path and
    /// uses it only in the materialised prompt path, `mla::Materialised`).
    pub flash_attn: bool,
    /// V stored transposed (no flash attention).
    pub v_trans: bool,
    pub v_layout: VLayout,
    /// `VLayout::InK`: byte offset of V within a K row.
    pub v_off: usize,
    /// MLA mode (0 = the standard K/V layout) and, for modes ≥ 1, the latent geometry and materialised path.
    pub mla: u8,
    pub mla_geom: Option<mla::Geom>,
    pub mat: Option<mla::Materialised>,
    /// `-amb` in MiB (0 = no cap): bounds the query heads per attention task in the absorbed non-FA path.
    pub amb_mib: usize,
    /// Most query heads one attention task handles (scratch is sized for it).
    pub head_chunk: usize,
    /// The type `-ctv` asked for (kept for labels and state headers; MLA latent caches use `type_k`).
    pub type_v_req: QType,
    /// Run the scalar twins of every attention kernel (tests; `IKL_CPU_TIER=scalar` reaches the same).
    pub scalar: bool,
    pub cells: Cells,
    pub scratch: Scratch,
}

impl KvCache {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n_layer: usize,
        n_ctx: usize,
        n_head: usize,
        n_head_kv: usize,
        head_dim_k: usize,
        head_dim_v: usize,
        type_k: QType,
        type_v: QType,
        flash_attn: bool,
        n_threads: usize,
    ) -> Result<KvCache> {
        let kt = CacheType::new(type_k, head_dim_k)?;
        let vt = CacheType::new(type_v, head_dim_v)?;
        let v_trans = !flash_attn;
        if v_trans && type_v != QType::F16 && type_v != QType::BF16 {
            return Err(Error::Invalid { what: "V cache quantization requires flash_attn".into() });
        }
        let v_bytes = if v_trans { n_ctx * n_head_kv * head_dim_v * 2 } else { n_ctx * n_head_kv * vt.row };
        let mut k = Vec::with_capacity(n_layer);
        let mut v = Vec::with_capacity(n_layer);
        for il in 0..n_layer {
            k.push(alloc_bytes(n_ctx * n_head_kv * kt.row, &format!("layer {il} K ({n_ctx} cells, {})", type_k.name()))?);
            v.push(alloc_bytes(v_bytes, &format!("layer {il} V ({n_ctx} cells, {})", type_v.name()))?);
        }
        let group = n_head / n_head_kv.max(1);
        let nt = n_threads.max(1);
        // why max(act_row, n_ctx·4): the same bytes hold encoded Q rows, then (non-FA) encoded probabilities
        let p_row = vt.fast.act.row_size(n_ctx as u64).unwrap_or(n_ctx as u64 * 4).max(n_ctx as u64 * 4) as usize;
        let bytes_stride = group * kt.act_row.max(kt.scalar.act.row_size(head_dim_k as u64).unwrap_or(0) as usize) + group * p_row + 64;
        let f_stride = group * n_ctx.max(TILE) + TILE * head_dim_v + group * head_dim_v + 2 * group + 16;
        let scratch = Scratch {
            bytes: alloc_bytes(nt * bytes_stride, "attention scratch")?,
            bytes_stride,
            f: alloc_f32(nt * f_stride, "attention scratch")?,
            f_stride,
        };
        Ok(KvCache {
            k,
            v,
            n_head,
            n_head_kv,
            head_dim_k,
            head_dim_v,
            type_k,
            type_v,
            kt,
            vt,
            flash_attn,
            v_trans,
            v_layout: if v_trans { VLayout::Trans } else { VLayout::Rows },
            v_off: 0,
            mla: 0,
            mla_geom: None,
            mat: None,
            amb_mib: 0,
            head_chunk: group,
            type_v_req: type_v,
            scalar: false,
            cells: Cells::new(n_ctx),
            scratch,
        })
    }

    pub fn n_layer(&self) -> usize {
        self.k.len()
    }

    /// Bytes one token (cell) takes across all layers, K plus V (spec §2.4, §4.7).
    pub fn bytes_per_token(&self) -> usize {
        self.n_layer() * (self.k_bytes_per_cell() + self.v_bytes_per_cell())
    }

    /// Bytes of one cell's K in one layer.
    pub fn k_bytes_per_cell(&self) -> usize {
        self.n_head_kv * self.kt.row
    }

    /// Bytes of one cell's V in one layer (0 when V is a view of K).
    pub fn v_bytes_per_cell(&self) -> usize {
        match self.v_layout {
            VLayout::Rows => self.n_head_kv * self.vt.row,
            VLayout::Trans => self.n_head_kv * self.head_dim_v * 2,
            VLayout::InK => 0,
        }
    }

    /// Bytes held by the K and V buffers (`bytes_per_token · n_ctx`).
    pub fn total_bytes(&self) -> usize {
        self.bytes_per_token() * self.cells.n_ctx()
    }

    /// Bytes held by the K and V buffers (old name of `total_bytes`).
    pub fn bytes(&self) -> usize {
        self.total_bytes()
    }

    /// Store one token's post-RoPE K (`n_head_kv · head_dim_k`) and V (`n_head_kv · head_dim_v`) in `cell`
    /// of layer `il`, encoding each head row with the cache type's quantizer.
    pub fn write(&mut self, il: usize, cell: usize, k: &[f32], v: &[f32]) {
        let (nh, dk, dv) = (self.n_head_kv, self.head_dim_k, self.head_dim_v);
        let (kq, kr) = (self.kt.fmt.quantize.expect("checked at creation"), self.kt.row);
        let kb = &mut self.k[il][cell * nh * kr..(cell + 1) * nh * kr];
        for h in 0..nh {
            kq(&k[h * dk..(h + 1) * dk], &mut kb[h * kr..(h + 1) * kr], dk, None);
        }
        if self.v_trans {
            let n_ctx = self.cells.n_ctx();
            let vb = &mut self.v[il];
            let bf = self.type_v == QType::BF16;
            for (f, &x) in v[..nh * dv].iter().enumerate() {
                let bits = if bf { crate::quant::convert::f32_to_bf16(x) } else { crate::quant::convert::f32_to_f16(x) };
                let o = (f * n_ctx + cell) * 2;
                vb[o..o + 2].copy_from_slice(&bits.to_le_bytes());
            }
        } else {
            let (vq, vr) = (self.vt.fmt.quantize.expect("checked at creation"), self.vt.row);
            let vb = &mut self.v[il][cell * nh * vr..(cell + 1) * nh * vr];
            for h in 0..nh {
                vq(&v[h * dv..(h + 1) * dv], &mut vb[h * vr..(h + 1) * vr], dv, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rules() {
        let kv = KvCache::new(2, 64, 8, 4, 32, 32, QType::Q8_0, QType::Q4_0, true, 2).unwrap();
        assert_eq!(kv.bytes_per_token(), 2 * 4 * (34 + 18));
        assert_eq!(kv.total_bytes(), 64 * kv.bytes_per_token());
        let e = KvCache::new(2, 64, 8, 4, 32, 32, QType::F16, QType::Q8_0, false, 2).err().unwrap();
        assert!(e.to_string().contains("V cache quantization requires flash_attn"), "{e}");
        let kv = KvCache::new(2, 64, 8, 4, 32, 32, QType::F16, QType::BF16, false, 2).unwrap();
        assert_eq!(kv.bytes_per_token(), 2 * 4 * (64 + 64));
        assert!(KvCache::new(1, 8, 2, 2, 16, 16, QType::Q8_0, QType::F16, true, 1).is_err());
        assert!(cache_type_from_name("q8_0").is_ok() && cache_type_from_name("q4_k").is_err());
        assert_eq!(FlashAttn::from_name("auto").unwrap(), FlashAttn::Auto);
        assert!(FlashAttn::Auto.enabled() && !FlashAttn::Off.enabled());
    }
}
