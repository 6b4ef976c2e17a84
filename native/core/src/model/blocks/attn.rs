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
use crate::cpu::attn_pv::pv_tile;
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
    /// Most tokens per flash-attention task (`MAX_FA_BLOCK`; results do not depend on it).
    pub fa_block: usize,
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
            fa_block: MAX_FA_BLOCK,
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
    // FA: a task takes a block of up to `nb` tokens, so each K tile feeds nb·chunk query rows of one GEMM call
    // and each V row is decoded once per block instead of once per token. Per token the arithmetic is what it
    // is with one token per task (the GEMM rows are independent, the softmax and V order per row unchanged).
    let nb = if fa { fa_block(n_tokens, nkvh * n_chunk, pool.n_threads(), chunk, dv, qa, bs, fs).min(v.fa_block.max(1)) } else { 1 };
    let n_blk = n_tokens.div_ceil(nb);
    pool.run_t(n_blk * nkvh * n_chunk, |task, th| {
        let (blk, hkv, ch) = (task / (nkvh * n_chunk), task / n_chunk % nkvh, task % n_chunk);
        let h0 = hkv * g + ch * chunk;
        let gc = chunk.min(g - ch * chunk);
        let (i0, nbt) = (blk * nb, nb.min(n_tokens - blk * nb));
        // SAFETY: thread `th` owns its scratch stripes.
        let bytes = unsafe { sb.slice(th * bs, bs) };
        let f = unsafe { sf.slice(th * fs, fs) };
        let (qb, pb) = bytes.split_at_mut(nbt * gc * qa);
        for b in 0..nbt {
            for hh in 0..gc {
                let r = ((i0 + b) * nh + h0 + hh) * dk;
                let row = b * gc + hh;
                (kern_k.quantize_act)(&q[r..r + dk], &mut qb[row * qa..(row + 1) * qa]);
            }
        }
        if fa {
            let rows = nbt * gc;
            let (s, rest) = f.split_at_mut(rows * TILE);
            let (vtile, rest) = rest.split_at_mut(TILE * dv);
            let (acc, rest) = rest.split_at_mut(rows * dv);
            let (mx, rest) = rest.split_at_mut(rows);
            let sum = &mut rest[..rows];
            acc.fill(0.0);
            mx.fill(f32::NEG_INFINITY);
            sum.fill(0.0);
            let mut vis = [[false; TILE]; MAX_FA_BLOCK];
            for c0 in (0..n_kv).step_by(TILE) {
                let nt = TILE.min(n_kv - c0);
                let mut seen = [false; MAX_FA_BLOCK];
                for b in 0..nbt {
                    let (p, sq) = (pos[i0 + b], seq[i0 + b] as usize);
                    for (j, vi) in vis[b][..nt].iter_mut().enumerate() {
                        *vi = cells.visible(c0 + j, sq, p);
                        seen[b] |= *vi;
                    }
                }
                if !seen[..nbt].iter().any(|&x| x) {
                    continue;
                }
                kq(&kern_k, v, hkv, c0, nt, qb, qa, rows, s, TILE);
                for b in (0..nbt).filter(|&b| seen[b]) {
                    for hh in 0..gc {
                        let r = b * gc + hh;
                        let row = &mut s[r * TILE..r * TILE + nt];
                        let mut m = mx[r];
                        for (x, &vi) in row.iter_mut().zip(&vis[b][..nt]) {
                            *x = if vi { *x * kq_scale } else { f32::NEG_INFINITY };
                            m = m.max(*x);
                        }
                        let ms = (mx[r] - m).exp(); // 0 on the first visible tile (mx = −∞)
                        if ms != 1.0 {
                            acc[r * dv..(r + 1) * dv].iter_mut().for_each(|a| *a *= ms);
                        }
                        let mut ts = 0.0f32;
                        for x in row.iter_mut() {
                            *x = if *x == f32::NEG_INFINITY { 0.0 } else { (*x - m).exp() };
                            ts += *x;
                        }
                        sum[r] = sum[r] * ms + ts;
                        mx[r] = m;
                    }
                }
                if scalar {
                    for j in (0..nt).filter(|&j| (0..nbt).any(|b| vis[b][j])) {
                        let vf = &mut vtile[j * dv..(j + 1) * dv];
                        v_row(v, c0 + j, hkv, vf);
                        for b in (0..nbt).filter(|&b| vis[b][j]) {
                            for hh in 0..gc {
                                let r = b * gc + hh;
                                axpy(scalar, &mut acc[r * dv..(r + 1) * dv], s[r * TILE + j], vf);
                            }
                        }
                    }
                } else {
                    // Every row × cell of the tile in one register-blocked pass: masked cells carry p = 0 (a
                    // no-op FMA), rows of tokens that see nothing here are zeroed; otherwise the same FMAs in the
                    // same order as the axpy loop above (cpu/attn_pv.rs).
                    for j in 0..nt {
                        v_row(v, c0 + j, hkv, &mut vtile[j * dv..(j + 1) * dv]);
                    }
                    for b in (0..nbt).filter(|&b| !seen[b]) {
                        s[b * gc * TILE..(b + 1) * gc * TILE].fill(0.0);
                    }
                    pv_tile(acc, dv, s, TILE, vtile, rows, nt);
                }
            }
            for b in 0..nbt {
                // SAFETY: the task owns the output heads h0..h0+gc of tokens i0..i0+nbt.
                let o = unsafe { dst.slice(((i0 + b) * nh + h0) * dv, gc * dv) };
                for hh in 0..gc {
                    let r = b * gc + hh;
                    let inv = if sum[r] == 0.0 { 0.0 } else { 1.0 / sum[r] };
                    for (d, &a) in o[hh * dv..(hh + 1) * dv].iter_mut().zip(&acc[r * dv..(r + 1) * dv]) {
                        *d = a * inv;
                    }
                }
            }
        } else {
            let i = i0;
            let (p, sq) = (pos[i], seq[i] as usize);
            // SAFETY: the task owns the output heads h0..h0+gc of token i.
            let o = unsafe { dst.slice((i * nh + h0) * dv, gc * dv) };
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

/// Most tokens one FA task takes (`vis` rows on the stack).
pub const MAX_FA_BLOCK: usize = 8;

/// Tokens per FA task: as many as the per-thread scratch holds (scores, V tile, accumulators and softmax state
/// for nb·chunk rows in `fs` floats; encoded queries in `bs` bytes), at most MAX_FA_BLOCK, and few enough that
/// every thread still gets work.
#[allow(clippy::too_many_arguments)]
fn fa_block(n_tokens: usize, tasks_per_token: usize, n_threads: usize, chunk: usize, dv: usize, qa: usize, bs: usize, fs: usize) -> usize {
    let by_f = fs.saturating_sub(TILE * dv + 16) / (chunk * (TILE + dv + 2)).max(1);
    let by_b = bs.saturating_sub(64) / (chunk * qa).max(1);
    let by_threads = (n_tokens * tasks_per_token).div_ceil(2 * n_threads.max(1)).max(1);
    by_f.min(by_b).min(by_threads).clamp(1, MAX_FA_BLOCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token blocks in flash attention change nothing: every token's output is bit-identical to one token per
    /// task, for f16 and q8_0 caches, GQA, a causal mask and two sequences.
    #[test]
    fn fa_token_blocks_are_bit_identical() {
        let (n_ctx, nh, nkvh, d) = (1024, 4, 2, 64);
        let pool = ThreadPool::new(2);
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            ((rng >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for t in [QType::F16, QType::Q8_0] {
            let mut kv = KvCache::new(1, n_ctx, nh, nkvh, d, d, t, t, true, 2).unwrap();
            let n = 40;
            let (pos, seq): (Vec<i32>, Vec<i32>) = (0..n).map(|i| ((i / 2) as i32, (i % 2) as i32)).unzip();
            for c in 0..n {
                kv.cells.occupy(c, pos[c], seq[c] as usize);
                let (kr, vr): (Vec<f32>, Vec<f32>) = (0..nkvh * d).map(|_| (next(), next())).unzip();
                kv.write(0, c, &kr, &vr);
            }
            let q: Vec<f32> = (0..n * nh * d).map(|_| next()).collect();
            let run = |kv: &mut KvCache, blocks: usize| {
                let mut out = vec![0.0f32; n * nh * d];
                let mut scratch = std::mem::take(&mut kv.scratch);
                let view = View { fa_block: blocks, ..kv.view(0) };
                attend(&pool, &view, &kv.cells, &mut scratch, &q, &pos, &seq, 0.125, &mut out);
                kv.scratch = scratch;
                out
            };
            let (bs, fs) = (kv.scratch.bytes_stride, kv.scratch.f_stride);
            let qa = kv.kt.act_row;
            assert!(fa_block(n, nkvh, 2, nh / nkvh, d, qa, bs, fs) >= 4, "the scratch must allow several tokens per task");
            let one = run(&mut kv, 1);
            let eight = run(&mut kv, MAX_FA_BLOCK);
            assert!(one.iter().all(|x| x.is_finite()) && one.iter().any(|&x| x != 0.0));
            assert_eq!(one.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), eight.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), "{t:?}");
        }
    }
}
