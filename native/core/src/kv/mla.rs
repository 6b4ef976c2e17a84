//! MLA latent KV cache for deepseek2 `-mla 1|2|3` (spec/models.md §4.1, §4.5–4.7, §5.2–5.3), mirroring the
//! cache ik_llama.cpp @ 8337e4cd builds in `llama_kv_cache_init` (one `cache_k_l` row per cell, plus
//! `cache_v_l` for mode 1 without FA). Not here: the attention math (model/blocks/mla.rs, model/blocks/attn.rs).
//!
//! Layout, per layer:
//! - **K (latent)**: `n_ctx` rows of `d_rope + r_kv` elements, `[k_pe (post-RoPE) | c (post-RMSNorm)]`
//!   (rope first, as ik since PR #408), each row encoded whole in the `-ctk` type. Unlike the reference
//!   (modes 2/3 without FA store it in the `-ctv` type while the log names `-ctk`), the type is always
//!   `-ctk`, and the log line names it.
//! - **V**: a view of the same rows, elements `d_rope..` at byte offset `row_size(type, d_rope)`; `d_rope`
//!   (64, 32 in the fixtures) is a multiple of every cache block (32), so V rows are whole blocks.
//! - **V^T** (mode 1 without FA only): `r_kv` feature rows of `n_ctx` f16/bf16 (`-ctv`) elements, element
//!   (cell c, feature f) at `f·n_ctx + c`, written one column per token.
//!
//! The transposed view of a quantized cache: the absorbed attention without FA needs `V^T·P`. The reference
//! builds V^T by transposing the cache on every call (f16/bf16 and, since #252/#265, q8_0 only). We never
//! transpose: `o_lat[h] = Σ_j P[h][j] · c_j` is accumulated row by row — each visible latent row is decoded
//! once per attention task (q8_0: one scale multiply per block of 32) and added to all heads of the task with
//! their probabilities. The sum is the same `V^T·P` for every row type, reads each row once per head chunk
//! instead of writing and re-reading a transposed copy, and needs no extra buffer.
//!
//! Materialised prompt path (modes 2/3 with FA, ubatch ≥ 128, §4.4): per head group the cached latents are
//! expanded to K = `[k_pe | k_nope]` (d_k) and V (d_v) rows, held in `Materialised`, sized at creation for the
//! head group `-amb` allows. The rows are kept in **f32**, the precision of the reference's `kv_f32`
//! intermediate, which the reference then casts to the cache type: that cast rounds K and V a second time
//! (after the latent's own rounding in the cache), so its materialised path drifts from its absorbed one (on
//! ds-mini, f16 cache: median KLD vs mode 0 of 1.3e-3 with f16 K/V rows against 3.8e-7 with f32 rows). In f32
//! the materialised and absorbed paths compute the same attention from the same cached latents. Memory: at most
//! `heads·(d_rope + nope + d_v)·4` bytes per cell, `heads` bounded by `-amb` on the same f32 measure.

use super::{alloc_bytes, alloc_f32, CacheType, Cells, KvCache, Scratch, VLayout, TILE};
use crate::error::{Error, Result};
use crate::quant::convert::{f32_to_bf16, f32_to_f16};
use crate::quant::QType;

/// Latent geometry of a deepseek2 layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom {
    pub n_head: usize,
    pub r_kv: usize,
    /// d_rope (= n_rot).
    pub n_rope: usize,
    /// d_nope and d_v: head dims of the materialised K (`n_rope + nope`) and V.
    pub nope: usize,
    pub d_v: usize,
}

/// Expanded K/V rows of one head group for the materialised prompt path (§4.4).
pub struct Materialised {
    /// `[n_ctx · heads]` rows of `kt.row` / `vt.row` bytes (cell-major, then head).
    pub k: Vec<u8>,
    pub v: Vec<u8>,
    pub kt: CacheType,
    pub vt: CacheType,
    /// Heads per iteration (from `-amb`, §4.5).
    pub heads: usize,
}

/// Ubatches of at least this many tokens take the materialised path in modes 2/3 with FA (§4.1).
pub const MAT_MIN_TOKENS: usize = 128;

/// Query heads per step of the absorbed non-FA path (§4.5): `kq_MiB = ⌊n_kv·n_tokens·H·4 / 2²⁰⌋`; when
/// `amb > 0` and `kq_MiB > amb`, `n_step = min(H, ⌈kq_MiB/amb⌉)` steps of `⌈H/n_step⌉` heads.
pub fn absorbed_heads_per_step(n_head: usize, n_kv: usize, n_tokens: usize, amb: usize) -> usize {
    let kq_mib = (n_kv * n_tokens * n_head * 4) >> 20;
    if amb == 0 || kq_mib <= amb {
        return n_head;
    }
    let n_step = n_head.min(kq_mib.div_ceil(amb));
    n_head.div_ceil(n_step)
}

