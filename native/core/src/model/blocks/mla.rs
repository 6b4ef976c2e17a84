//! Multi-head latent attention (spec/models.md §4, spec/gguf.md §15.4): load-time conversions between the
//! `attn_kv_b` form and the split `attn_k_b` / `attn_v_b` form of the KV up-projection, and the attention of
//! the absorbed modes `-mla 1|2|3` over the latent cache (kv/mla.rs), mirroring ik_llama.cpp @ 8337e4cd
//! `build_deepseek2` (mla > 0): absorbed attention (§4.2) and the materialised prompt path (§4.4).
//! Mode 0 (standard attention) lives in model/deepseek2.rs + blocks/attn.rs.
//!
//! `attn_kv_b` `[r_kv, H·(nope+d_v)]`: row `h·(nope+d_v) + r`, element `c` = `W[h][r][c]`.
//! `attn_k_b`  `[nope, H·r_kv]`:      row `h·r_kv + c`,       element `n` = `W[h][n][c]` (K block transposed).
//! `attn_v_b`  `[r_kv, H·d_v]`:       row `h·d_v + j`,        element `c` = `W[h][nope+j][c]`.

use crate::cpu::ops::{self, QMatrix};
use crate::cpu::pool::{SyncPtr, ThreadPool};
use crate::cpu::table::MAX_NY;
use crate::error::{Error, Result};
use crate::kv::mla::{Geom as KvGeom, MAT_MIN_TOKENS};
use crate::kv::{KvCache, VLayout};
use crate::model::blocks::attn::{self, View};
use crate::model::weights::bind;
use crate::quant::formats::lookup;
use crate::quant::QType;

/// Geometry of the up-projection.
#[derive(Clone, Copy, Debug)]
pub struct Geom {
    pub n_head: usize,
    pub nope: usize,
    pub d_v: usize,
    pub r_kv: usize,
}

fn dequant_rows(t: QType, data: &[u8], ne0: usize, n_rows: usize) -> Result<Vec<f32>> {
    let f = lookup(t).ok_or_else(|| Error::Unsupported { what: format!("MLA tensor of type {}", t.name()) })?;
    let rb = t.row_size(ne0 as u64).ok_or_else(|| Error::Invalid { what: "MLA tensor row size".into() })? as usize;
    let mut out = vec![0.0f32; ne0 * n_rows];
    for r in 0..n_rows {
        (f.dequantize)(&data[r * rb..(r + 1) * rb], &mut out[r * ne0..(r + 1) * ne0], ne0);
    }
    Ok(out)
}

/// The type a transposed block is re-encoded in: float types are kept (the transposition is then exact),
/// quantized ones become Q8_0 (spec §4.3, as the reference does for `wk_b`).
pub fn transposed_type(t: QType) -> QType {
    match t {
        QType::F32 | QType::F16 | QType::BF16 => t,
        _ => QType::Q8_0,
    }
}

fn encode_rows(t: QType, x: &[f32], ne0: usize) -> Result<Vec<u8>> {
    let f = lookup(t).ok_or_else(|| Error::Unsupported { what: format!("MLA re-encoding to {}", t.name()) })?;
    let q = f.quantize.ok_or_else(|| Error::Unsupported { what: format!("MLA re-encoding to {} (no quantizer)", t.name()) })?;
    let rb = t.row_size(ne0 as u64).ok_or_else(|| Error::Unsupported { what: format!("MLA rows of {ne0} in {}", t.name()) })? as usize;
    let n_rows = x.len() / ne0;
    let mut out = vec![0u8; rb * n_rows];
    for r in 0..n_rows {
        q(&x[r * ne0..(r + 1) * ne0], &mut out[r * rb..(r + 1) * rb], ne0, None);
    }
    Ok(out)
}

