//! Attention of one ubatch over the KV cache (spec/models.md §1.4, §2.3 step 5): GQA, RoPE already applied to
//! Q and to the cached K, scores `kq_scale · q·k` masked by `Cells::visible`.
//!
//! Two paths, chosen at context creation (`KvCache::flash_attn`), both mirroring ik_llama.cpp @ 8337e4cd on
//! the CPU:
//! - **flash attention** (`-fa on|auto`): per (token, KV head) an online softmax over tiles of `TILE` cells;
//!   Q is encoded once as the K type's `vec_dot_type` (f16 K · f16 Q, q8_0/q4_0/iq4_nl/q5_0 K · q8_0 Q — ggml
//!   `flash_attn_ext_f16` / iqk FA pairing) and K·Q runs through the GEMM table, V rows are decoded to f32 and
//!   accumulated in f32. Tiles without a visible cell are skipped.
//! - **no flash attention**: the materialised `K·Q` row over all `n_kv` cells (f32 result), masked softmax in
//!   f32 (Σ in f64), the probabilities encoded as V's `vec_dot_type` (f16/bf16, as ggml converts `kq` for
//!   `mul_mat(v_trans, kq)`) and multiplied with the transposed V rows.
//!
//! Threads split (token, KV head, head chunk) triples; each task handles up to `KvCache::head_chunk` query heads
//! of the group (one K/V row read serves them all; chunks shrink for parallelism when there are few tokens).
//! Scratch comes from `KvCache::scratch` (allocated at creation). `KvCache::scalar` switches every kernel to its
//! scalar twin. The same code serves the MLA latent cache (`View` with one KV head, d_k = d_rope + r_kv and V a
//! view of K, kv/mla.rs): without FA and with V not transposed, `V·P` is accumulated row by row.

use crate::cpu::attn as k;
use crate::cpu::ops;
use crate::cpu::pool::{SyncPtr, ThreadPool};
use crate::cpu::table::{Kernels, MAX_NY};
use crate::kv::{CacheType, Cells, KvCache, Scratch, VLayout, TILE};
use crate::quant::QType;

/// One layer's K/V as attention reads them.
pub struct View<'a> {
    pub k: &'a [u8],
    /// V buffer (`Rows`, `Trans`); for `InK` the K buffer.
    pub v: &'a [u8],
    pub kt: &'a CacheType,
    pub vt: &'a CacheType,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub dk: usize,
    pub dv: usize,
    /// Bytes per cell of K (all KV heads) and of V (`Rows`/`InK`).
    pub k_cell: usize,
    pub v_cell: usize,
    /// Byte offset of V head 0 within a cell's V bytes (`InK`: within the K row).
    pub v_off: usize,
    pub v_layout: VLayout,
    pub fa: bool,
    pub scalar: bool,
    /// Most query heads per task (the scratch holds this many).
    pub head_chunk: usize,
}

impl KvCache {
    /// The attention view of layer `il`.
    pub fn view(&self, il: usize) -> View<'_> {
        let ink = self.v_layout == VLayout::InK;
        View {
            k: &self.k[il],
            v: if ink { &self.k[il] } else { &self.v[il] },
            kt: &self.kt,
            vt: &self.vt,
            n_head: self.n_head,
            n_head_kv: self.n_head_kv,
            dk: self.head_dim_k,
            dv: self.head_dim_v,
            k_cell: self.n_head_kv * self.kt.row,
            v_cell: if ink { self.kt.row } else { self.n_head_kv * self.vt.row },
            v_off: if ink { self.v_off } else { 0 },
            v_layout: self.v_layout,
            fa: self.flash_attn,
            scalar: self.scalar,
            head_chunk: self.head_chunk,
        }
    }
}

/// `out[hh·ldo + j] = K(cell c0+j, head hkv) · qrow[hh]` for `j < nt`, `hh < g`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn kq(kern: &Kernels, v: &View, hkv: usize, c0: usize, nt: usize, qb: &[u8], qa: usize, g: usize, out: &mut [f32], ldo: usize) {
    let x = &v.k[c0 * v.k_cell + hkv * v.kt.row..];
    let mut h = 0;
    while h < g {
        let ny = (g - h).min(MAX_NY);
        (kern.gemm[ny - 1])(v.dk, x, v.k_cell, nt, &qb[h * qa..], qa, ny, &mut out[h * ldo..], ldo);
        h += ny;
    }
}