/// Heads per iteration of the materialised FA path (§4.5): `kv_MiB = ⌊H·(nope+d_v)·n_kv·4 / 2²⁰⌋`; when
/// `amb > 0` and `kv_MiB > amb`, the smallest divisor `m ≥ 2` of H with `kv_MiB/m ≤ amb` gives `H/m` heads
/// (1 when none fits).
pub fn materialised_heads(g: &Geom, n_kv: usize, amb: usize) -> usize {
    let h = g.n_head;
    let kv_mib = (h * (g.nope + g.d_v) * n_kv * 4) >> 20;
    if amb == 0 || kv_mib <= amb {
        return h;
    }
    (2..=h).find(|m| h % m == 0 && kv_mib / m <= amb).map_or(1, |m| h / m)
}

/// Bytes per token per layer of an MLA cache (§4.7): `row(ctk, r_kv + d_rope)`, plus `r_kv · B_V` for the
/// mode-1 V^T cache without FA.
pub fn layer_bytes_per_token(g: &Geom, mode: u8, fa: bool, type_k: QType, type_v: QType) -> Option<usize> {
    let k = type_k.row_size((g.r_kv + g.n_rope) as u64)? as usize;
    let vt = if mode == 1 && !fa { g.r_kv * type_v.row_size(1).unwrap_or(2) as usize } else { 0 };
    Some(k + vt)
}

impl KvCache {
    /// The latent cache of MLA mode `mode` (1..=3) with `-fa` `fa`, `-amb` `amb` MiB, sized for `n_ubatch`
    /// tokens per forward pass and `n_threads` attention threads.
    #[allow(clippy::too_many_arguments)]
    pub fn new_mla(
        n_layer: usize,
        n_ctx: usize,
        g: Geom,
        mode: u8,
        type_k: QType,
        type_v: QType,
        fa: bool,
        amb: usize,
        n_ubatch: usize,
        n_threads: usize,
    ) -> Result<KvCache> {
        if !(1..=3).contains(&mode) {
            return Err(Error::Invalid { what: format!("MLA mode {mode} (must be 0..3)") });
        }
        let dk = g.r_kv + g.n_rope;
        let kt = CacheType::new(type_k, dk)?;
        let v_trans = mode == 1 && !fa;
        if v_trans && type_v != QType::F16 && type_v != QType::BF16 {
            return Err(Error::Invalid { what: "V cache quantization requires flash_attn (mla 1 without FA keeps V^T in -ctv)".into() });
        }
        let vt = CacheType::new(if v_trans { type_v } else { type_k }, g.r_kv)?;
        let v_off = type_k.row_size(g.n_rope as u64).ok_or_else(|| Error::Invalid {
            what: format!("KV cache type {}: rope size {} is not a multiple of its block size", type_k.name(), g.n_rope),
        })? as usize;
        let mut k = Vec::with_capacity(n_layer);
        let mut v = Vec::with_capacity(n_layer);
        for il in 0..n_layer {
            k.push(alloc_bytes(n_ctx * kt.row, &format!("layer {il} c^KV ({n_ctx} cells, {})", type_k.name()))?);
            let vb = if v_trans { n_ctx * g.r_kv * 2 } else { 0 };
            v.push(alloc_bytes(vb, &format!("layer {il} kv^T ({n_ctx} cells, {})", type_v.name()))?);
        }
        // Absorbed attention: FA in modes 1 and 3; mode 2 keeps the non-FA path for small batches (§4.1).
        let abs_fa = fa && mode != 2;
        let nu = n_ubatch.min(n_ctx).max(1);
        let chunk = if abs_fa { g.n_head } else { absorbed_heads_per_step(g.n_head, n_ctx, nu, amb) };
        let mat = if fa && mode >= 2 && n_ubatch >= MAT_MIN_TOKENS {
            let heads = materialised_heads(&g, n_ctx, amb);
            // f32: the expansion adds no rounding of its own (see the module note).
            let (mkt, mvt) = (CacheType::new(QType::F32, g.n_rope + g.nope)?, CacheType::new(QType::F32, g.d_v)?);
            Some(Materialised {
                k: alloc_bytes(n_ctx * heads * mkt.row, "materialised MLA K (prompt processing)")?,
                v: alloc_bytes(n_ctx * heads * mvt.row, "materialised MLA V (prompt processing)")?,
                kt: mkt,
                vt: mvt,
                heads,
            })
        } else {
            None
        };
        let nt = n_threads.max(1);
        // Per-thread scratch for the larger of the absorbed layout (chunk heads, d_k = r_kv + d_rope) and the
        // materialised one (one head per KV head, d_k = d_rope + nope).
        let m_dk = g.n_rope + g.nope;
        let q_bytes = (chunk * kt.act_row).max(kt.scalar.act.row_size(dk as u64).unwrap_or(0) as usize * chunk);
        let m_q = mat.as_ref().map_or(0, |m| m.kt.act_row.max(m.kt.scalar.act.row_size(m_dk as u64).unwrap_or(0) as usize));
        let p_row = if v_trans { vt.fast.act.row_size(n_ctx as u64).unwrap_or(0).max(n_ctx as u64 * 4) as usize } else { 0 };
        let bytes_stride = q_bytes.max(m_q) + chunk * p_row + 64;
        let dv = g.r_kv.max(g.d_v);
        let f_stride = chunk * n_ctx.max(TILE) + TILE * dv + chunk * dv + 2 * chunk + 16;
        let scratch = Scratch {
            bytes: alloc_bytes(nt * bytes_stride, "attention scratch")?,
            bytes_stride,
            f: alloc_f32(nt * f_stride, "attention scratch")?,
            f_stride,
        };
        Ok(KvCache {
            k,
            v,
            n_head: g.n_head,
            n_head_kv: 1,
            head_dim_k: dk,
            head_dim_v: g.r_kv,
            type_k,
            type_v: if v_trans { type_v } else { type_k },
            kt,
            vt,
            flash_attn: abs_fa,
            v_trans,
            v_layout: if v_trans { VLayout::Trans } else { VLayout::InK },
            v_off,
            mla: mode,
            mla_geom: Some(g),
            mat,
            amb_mib: amb,
            head_chunk: chunk,
            type_v_req: type_v,
            scalar: false,
            cells: Cells::new(n_ctx),
            scratch,
        })
    }