/// Rebuild `attn_kv_b` from the split form: K rows are the per-head transposes of `attn_k_b` (re-encoded in
/// `transposed_type(k_type)`), V rows are copied from `attn_v_b` (decoded and re-encoded in the same type, so
/// float types are exact). Returns the bytes and their type.
pub fn kv_b_from_split(g: Geom, k_type: QType, k_b: &[u8], v_type: QType, v_b: &[u8]) -> Result<(Vec<u8>, QType)> {
    let Geom { n_head: h, nope, d_v, r_kv: r } = g;
    let kf = dequant_rows(k_type, k_b, nope, h * r)?; // [H·r, nope]
    let vf = dequant_rows(v_type, v_b, r, h * d_v)?; // [H·d_v, r]
    let t = if transposed_type(k_type) == v_type { v_type } else { transposed_type(k_type) };
    let mut w = vec![0.0f32; h * (nope + d_v) * r];
    for hh in 0..h {
        let base = hh * (nope + d_v);
        for n in 0..nope {
            let row = &mut w[(base + n) * r..(base + n + 1) * r];
            for (c, x) in row.iter_mut().enumerate() {
                *x = kf[(hh * r + c) * nope + n];
            }
        }
        w[(base + nope) * r..(base + nope + d_v) * r].copy_from_slice(&vf[hh * d_v * r..(hh + 1) * d_v * r]);
    }
    Ok((encode_rows(t, &w, r)?, t))
}

/// Derive `wk_b` (`[nope, H·r_kv]`, the split form's `attn_k_b`) from `attn_kv_b` (spec §4.3): dequantize the
/// K rows of each head, transpose, re-encode in `transposed_type`.
pub fn k_b_from_kv_b(g: Geom, t: QType, kv_b: &[u8]) -> Result<(Vec<u8>, QType)> {
    let Geom { n_head: h, nope, d_v, r_kv: r } = g;
    let w = dequant_rows(t, kv_b, r, h * (nope + d_v))?;
    let mut kb = vec![0.0f32; h * r * nope];
    for hh in 0..h {
        for n in 0..nope {
            let row = &w[(hh * (nope + d_v) + n) * r..][..r];
            for (c, &x) in row.iter().enumerate() {
                kb[(hh * r + c) * nope + n] = x;
            }
        }
    }
    let tt = transposed_type(t);
    Ok((encode_rows(tt, &kb, nope)?, tt))
}

/// Derive `wv_b` (`[r_kv, H·d_v]`) from `attn_kv_b`: the V rows of each head copied verbatim.
pub fn v_b_from_kv_b(g: Geom, t: QType, kv_b: &[u8]) -> Result<Vec<u8>> {
    let Geom { n_head: h, nope, d_v, r_kv: r } = g;
    let rb = t.row_size(r as u64).ok_or_else(|| Error::Invalid { what: "attn_kv_b row size".into() })? as usize;
    let mut out = Vec::with_capacity(h * d_v * rb);
    for hh in 0..h {
        let r0 = hh * (nope + d_v) + nope;
        out.extend_from_slice(&kv_b[r0 * rb..(r0 + d_v) * rb]);
    }
    Ok(out)
}

/// The absorbed-mode matrices of every layer (spec §4.3): `wk_b` `[nope, H·r_kv]` (per head the K block of
/// `attn_kv_b`, transposed) and `wv_b` `[r_kv, H·d_v]`, taken from the file's `attn_k_b`/`attn_v_b` or derived
/// from `attn_kv_b` (dequantize → transpose → Q8_0 for quantized `attn_kv_b`, as the reference; V rows copied).
/// Built once per model, on the first context with `-mla > 0`, so mode 0 pays nothing.
pub struct Absorbed {
    pub layers: Vec<(QMatrix, QMatrix)>,
    /// Derived tensors; the QMatrix values above point into these heap buffers (never moved or resized).
    owned: Vec<Vec<u8>>,
}