/// Decode V row of `cell`, KV head `hkv` into `dst` (`dv` floats).
#[inline]
fn v_row(v: &View, cell: usize, hkv: usize, dst: &mut [f32]) {
    let src = &v.v[cell * v.v_cell + v.v_off + hkv * v.vt.row..][..v.vt.row];
    match (v.vt.qtype, v.scalar) {
        (QType::F16, false) => k::f16_row(src, dst),
        (QType::F16, true) => k::f16_row_scalar(src, dst),
        _ => (v.vt.fmt.dequantize)(src, dst, v.dv),
    }
}

#[inline]
fn axpy(scalar: bool, a: &mut [f32], w: f32, x: &[f32]) {
    if scalar {
        k::axpy_scalar(a, w, x)
    } else {
        k::axpy(a, w, x)
    }
}

/// Attention of every token and head of the ubatch for layer `il`: `q` is `[n_tokens, n_head · d_k]`, `out`
/// `[n_tokens, n_head · d_v]`; `pos`/`seq` give each token's position and sequence.
#[allow(clippy::too_many_arguments)]
pub fn attention(pool: &ThreadPool, kv: &mut KvCache, il: usize, q: &[f32], pos: &[i32], seq: &[i32], kq_scale: f32, out: &mut [f32]) {
    // The view borrows the cache buffers; the scratch (moved out for the call, no allocation) is written.
    let mut scratch = std::mem::take(&mut kv.scratch);
    attend(pool, &kv.view(il), &kv.cells, &mut scratch, q, pos, seq, kq_scale, out);
    kv.scratch = scratch;
}