    /// Store one token's latent row `[k_pe | c]` (and its V^T column in mode 1 without FA) in `cell` of
    /// layer `il`; `row` is `d_rope + r_kv` floats of scratch.
    pub fn write_latent(&mut self, il: usize, cell: usize, k_pe: &[f32], c: &[f32], row: &mut [f32]) {
        let nr = k_pe.len();
        row[..nr].copy_from_slice(k_pe);
        row[nr..nr + c.len()].copy_from_slice(c);
        let q = self.kt.fmt.quantize.expect("checked at creation");
        let kr = self.kt.row;
        q(&row[..self.head_dim_k], &mut self.k[il][cell * kr..(cell + 1) * kr], self.head_dim_k, None);
        if self.v_trans {
            let n_ctx = self.cells.n_ctx();
            let bf = self.type_v == QType::BF16;
            let vb = &mut self.v[il];
            for (f, &x) in c.iter().enumerate() {
                let bits = if bf { f32_to_bf16(x) } else { f32_to_f16(x) };
                let o = (f * n_ctx + cell) * 2;
                vb[o..o + 2].copy_from_slice(&bits.to_le_bytes());
            }
        }
    }

    /// Decode the latent row of `cell` in layer `il` (`d_rope + r_kv` floats, rope first).
    pub fn latent_row(&self, il: usize, cell: usize, out: &mut [f32]) {
        let kr = self.kt.row;
        (self.kt.fmt.dequantize)(&self.k[il][cell * kr..(cell + 1) * kr], &mut out[..self.head_dim_k], self.head_dim_k);
    }