impl Absorbed {
    /// `layers`: per layer `attn_kv_b` and the file's `attn_k_b` / `attn_v_b` when present.
    pub fn build<'a>(g: Geom, layers: impl Iterator<Item = (&'a QMatrix, Option<&'a QMatrix>, Option<&'a QMatrix>)>) -> Result<Absorbed> {
        let (h, r) = (g.n_head, g.r_kv);
        let mut out = Absorbed { layers: Vec::new(), owned: Vec::new() };
        for (il, (kv_b, k_b, v_b)) in layers.enumerate() {
            let t = kv_b.fmt.qtype;
            let wk = match k_b {
                Some(m) => *m,
                None => {
                    let (bytes, tt) = k_b_from_kv_b(g, t, kv_b.data)?;
                    out.owned.push(bytes);
                    bind(&format!("blk.{il}.attn_k_b (derived)"), out.owned.last().expect("pushed"), tt, g.nope, h * r)?
                }
            };
            let wv = match v_b {
                Some(m) => *m,
                None => {
                    out.owned.push(v_b_from_kv_b(g, t, kv_b.data)?);
                    bind(&format!("blk.{il}.attn_v_b (derived)"), out.owned.last().expect("pushed"), t, r, h * g.d_v)?
                }
            };
            out.layers.push((wk, wv));
        }
        Ok(out)
    }

    /// Bytes of the derived tensors.
    pub fn bytes(&self) -> usize {
        self.owned.iter().map(Vec::len).sum()
    }
}

/// Scratch of the absorbed and materialised paths, sized at context creation (forward allocates nothing).
#[derive(Default)]
pub struct MlaScratch {
    pub qt: Vec<f32>,   // [n_ubatch, H·(d_rope + r_kv)] absorbed queries q̃ = [q_pe | wk_b·q_nope]
    pub olat: Vec<f32>, // [n_ubatch, H·r_kv] latent attention outputs
    pub row: Vec<f32>,  // [d_rope + r_kv] one latent row
    pub lat: Vec<f32>,  // [n_ubatch, d_rope + r_kv] decoded cache rows (materialised path)
    pub c: Vec<f32>,    // [n_ubatch, r_kv] their latents, contiguous
    pub kvb: Vec<f32>,  // [n_ubatch, heads·(nope + d_v)] up-projected latents of one head group
    pub mq: Vec<f32>,   // [n_ubatch, heads·d_k] queries [q_pe | q_nope] of one head group
    pub mo: Vec<f32>,   // [n_ubatch, heads·d_v] outputs of one head group
    pub actq: Vec<u8>,  // [n_ubatch, act row of attn_kv_b]
    hb: Vec<u8>,        // per thread: MAX_NY encoded activation rows (head_matmul)
    hf: Vec<f32>,       // per thread: MAX_NY output rows (head_matmul), one K row (materialising)
    hb_stride: usize,
    hf_stride: usize,
}

impl MlaScratch {
    /// Scratch for `kv` (an MLA cache), `n_ubatch` tokens, `n_threads` threads and the layers' matrices.
    pub fn new(kv: &KvCache, g: KvGeom, n_ubatch: usize, n_threads: usize, ab: &Absorbed, kv_b_act_row: usize) -> Result<MlaScratch> {
        let (h, r, nr) = (g.n_head, g.r_kv, g.n_rope);
        let nu = n_ubatch;
        let heads = kv.mat.as_ref().map_or(0, |m| m.heads);
        let mnu = if heads > 0 { nu } else { 0 };
        let t = &mut 0usize;
        let act = ab.layers.iter().map(|(k, v)| k.act_row_bytes.max(v.act_row_bytes)).max().unwrap_or(0);
        let hb_stride = MAX_NY * act;
        let hf_stride = (MAX_NY * r.max(g.d_v)).max(nr + g.nope);
        let f = |n: usize, what: &str, t: &mut usize| crate::model::llama::alloc(n, what, t);
        Ok(MlaScratch {
            qt: f(nu * h * (nr + r), "MLA absorbed queries", t)?,
            olat: f(nu * h * r, "MLA latent outputs", t)?,
            row: f(nr + r, "MLA latent row", t)?,
            lat: f(mnu * (nr + r), "MLA materialised latents", t)?,
            c: f(mnu * r, "MLA materialised latents", t)?,
            kvb: f(mnu * heads * (g.nope + g.d_v), "MLA materialised K/V (f32)", t)?,
            mq: f(mnu * heads * (nr + g.nope), "MLA materialised queries", t)?,
            mo: f(mnu * heads * g.d_v, "MLA materialised outputs", t)?,
            actq: crate::model::llama::alloc(mnu * kv_b_act_row, "MLA materialised activations", t)?,
            hb: crate::model::llama::alloc(n_threads * hb_stride, "MLA head matmul scratch", t)?,
            hf: f(n_threads * hf_stride, "MLA head matmul scratch", t)?,
            hb_stride,
            hf_stride,
        })
    }
}