/// Attention over any `View` (see `attention`).
#[allow(clippy::too_many_arguments)]
pub fn attend(
    pool: &ThreadPool,
    v: &View,
    cells: &Cells,
    scratch: &mut Scratch,
    q: &[f32],
    pos: &[i32],
    seq: &[i32],
    kq_scale: f32,
    out: &mut [f32],
) {
    let (nh, nkvh, dk, dv, scalar, fa) = (v.n_head, v.n_head_kv, v.dk, v.dv, v.scalar, v.fa);
    let g = nh / nkvh;
    let (n_kv, n_ctx) = (cells.n_kv(), cells.n_ctx());
    let (kern_k, kern_v) = (*v.kt.kern(scalar), *v.vt.kern(scalar));
    let qa = if scalar { v.kt.scalar.act.row_size(dk as u64).unwrap_or(0) as usize } else { v.kt.act_row };
    let (bs, fs) = (scratch.bytes_stride, scratch.f_stride);
    let sb = SyncPtr::new(&mut scratch.bytes);
    let sf = SyncPtr::new(&mut scratch.f);
    let dst = SyncPtr::new(out);
    let n_tokens = pos.len();
    // Head chunks: at most head_chunk heads (scratch, -amb); split further so small batches use every thread.
    let n_split = (2 * pool.n_threads()).div_ceil(n_tokens * nkvh).clamp(1, g);
    let chunk = g.div_ceil(n_split).min(v.head_chunk).max(1);
    let n_chunk = g.div_ceil(chunk);
    pool.run_t(n_tokens * nkvh * n_chunk, |task, th| {
        let (i, hkv, ch) = (task / (nkvh * n_chunk), task / n_chunk % nkvh, task % n_chunk);
        let h0 = hkv * g + ch * chunk;
        let gc = chunk.min(g - ch * chunk);
        let (p, sq) = (pos[i], seq[i] as usize);
        // SAFETY: thread `th` owns its scratch stripes; the task owns the output heads h0..h0+gc of token i.
        let bytes = unsafe { sb.slice(th * bs, bs) };
        let f = unsafe { sf.slice(th * fs, fs) };
        let o = unsafe { dst.slice((i * nh + h0) * dv, gc * dv) };
        let (qb, pb) = bytes.split_at_mut(gc * qa);
        for hh in 0..gc {
            let r = (i * nh + h0 + hh) * dk;
            (kern_k.quantize_act)(&q[r..r + dk], &mut qb[hh * qa..(hh + 1) * qa]);
        }
        if fa {
            let (s, rest) = f.split_at_mut(gc * TILE);
            let (vtile, rest) = rest.split_at_mut(TILE * dv);
            let (acc, rest) = rest.split_at_mut(gc * dv);
            let (mx, rest) = rest.split_at_mut(gc);
            let sum = &mut rest[..gc];
            acc.fill(0.0);
            mx.fill(f32::NEG_INFINITY);
            sum.fill(0.0);
            let mut vis = [false; TILE];
            for c0 in (0..n_kv).step_by(TILE) {
                let nt = TILE.min(n_kv - c0);
                let mut any = false;
                for (j, vi) in vis[..nt].iter_mut().enumerate() {
                    *vi = cells.visible(c0 + j, sq, p);
                    any |= *vi;
                }
                if !any {
                    continue;
                }
                kq(&kern_k, v, hkv, c0, nt, qb, qa, gc, s, TILE);
                for hh in 0..gc {
                    let row = &mut s[hh * TILE..hh * TILE + nt];
                    let mut m = mx[hh];
                    for (x, &vi) in row.iter_mut().zip(&vis[..nt]) {
                        *x = if vi { *x * kq_scale } else { f32::NEG_INFINITY };
                        m = m.max(*x);
                    }
                    let ms = (mx[hh] - m).exp(); // 0 on the first visible tile (mx = −∞)
                    if ms != 1.0 {
                        acc[hh * dv..(hh + 1) * dv].iter_mut().for_each(|a| *a *= ms);
                    }
                    let mut ts = 0.0f32;
                    for x in row.iter_mut() {
                        *x = if *x == f32::NEG_INFINITY { 0.0 } else { (*x - m).exp() };
                        ts += *x;
                    }
                    sum[hh] = sum[hh] * ms + ts;
                    mx[hh] = m;
                }
                for j in (0..nt).filter(|&j| vis[j]) {
                    let vf = &mut vtile[j * dv..(j + 1) * dv];
                    v_row(v, c0 + j, hkv, vf);
                    for hh in 0..gc {
                        axpy(scalar, &mut acc[hh * dv..(hh + 1) * dv], s[hh * TILE + j], vf);
                    }
                }
            }
            for hh in 0..gc {
                let inv = if sum[hh] == 0.0 { 0.0 } else { 1.0 / sum[hh] };
                for (d, &a) in o[hh * dv..(hh + 1) * dv].iter_mut().zip(&acc[hh * dv..(hh + 1) * dv]) {
                    *d = a * inv;
                }
            }
        } else {
            // The reference pads n_kv to 32 cells without FA (spec §1.4): padded cells are masked, and the
            // padding keeps V·P's summation order independent of how the batch was split.
            let n_kv = (n_kv.div_ceil(32) * 32).min(n_ctx);
            let (s, rest) = f.split_at_mut(gc * n_ctx);
            kq(&kern_k, v, hkv, 0, n_kv, qb, qa, gc, s, n_ctx);
            for hh in 0..gc {
                let row = &mut s[hh * n_ctx..hh * n_ctx + n_kv];
                for (c, x) in row.iter_mut().enumerate() {
                    *x = if cells.visible(c, sq, p) { *x * kq_scale } else { f32::NEG_INFINITY };
                }
                ops::softmax(row);
            }
            if v.v_layout == VLayout::Trans {
                let pa = kern_v.act.row_size(n_kv as u64).expect("f16/bf16 rows") as usize;
                for hh in 0..gc {
                    (kern_v.quantize_act)(&s[hh * n_ctx..hh * n_ctx + n_kv], &mut pb[hh * pa..(hh + 1) * pa]);
                }
                // V is transposed: feature row (hkv·dv + d) holds n_ctx cells of 2-byte elements.
                let x = &v.v[hkv * dv * n_ctx * 2..];
                let mut h = 0;
                while h < gc {
                    let ny = (gc - h).min(MAX_NY);
                    (kern_v.gemm[ny - 1])(n_kv, x, n_ctx * 2, dv, &pb[h * pa..], pa, ny, &mut o[h * dv..], dv);
                    h += ny;
                }
            } else {
                // The transposed view without a transposed copy (kv/mla.rs): o[h] = Σ_c P[h][c] · V_c, one
                // decoded row at a time, skipping cells every head of the chunk gives probability 0.
                let vf = &mut rest[..dv];
                o.fill(0.0);
                for c in 0..n_kv {
                    if (0..gc).all(|hh| s[hh * n_ctx + c] == 0.0) {
                        continue;
                    }
                    v_row(v, c, hkv, vf);
                    for hh in 0..gc {
                        axpy(scalar, &mut o[hh * dv..(hh + 1) * dv], s[hh * n_ctx + c], vf);
                    }
                }
            }
        }
    });
}