    /// The reference's context-creation line (`llama_init_from_model: KV self size = …`), labelled with the
    /// types actually stored.
    pub fn size_line(&self) -> String {
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        let n_ctx = self.cells.n_ctx();
        let (k, v) = (self.n_layer() * self.k_bytes_per_cell() * n_ctx, self.n_layer() * self.v_bytes_per_cell() * n_ctx);
        let total = mib(k + v);
        let head = "llama_init_from_model: KV self size  =";
        match (self.mla, self.v_layout) {
            (0, _) => format!(
                "{head} {total:7.2} MiB, K ({}): {:7.2} MiB, V ({}): {:7.2} MiB",
                self.type_k.name(),
                mib(k),
                self.type_v.name(),
                mib(v)
            ),
            (_, VLayout::Trans) => format!(
                "{head} {total:7.2} MiB, c^KV ({}): {:7.2} MiB, kv^T ({}): {:7.2} MiB",
                self.type_k.name(),
                mib(k),
                self.type_v.name(),
                mib(v)
            ),
            _ => format!("{head} {total:7.2} MiB, c^KV ({}): {:7.2} MiB, kv^T: not used", self.type_k.name(), mib(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3: Geom = Geom { n_head: 128, r_kv: 512, n_rope: 64, nope: 128, d_v: 128 };

    /// Spec §4.7 table for DeepSeek V3/R1 (61 layers).
    #[test]
    fn bytes_per_token_match_spec_formulas() {
        let per = |mode, fa, k, v| 61 * layer_bytes_per_token(&V3, mode, fa, k, v).unwrap();
        assert_eq!(per(1, false, QType::F16, QType::F16), 132_736);
        assert_eq!(per(1, false, QType::Q8_0, QType::F16), 99_796);
        for m in 1..=3 {
            assert_eq!(per(m, true, QType::F16, QType::F16), 70_272);
            assert_eq!(per(m, true, QType::BF16, QType::F16), 70_272);
            assert_eq!(per(m, true, QType::Q8_0, QType::F16), 37_332);
            assert_eq!(per(m, true, QType::Q6_0, QType::F16), 28_548);
            assert_eq!(per(m, true, QType::Q4_0, QType::F16), 19_764);
        }
        assert_eq!(per(2, false, QType::F16, QType::F16), 70_272);
        // Allocated caches agree with the formula (small context, V3 geometry, 2 layers).
        for (mode, fa, k, v) in
            [(1, false, QType::Q8_0, QType::F16), (1, true, QType::F16, QType::F16), (3, false, QType::Q8_0, QType::F16)]
        {
            let kv = KvCache::new_mla(2, 64, V3, mode, k, v, fa, 0, 32, 1).unwrap();
            assert_eq!(kv.bytes_per_token(), 2 * layer_bytes_per_token(&V3, mode, fa, k, v).unwrap());
            assert_eq!(kv.total_bytes(), 64 * kv.bytes_per_token());
        }
        let e = KvCache::new_mla(1, 64, V3, 1, QType::F16, QType::Q8_0, false, 0, 32, 1).err().unwrap();
        assert!(e.to_string().contains("requires flash_attn"), "{e}");
        // Modes 2/3 without FA honour -ctk (the reference would take -ctv) and say so.
        let kv = KvCache::new_mla(1, 1024, V3, 3, QType::Q8_0, QType::F16, false, 0, 32, 1).unwrap();
        assert!(kv.size_line().contains("c^KV (q8_0)") && kv.size_line().contains("kv^T: not used"), "{}", kv.size_line());
    }

    #[test]
    fn amb_head_steps_follow_spec_examples() {
        // V3, ubatch 512, n_kv 16384: 4096 MiB → 16 steps of 8 heads.
        assert_eq!(absorbed_heads_per_step(128, 16384, 512, 256), 8);
        assert_eq!(absorbed_heads_per_step(128, 16384, 512, 0), 128);
        // Materialised: 2048 MiB, amb 256 → m = 8 → 16 heads.
        assert_eq!(materialised_heads(&V3, 16384, 256), 16);
        assert_eq!(materialised_heads(&V3, 16384, 1), 1);
    }

    #[test]
    fn latent_rows_round_trip_and_v_view_is_whole_blocks() {
        let g = Geom { n_head: 4, r_kv: 64, n_rope: 32, nope: 32, d_v: 32 };
        let mut kv = KvCache::new_mla(1, 8, g, 1, QType::Q8_0, QType::F16, false, 0, 8, 1).unwrap();
        assert_eq!(kv.v_off, 34);
        let kpe: Vec<f32> = (0..32).map(|i| i as f32 / 7.0).collect();
        let c: Vec<f32> = (0..64).map(|i| -(i as f32) / 9.0).collect();
        let mut row = vec![0.0; 96];
        kv.write_latent(0, 3, &kpe, &c, &mut row);
        let mut back = vec![0.0; 96];
        kv.latent_row(0, 3, &mut back);
        assert!(back.iter().zip(kpe.iter().chain(&c)).all(|(a, b)| (a - b).abs() < 0.04)); // q8_0: half a step of 7/127
                                                                                           // V^T column of cell 3: feature 5 at 5·n_ctx + 3.
        let o = (5 * 8 + 3) * 2;
        assert_eq!(u16::from_le_bytes([kv.v[0][o], kv.v[0][o + 1]]), f32_to_f16(c[5]));
    }
}