/// Per-head matmul (ggml's batched `mul_mat` over heads): for head `h`, token `i`, output row `o`:
/// `out[i·ldo + h·ho + o] = Σ_e W[h·rows + o][e] · x[i·ldx + h·hx + e]`, `rows = w.ne1 / n_head`.
#[allow(clippy::too_many_arguments)]
fn head_matmul(
    pool: &ThreadPool,
    w: &QMatrix,
    n_head: usize,
    x: &[f32],
    ldx: usize,
    hx: usize,
    n: usize,
    out: &mut [f32],
    ldo: usize,
    ho: usize,
    s: &mut MlaScratch,
) {
    let rows = w.ne1 / n_head;
    let (ne0, ab, rb) = (w.ne0, w.act_row_bytes, w.row_bytes);
    let n_grp = n.div_ceil(MAX_NY);
    let (bs, fs) = (s.hb_stride, s.hf_stride);
    let (hb, hf, dst) = (SyncPtr::new(&mut s.hb), SyncPtr::new(&mut s.hf), SyncPtr::new(out));
    pool.run_t(n_head * n_grp, |task, th| {
        let (h, i0) = (task / n_grp, task % n_grp * MAX_NY);
        let ny = MAX_NY.min(n - i0);
        // SAFETY: thread `th` owns its scratch stripes; the task owns rows h·ho..h·ho+rows of tokens i0..i0+ny.
        let b = unsafe { hb.slice(th * bs, bs) };
        let f = unsafe { hf.slice(th * fs, fs) };
        for j in 0..ny {
            let xo = (i0 + j) * ldx + h * hx;
            (w.k.quantize_act)(&x[xo..xo + ne0], &mut b[j * ab..(j + 1) * ab]);
        }
        (w.k.gemm[ny - 1])(ne0, &w.data[h * rows * rb..], rb, rows, b, ab, ny, f, rows);
        for j in 0..ny {
            // SAFETY: rows h·ho..h·ho+rows of token i0+j belong to this task alone (see above).
            let o = unsafe { dst.slice((i0 + j) * ldo + h * ho, rows) };
            o.copy_from_slice(&f[j * rows..(j + 1) * rows]);
        }
    });
}

/// Inputs of one layer's MLA attention.
pub struct LayerIn<'a> {
    pub kv_b: &'a QMatrix,
    pub wk_b: &'a QMatrix,
    pub wv_b: &'a QMatrix,
    /// `[n, H·d_k]` queries `[q_nope | q_pe]` per head, q_pe already rotated.
    pub q: &'a [f32],
    /// `[n, r_kv + d_rope]` kv_a output, k_pe (last d_rope) already rotated; `[n, r_kv]` normed latents.
    pub z: &'a [f32],
    pub c: &'a [f32],
    pub cells: &'a [usize],
    pub pos: &'a [i32],
    pub seq: &'a [i32],
    pub kq_scale: f32,
}

