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
//! Threads split (token, KV head) pairs; each task handles the `n_head / n_head_kv` query heads of the group
//! (one K/V row read serves them all). Scratch comes from `KvCache::scratch` (allocated at creation).
//! `KvCache::scalar` switches every kernel to its scalar twin.

use crate::cpu::attn as k;
use crate::cpu::ops;
use crate::cpu::pool::{SyncPtr, ThreadPool};
use crate::cpu::table::{Kernels, MAX_NY};
use crate::kv::{KvCache, TILE};
use crate::quant::QType;

/// `out[hh·ldo + j] = K(cell c0+j, head hkv) · qrow[hh]` for `j < nt`, `hh < g`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn kq(
    kern: &Kernels,
    dk: usize,
    kb: &[u8],
    krow: usize,
    nkvh: usize,
    hkv: usize,
    c0: usize,
    nt: usize,
    qb: &[u8],
    qa: usize,
    g: usize,
    out: &mut [f32],
    ldo: usize,
) {
    let x = &kb[(c0 * nkvh + hkv) * krow..];
    let mut h = 0;
    while h < g {
        let ny = (g - h).min(MAX_NY);
        (kern.gemm[ny - 1])(dk, x, nkvh * krow, nt, &qb[h * qa..], qa, ny, &mut out[h * ldo..], ldo);
        h += ny;
    }
}

/// Attention of every token and head of the ubatch for layer `il`: `q` is `[n_tokens, n_head · d_k]`, `out`
/// `[n_tokens, n_head · d_v]`; `pos`/`seq` give each token's position and sequence.
#[allow(clippy::too_many_arguments)]
pub fn attention(pool: &ThreadPool, kv: &mut KvCache, il: usize, q: &[f32], pos: &[i32], seq: &[i32], kq_scale: f32, out: &mut [f32]) {
    let KvCache {
        k: kbufs, v: vbufs, n_head, n_head_kv, head_dim_k: dk, head_dim_v: dv, kt, vt, flash_attn, scalar, cells, scratch, ..
    } = kv;
    let (nh, nkvh, dk, dv, scalar, fa) = (*n_head, *n_head_kv, *dk, *dv, *scalar, *flash_attn);
    let g = nh / nkvh;
    let (kb, vb) = (&kbufs[il][..], &vbufs[il][..]);
    let cells = &*cells;
    let (n_kv, n_ctx) = (cells.n_kv(), cells.n_ctx());
    let (kern_k, kern_v) = (*kt.kern(scalar), *vt.kern(scalar));
    let (krow, vrow, qa) = (kt.row, vt.row, kt.act_row);
    let (type_v, dequant_v) = (vt.qtype, vt.fmt.dequantize);
    let (bs, fs) = (scratch.bytes_stride, scratch.f_stride);
    let sb = SyncPtr::new(&mut scratch.bytes);
    let sf = SyncPtr::new(&mut scratch.f);
    let dst = SyncPtr::new(out);
    let n_tokens = pos.len();
    pool.run_t(n_tokens * nkvh, |task, th| {
        let (i, hkv) = (task / nkvh, task % nkvh);
        let h0 = hkv * g;
        let (p, sq) = (pos[i], seq[i] as usize);
        // SAFETY: thread `th` owns its scratch stripes; the task owns the output heads h0..h0+g of token i.
        let bytes = unsafe { sb.slice(th * bs, bs) };
        let f = unsafe { sf.slice(th * fs, fs) };
        let o = unsafe { dst.slice((i * nh + h0) * dv, g * dv) };
        let (qb, pb) = bytes.split_at_mut(g * qa);
        for hh in 0..g {
            let r = (i * nh + h0 + hh) * dk;
            (kern_k.quantize_act)(&q[r..r + dk], &mut qb[hh * qa..(hh + 1) * qa]);
        }
        if fa {
            let (s, rest) = f.split_at_mut(g * TILE);
            let (vtile, rest) = rest.split_at_mut(TILE * dv);
            let (acc, rest) = rest.split_at_mut(g * dv);
            let (mx, rest) = rest.split_at_mut(g);
            let sum = &mut rest[..g];
            acc.fill(0.0);
            mx.fill(f32::NEG_INFINITY);
            sum.fill(0.0);
            let mut vis = [false; TILE];
            for c0 in (0..n_kv).step_by(TILE) {
                let nt = TILE.min(n_kv - c0);
                let mut any = false;
                for (j, v) in vis[..nt].iter_mut().enumerate() {
                    *v = cells.visible(c0 + j, sq, p);
                    any |= *v;
                }
                if !any {
                    continue;
                }
                kq(&kern_k, dk, kb, krow, nkvh, hkv, c0, nt, qb, qa, g, s, TILE);
                for hh in 0..g {
                    let row = &mut s[hh * TILE..hh * TILE + nt];
                    let mut m = mx[hh];
                    for (x, &v) in row.iter_mut().zip(&vis[..nt]) {
                        *x = if v { *x * kq_scale } else { f32::NEG_INFINITY };
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
                    let src = &vb[((c0 + j) * nkvh + hkv) * vrow..][..vrow];
                    let vf = &mut vtile[j * dv..(j + 1) * dv];
                    match (type_v, scalar) {
                        (QType::F16, false) => k::f16_row(src, vf),
                        (QType::F16, true) => k::f16_row_scalar(src, vf),
                        _ => dequant_v(src, vf, dv),
                    }
                    for hh in 0..g {
                        let w = s[hh * TILE + j];
                        let a = &mut acc[hh * dv..(hh + 1) * dv];
                        if scalar {
                            k::axpy_scalar(a, w, vf)
                        } else {
                            k::axpy(a, w, vf)
                        }
                    }
                }
            }
            for hh in 0..g {
                let inv = if sum[hh] == 0.0 { 0.0 } else { 1.0 / sum[hh] };
                for (d, &a) in o[hh * dv..(hh + 1) * dv].iter_mut().zip(&acc[hh * dv..(hh + 1) * dv]) {
                    *d = a * inv;
                }
            }
        } else {
            // The reference pads n_kv to 32 cells without FA (spec §1.4): padded cells are masked, and the
            // padding keeps V·P's summation order independent of how the batch was split.
            let n_kv = (n_kv.div_ceil(32) * 32).min(n_ctx);
            let s = &mut f[..g * n_ctx];
            kq(&kern_k, dk, kb, krow, nkvh, hkv, 0, n_kv, qb, qa, g, s, n_ctx);
            let pa = kern_v.act.row_size(n_kv as u64).expect("f16/bf16 rows") as usize;
            for hh in 0..g {
                let row = &mut s[hh * n_ctx..hh * n_ctx + n_kv];
                for (c, x) in row.iter_mut().enumerate() {
                    *x = if cells.visible(c, sq, p) { *x * kq_scale } else { f32::NEG_INFINITY };
                }
                ops::softmax(row);
                (kern_v.quantize_act)(row, &mut pb[hh * pa..(hh + 1) * pa]);
            }
            // V is transposed: feature row (hkv·dv + d) holds n_ctx cells of 2-byte elements.
            let x = &vb[hkv * dv * n_ctx * 2..];
            let mut h = 0;
            while h < g {
                let ny = (g - h).min(MAX_NY);
                (kern_v.gemm[ny - 1])(n_kv, x, n_ctx * 2, dv, &pb[h * pa..], pa, ny, &mut o[h * dv..], dv);
                h += ny;
            }
        }
    });
}