/// MLA attention (modes 1–3) of one ubatch for layer `il`: store the latent rows, then either the absorbed
/// attention (§4.2) or, in modes 2/3 with FA and at least 128 tokens, the materialised path (§4.4).
/// `att` receives `[n, H·d_v]`.
pub fn attention(pool: &ThreadPool, g: KvGeom, kv: &mut KvCache, il: usize, x: &LayerIn, s: &mut MlaScratch, att: &mut [f32]) {
    let n = x.pos.len();
    let (h, r, nr, nope, dv) = (g.n_head, g.r_kv, g.n_rope, g.nope, g.d_v);
    let (dk, dl, nz) = (nr + nope, nr + r, r + nr);
    for i in 0..n {
        kv.write_latent(il, x.cells[i], &x.z[i * nz + r..(i + 1) * nz], &x.c[i * r..(i + 1) * r], &mut s.row);
    }
    if kv.mat.is_some() && n >= MAT_MIN_TOKENS {
        return materialised(pool, g, kv, il, x, s, att);
    }
    // q̃[h] = [q_pe[h] | wk_b[h]ᵀ·q_nope[h]] (d_rope + r_kv), same order as the cache row
    for i in 0..n {
        for hh in 0..h {
            let src = &x.q[(i * h + hh) * dk + nope..(i * h + hh + 1) * dk];
            s.qt[(i * h + hh) * dl..(i * h + hh) * dl + nr].copy_from_slice(src);
        }
    }
    let mut qt = std::mem::take(&mut s.qt);
    head_matmul(pool, x.wk_b, h, x.q, h * dk, dk, n, &mut qt[nr..], h * dl, dl, s); // [n, H, r_kv]
    let mut olat = std::mem::take(&mut s.olat);
    attn::attention(pool, kv, il, &qt[..n * h * dl], x.pos, x.seq, x.kq_scale, &mut olat[..n * h * r]); // [n, H·r_kv]
    head_matmul(pool, x.wv_b, h, &olat, h * r, r, n, att, h * dv, dv, s); // [n, H·d_v]
    s.qt = qt;
    s.olat = olat;
}

/// The materialised prompt path (§4.4): per head group, `[k_nope; v] = W_kv_b[group] · c_j` for every cached
/// cell, K = `[k_pe | k_nope]` and V rows in f32 (no rounding beyond the cached latent's, kv/mla.rs), then flash
/// attention with `H_kv = heads`.
fn materialised(pool: &ThreadPool, g: KvGeom, kv: &mut KvCache, il: usize, x: &LayerIn, s: &mut MlaScratch, att: &mut [f32]) {
    let n = x.pos.len();
    let (h, r, nr, nope, dv) = (g.n_head, g.r_kv, g.n_rope, g.nope, g.d_v);
    let (dk, dl, w) = (nr + nope, nr + r, nope + dv);
    let n_kv = kv.cells.n_kv();
    let nb = s.c.len() / r; // cells per up-projection block (n_ubatch)
    let mut mat = kv.mat.take().expect("checked by the caller");
    let heads = mat.heads;
    let (krow, vrow) = (mat.kt.row, mat.vt.row);
    let (kq, vq) = (mat.kt.fmt.quantize.expect("cache type"), mat.vt.fmt.quantize.expect("cache type"));
    let mut scratch = std::mem::take(&mut kv.scratch);
    for h0 in (0..h).step_by(heads) {
        let sub = QMatrix { data: &x.kv_b.data[h0 * w * x.kv_b.row_bytes..], ne1: heads * w, gpu: None, ..*x.kv_b };
        for c0 in (0..n_kv).step_by(nb) {
            let m = nb.min(n_kv - c0);
            for j in 0..m {
                kv.latent_row(il, c0 + j, &mut s.lat[j * dl..(j + 1) * dl]);
                s.c[j * r..(j + 1) * r].copy_from_slice(&s.lat[j * dl + nr..(j + 1) * dl]);
            }
            ops::matmul(pool, &sub, &s.c, m, &mut s.actq, &mut s.kvb); // [m, heads·(nope + d_v)]
            let (kd, vd) = (SyncPtr::new(&mut mat.k), SyncPtr::new(&mut mat.v));
            let (hf, fs) = (SyncPtr::new(&mut s.hf), s.hf_stride);
            let (lat, kvb) = (&s.lat, &s.kvb);
            pool.run_t(m, |j, th| {
                // SAFETY: task j owns cell c0+j of the materialised buffers; thread th its scratch stripe.
                let row = unsafe { hf.slice(th * fs, dk) };
                let kb = unsafe { kd.slice((c0 + j) * heads * krow, heads * krow) };
                let vb = unsafe { vd.slice((c0 + j) * heads * vrow, heads * vrow) };
                row[..nr].copy_from_slice(&lat[j * dl..j * dl + nr]);
                for hh in 0..heads {
                    let src = &kvb[(j * heads + hh) * w..(j * heads + hh + 1) * w];
                    row[nr..].copy_from_slice(&src[..nope]);
                    kq(row, &mut kb[hh * krow..(hh + 1) * krow], dk, None);
                    vq(&src[nope..], &mut vb[hh * vrow..(hh + 1) * vrow], dv, None);
                }
            });
        }
        for i in 0..n {
            for hh in 0..heads {
                let q = &x.q[(i * h + h0 + hh) * dk..(i * h + h0 + hh + 1) * dk];
                let d = &mut s.mq[(i * heads + hh) * dk..(i * heads + hh + 1) * dk];
                d[..nr].copy_from_slice(&q[nope..]); // [q_pe | q_nope], rope first like K
                d[nr..].copy_from_slice(&q[..nope]);
            }
        }
        let view = View {
            k: &mat.k,
            v: &mat.v,
            kt: &mat.kt,
            vt: &mat.vt,
            n_head: heads,
            n_head_kv: heads,
            dk,
            dv,
            k_cell: heads * krow,
            v_cell: heads * vrow,
            v_off: 0,
            v_layout: VLayout::Rows,
            fa: true,
            scalar: kv.scalar,
            head_chunk: 1,
            fa_block: attn::MAX_FA_BLOCK,
        };
        attn::attend(pool, &view, &kv.cells, &mut scratch, &s.mq[..n * heads * dk], x.pos, x.seq, x.kq_scale, &mut s.mo[..n * heads * dv]);
        for i in 0..n {
            att[(i * h + h0) * dv..(i * h + h0 + heads) * dv].copy_from_slice(&s.mo[i * heads * dv..(i + 1) * heads * dv]);
        }
    }
    kv.scratch = scratch;
    kv.mat = Some(mat);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kv_b → (k_b, v_b) → kv_b is exact for float types, and k_b holds the per-head transposed K block.
    #[test]
    fn split_round_trip_f16() {
        let g = Geom { n_head: 3, nope: 4, d_v: 2, r_kv: 8 };
        let n = g.n_head * (g.nope + g.d_v) * g.r_kv;
        let w: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
        let kv_b = encode_rows(QType::F16, &w, g.r_kv).unwrap();
        let (k_b, kt) = k_b_from_kv_b(g, QType::F16, &kv_b).unwrap();
        let v_b = v_b_from_kv_b(g, QType::F16, &kv_b).unwrap();
        assert_eq!(kt, QType::F16);
        let kf = dequant_rows(QType::F16, &k_b, g.nope, g.n_head * g.r_kv).unwrap();
        // k_b row h·r + c, element n = W[h][n][c]
        assert_eq!(kf[(2 * g.r_kv + 5) * g.nope + 3], w[(2 * (g.nope + g.d_v) + 3) * g.r_kv + 5]);
        let (back, t) = kv_b_from_split(g, kt, &k_b, QType::F16, &v_b).unwrap();
        assert_eq!(t, QType::F16);
        assert_eq!(back, kv_b);
        assert_eq!(transposed_type(QType::Q4_0), QType::Q8_0);
    }
}
