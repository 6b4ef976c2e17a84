//! Row-interleaved `_R4/_R8/_R16` variants that are pure re-arrangements of a base type (spec/quants.md §8).
//!
//! Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp (`repack_q4_0`, `repack_q8_0`, `repack_q5_0`,
//! `repack_q6_0`, `repack_iq4_nl`, `repack_iq4_xs`, `repack_mxfp4`, `repack_q2_k` … `repack_q6_k`,
//! `repack_iq2_xxs`, `repack_iq2_xs`, `repack_iq2_s`, `repack_iq3_xxs`, `repack_iq3_s`, `repack_iq2_k`,
//! `repack_iq3_k`, `repack_iq4_k`, `repack_iq5_k`, `repack_iq4_ks`, `repack_iq5_ks`, `repack_iq2_bn`,
//! `repack_bf16`, `QHelper`, `quantize_repack`, `quantize_*_r4/_r8`), ggml/src/ggml-common.h (block structs).
//!
//! Why one table of bit moves per type: every repacker above is a bijection between the bits of `n` base rows
//! and the bits of one interleaved group (plus, for the IQ2_XXS/IQ2_XS/IQ3_XXS families, a 7-bit sign-code
//! substitution). Describing each type once as a list of `(base bit, interleaved bit, width)` moves gives both
//! directions from the same description, so `unpack` is the exact inverse of `repack` by construction and a
//! layout mistake can only show up as a golden mismatch, never as an asymmetric pair of functions.
//! Dequantize = unpack + the base format's dequantize; quantize = base quantize (with ik's `QHelper` weight
//! guard where the reference uses it) + repack — exactly what ik's `quantize_*_r4` do.

use super::interleave_iqk::{map_iq2_k_r4, map_iq3_k_r4, map_iq4_k_r4, map_iq4_ks_r4, map_iq5_k_r4, map_iq5_ks_r4};
use super::Format;
use crate::quant::QType;

/// Receives one move: `width` bits from bit `b` of the base group to bit `i` of the interleaved group. Bit
/// numbering is `8·byte + bit` (little-endian fields stay contiguous).
pub(super) type Mv<'a> = &'a mut dyn FnMut(usize, usize, usize);

/// Describes all moves of one group of `n` base rows of `ne0` columns (`rs` = base row bytes).
pub(super) type MapFn = fn(ne0: usize, rs: usize, m: Mv);

/// Per-type description.
pub(super) struct Spec {
    pub q: QType,
    pub base: QType,
    pub map: MapFn,
    /// Sign-code substitution applied to the interleaved group after the moves (forward) or before them
    /// (inverse).
    pub fix: Option<fn(il: &mut [u8], ne0: usize, fwd: bool)>,
    /// ik wraps the base quantizer in `QHelper` with this block size (degenerate imatrix blocks → 1e-9).
    pub helper_block: Option<usize>,
}

#[inline]
fn get_bit(b: &[u8], pos: usize) -> u8 {
    (b[pos >> 3] >> (pos & 7)) & 1
}

#[inline]
fn copy_bits(src: &[u8], s: usize, dst: &mut [u8], d: usize, n: usize) {
    if s & 7 == 0 && d & 7 == 0 && n & 7 == 0 {
        let (s, d, n) = (s >> 3, d >> 3, n >> 3);
        dst[d..d + n].copy_from_slice(&src[s..s + n]);
        return;
    }
    for j in 0..n {
        let v = get_bit(src, s + j);
        let p = d + j;
        dst[p >> 3] |= v << (p & 7);
    }
}

/// Base rows (`n` rows, `n·rs` bytes) → one interleaved group of the same size.
pub(super) fn repack_group(sp: &Spec, ne0: usize, base: &[u8], il: &mut [u8]) {
    let rs = base.len() / sp.q.traits().interleave;
    debug_assert_eq!(base.len(), il.len());
    il.fill(0);
    (sp.map)(ne0, rs, &mut |b, i, n| copy_bits(base, b, il, i, n));
    if let Some(f) = sp.fix {
        f(il, ne0, true);
    }
}

/// One interleaved group → its `n` base rows.
pub(super) fn unpack_group(sp: &Spec, ne0: usize, il: &[u8], base: &mut [u8]) {
    let rs = base.len() / sp.q.traits().interleave;
    debug_assert_eq!(base.len(), il.len());
    base.fill(0);
    match sp.fix {
        Some(f) => {
            let mut tmp = il.to_vec();
            f(&mut tmp, ne0, false);
            (sp.map)(ne0, rs, &mut |b, i, n| copy_bits(&tmp, i, base, b, n));
        }
        None => (sp.map)(ne0, rs, &mut |b, i, n| copy_bits(il, i, base, b, n)),
    }
}

// ------------------------------------------------------------------ shared packings (spec §8.2)

/// Byte move.
#[inline]
pub(super) fn by(m: Mv, b: usize, i: usize, n: usize) {
    m(8 * b, 8 * i, 8 * n)
}

/// Layout A for row `k`: 4-bit weights `w` (0…31) of one 32-block whose low-nibble bit position in the base
/// group is `lo(w)`, to the 64 bytes at `il`.
pub(super) fn layout_a(m: Mv, k: usize, il: usize, lo: &dyn Fn(usize) -> usize) {
    const P: [(usize, usize); 4] = [(0, 0), (16, 16), (32, 4), (48, 20)];
    for (off, w0) in P {
        for i in 0..4 {
            let byte = 8 * (il + off + 4 * k + i);
            m(lo(w0 + i), byte, 4);
            m(lo(w0 + i + 8), byte + 4, 4);
        }
    }
}

/// Layout B for row `k`: 2-bit weights (0…31) at base bit `b2(w)`, to the 32 bytes at `il`.
pub(super) fn layout_b(m: Mv, k: usize, il: usize, b2: &dyn Fn(usize) -> usize) {
    for i in 0..4 {
        for s in 0..4 {
            m(b2(i + 4 * s), 8 * (il + 4 * k + i) + 2 * s, 2);
            m(b2(16 + i + 4 * s), 8 * (il + 16 + 4 * k + i) + 2 * s, 2);
        }
    }
}

/// One extra bit per weight, `H[4k + i]` bit `s` = weight `i + order[s]`, to the 16 bytes at `il`.
pub(super) fn layout_h(m: Mv, k: usize, il: usize, order: [usize; 8], b1: &dyn Fn(usize) -> usize) {
    for i in 0..4 {
        for (s, &o) in order.iter().enumerate() {
            m(b1(i + o), 8 * (il + 4 * k + i) + s, 1);
        }
    }
}

pub(super) const H_SEQ: [usize; 8] = [0, 4, 8, 12, 16, 20, 24, 28];
pub(super) const H_Q5K: [usize; 8] = [0, 8, 4, 12, 16, 24, 20, 28];
pub(super) const H_IQ5K: [usize; 8] = [0, 8, 16, 24, 4, 12, 20, 28];

/// N16: weight `w` (0…31) of the 16 bytes at `q` — low nibble `w < 16`.
#[inline]
pub(super) fn n16(q: usize, w: usize) -> usize {
    8 * (q + w % 16) + 4 * (w / 16)
}

/// C64: weight `e` (0…255) of 128 nibble bytes at `q`.
#[inline]
pub(super) fn c64(q: usize, e: usize) -> usize {
    8 * (q + 32 * (e / 64) + e % 32) + 4 * ((e % 64) / 32)
}

/// C32: 2-bit weight `e` (0…255) of 64 bytes at `q`.
#[inline]
pub(super) fn c32(q: usize, e: usize) -> usize {
    8 * (q + 32 * (e / 128) + e % 32) + 2 * ((e % 128) / 32)
}

// ------------------------------------------------------------------ 32-weight block types (spec §8.3)

fn map_q4_0_r8(ne0: usize, rs: usize, m: Mv) {
    for ib in 0..ne0 / 32 {
        let y = 144 * ib;
        for k in 0..8 {
            let x = k * rs + 18 * ib;
            by(m, x, y + 2 * k, 2);
            for l in 0..4 {
                for i in 0..4 {
                    by(m, x + 2 + 4 * l + i, y + 16 + 32 * l + 4 * k + i, 1);
                }
            }
        }
    }
}

fn map_mxfp4_r8(ne0: usize, rs: usize, m: Mv) {
    for ib in 0..ne0 / 32 {
        let y = 136 * ib;
        for k in 0..8 {
            let x = k * rs + 17 * ib;
            by(m, x, y + k, 1);
            for l in 0..4 {
                for i in 0..4 {
                    by(m, x + 1 + 4 * l + i, y + 8 + 32 * l + 4 * k + i, 1);
                }
            }
        }
    }
}

fn map_q8_0_r8(ne0: usize, rs: usize, m: Mv) {
    for ib in 0..ne0 / 32 {
        let y = 272 * ib;
        for k in 0..8 {
            let x = k * rs + 34 * ib;
            by(m, x, y + 2 * k, 2);
            for l in 0..4 {
                for i in 0..4 {
                    by(m, x + 2 + 4 * l + i, y + 16 + 32 * l + 4 * k + i, 1);
                    by(m, x + 18 + 4 * l + i, y + 144 + 32 * l + 4 * k + i, 1);
                }
            }
        }
    }
}

fn map_iq4_nl_r4(ne0: usize, rs: usize, m: Mv) {
    for ib in 0..ne0 / 32 {
        let y = 72 * ib;
        for k in 0..4 {
            let x = k * rs + 18 * ib;
            by(m, x, y + 2 * k, 2);
            layout_a(m, k, y + 8, &|w| n16(x + 2, w));
        }
    }
}

fn map_q5_0_r4(ne0: usize, rs: usize, m: Mv) {
    for ib in 0..ne0 / 32 {
        let y = 88 * ib;
        for k in 0..4 {
            let x = k * rs + 22 * ib;
            by(m, x, y + 2 * k, 2);
            layout_a(m, k, y + 24, &|w| n16(x + 6, w));
            // 5th bits: qh[4k+i] bit l = weight i+ll, bit l+4 = weight i+ll+8 (ll = 0, 16, 4, 20).
            for l in 0..4 {
                let ll = 16 * (l % 2) + 4 * (l / 2);
                for i in 0..4 {
                    m(8 * (x + 2) + i + ll, 8 * (y + 8 + 4 * k + i) + l, 1);
                    m(8 * (x + 2) + i + ll + 8, 8 * (y + 8 + 4 * k + i) + l + 4, 1);
                }
            }
        }
    }
}

fn map_q6_0_r4(ne0: usize, rs: usize, m: Mv) {
    // Base high 2 bits of weight e: qh[e%8] bits 4·((e%16)/8) + 2·(e/16).
    let hb = |x: usize, e: usize| 8 * (x + 2 + e % 8) + 4 * ((e % 16) / 8) + 2 * (e / 16);
    for ib in 0..ne0 / 32 {
        let y = 104 * ib;
        for k in 0..4 {
            let x = k * rs + 26 * ib;
            by(m, x, y + 2 * k, 2);
            layout_a(m, k, y + 40, &|w| n16(x + 10, w));
            for l in 0..4 {
                let ll = 16 * (l % 2) + 4 * (l / 2);
                for i in 0..4 {
                    let q = 8 * (y + 8 + 4 * k + i + 16 * (l % 2)) + 2 * (l / 2);
                    m(hb(x, i + ll), q, 2);
                    m(hb(x, i + ll + 8), q + 4, 2);
                }
            }
        }
    }
}

// ------------------------------------------------------------------ 256-weight super-block types (§8.4)

fn map_iq4_xs_r8(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 1088 * ibl;
        for k in 0..8 {
            let x = k * rs + 136 * ibl;
            by(m, x, y + 2 * k, 2);
            for ib in 0..8 {
                let i = 8 * ib + k;
                m(8 * (x + 4 + ib / 2) + 4 * (ib % 2), 8 * (y + 32 + i % 32) + 4 * (i / 32), 4);
                m(8 * (x + 2) + 2 * ib, 8 * (y + 16 + i % 16) + 2 * (i / 16), 2);
                for l in 0..4 {
                    for j in 0..4 {
                        let q = 8 * (y + 64 + 128 * ib + 32 * l + 4 * k + j);
                        m(n16(x + 8 + 16 * ib, 8 * l + j), q, 4);
                        m(n16(x + 8 + 16 * ib, 8 * l + j + 4), q + 4, 4);
                    }
                }
            }
        }
    }
}

/// Bit segments (position, width) of the 6-bit scale (`min = false`) or min of 32-block `j` in the 12 packed
/// Q4_K/Q5_K scale bytes at `s` (ggml `get_scale_min_k4`).
pub(super) fn k4_scale(s: usize, j: usize, min: bool) -> [(usize, usize); 2] {
    match (j < 4, min) {
        (true, false) => [(8 * (s + j), 6), (0, 0)],
        (true, true) => [(8 * (s + j + 4), 6), (0, 0)],
        (false, false) => [(8 * (s + j + 4), 4), (8 * (s + j - 4) + 6, 2)],
        (false, true) => [(8 * (s + j + 4) + 4, 4), (8 * (s + j) + 6, 2)],
    }
}

/// Scales/mins of the Q4_K_R4/Q5_K_R4 headers (scales_h @16, scales_l @32).
pub(super) fn k4_scales_r4(m: Mv, x: usize, y: usize, k: usize) {
    for ib in 0..8 {
        let is = 4 * ib + k;
        let [d0, d1] = k4_scale(x + 4, ib, false);
        let [m0, m1] = k4_scale(x + 4, ib, true);
        let h = 8 * (y + 16 + is % 16) + 4 * (is / 16);
        if ib < 4 {
            m(d0.0, 8 * (y + 32 + is), 4);
            m(d0.0 + 4, h, 2);
            m(m0.0, 8 * (y + 32 + is) + 4, 4);
            m(m0.0 + 4, h + 2, 2);
        } else {
            m(d0.0, 8 * (y + 32 + is), 4);
            m(d1.0, h, 2);
            m(m0.0, 8 * (y + 32 + is) + 4, 4);
            m(m1.0, h + 2, 2);
        }
    }
}

fn map_q4_k_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 576 * ibl;
        for k in 0..4 {
            let x = k * rs + 144 * ibl;
            by(m, x, y + 2 * k, 2);
            by(m, x + 2, y + 8 + 2 * k, 2);
            k4_scales_r4(m, x, y, k);
            for ib in 0..8 {
                layout_a(m, k, y + 64 + 64 * ib, &|w| c64(x + 16, 32 * ib + w));
            }
        }
    }
}

fn map_q5_k_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 704 * ibl;
        for k in 0..4 {
            let x = k * rs + 176 * ibl;
            by(m, x, y + 2 * k, 2);
            by(m, x + 2, y + 8 + 2 * k, 2);
            k4_scales_r4(m, x, y, k);
            for ib in 0..8 {
                layout_a(m, k, y + 192 + 64 * ib, &|w| c64(x + 48, 32 * ib + w));
                let e0 = 32 * ib;
                layout_h(m, k, y + 64 + 16 * ib, H_Q5K, &|w| 8 * (x + 16 + (e0 + w) % 32) + (e0 + w) / 32);
            }
        }
    }
}

fn map_q6_k_r4(ne0: usize, rs: usize, m: Mv) {
    // Q6_K weight e: half n, column l, quarter j → ql[64n + l + 32(j%2)] nibble j/2, qh[32n + l] bits 2j.
    let lo = |x: usize, e: usize| {
        let (n, r) = (e / 128, e % 128);
        8 * (x + 64 * n + r % 32 + 32 * ((r / 32) % 2)) + 4 * (r / 64)
    };
    let hi = |x: usize, e: usize| {
        let (n, r) = (e / 128, e % 128);
        8 * (x + 128 + 32 * n + r % 32) + 2 * (r / 32)
    };
    for ibl in 0..ne0 / 256 {
        let y = 840 * ibl;
        for k in 0..4 {
            let x = k * rs + 210 * ibl;
            by(m, x + 208, y + 2 * k, 2);
            for ib in 0..8 {
                by(m, x + 192 + 2 * ib, y + 8 + 8 * ib + k, 1);
                by(m, x + 193 + 2 * ib, y + 8 + 8 * ib + k + 4, 1);
                let e0 = 32 * ib;
                layout_a(m, k, y + 328 + 64 * ib, &|w| lo(x, e0 + w));
                for i in 0..4 {
                    for (s, o) in [0usize, 8, 4, 12].into_iter().enumerate() {
                        m(hi(x, e0 + i + o), 8 * (y + 72 + 32 * ib + 4 * k + i) + 2 * s, 2);
                        m(hi(x, e0 + 16 + i + o), 8 * (y + 72 + 32 * ib + 16 + 4 * k + i) + 2 * s, 2);
                    }
                }
            }
        }
    }
}

fn map_q3_k_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 440 * ibl;
        for k in 0..4 {
            let x = k * rs + 110 * ibl;
            by(m, x + 108, y + 2 * k, 2);
            for ib in 0..8 {
                for h in 0..2 {
                    let s = 2 * ib + h; // base 16-weight scale index
                    let is = 8 * ib + k + 4 * h;
                    let lo = if s < 8 { 8 * (x + 96 + s) } else { 8 * (x + 96 + s - 8) + 4 };
                    m(lo, 8 * (y + 24 + is % 32) + 4 * (is / 32), 4);
                    m(8 * (x + 104 + s % 4) + 2 * (s / 4), 8 * (y + 8 + is % 16) + 2 * (is / 16), 2);
                }
                let e0 = 32 * ib;
                layout_b(m, k, y + 184 + 32 * ib, &|w| c32(x + 32, e0 + w));
                layout_h(m, k, y + 56 + 16 * ib, H_SEQ, &|w| {
                    let e = e0 + w;
                    8 * (x + e % 32) + e / 32
                });
            }
        }
    }
}

fn map_q2_k_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 336 * ibl;
        for k in 0..4 {
            let x = k * rs + 84 * ibl;
            by(m, x + 80, y + 2 * k, 2);
            by(m, x + 82, y + 8 + 2 * k, 2);
            for j in 0..16 {
                by(m, x + j, y + 16 + 4 * j + k, 1);
            }
            for ib in 0..8 {
                layout_b(m, k, y + 80 + 32 * ib, &|w| c32(x + 16, 32 * ib + w));
            }
        }
    }
}

fn map_iq2_xxs_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 264 * ibl;
        for k in 0..4 {
            let x = k * rs + 66 * ibl;
            by(m, x, y + 2 * k, 2);
            for ib in 0..8 {
                let b = x + 2 + 8 * ib;
                for i in 0..4 {
                    by(m, b + i, y + 136 + 16 * ib + 4 * k + i, 1);
                }
                sas_moves(m, b + 4, y + 8 + 4 * (4 * ib + k));
            }
        }
    }
}

/// Sign/scale word: base u32 (4 × 7-bit sign codes, 4-bit scale at bits 28…31) → 4 bytes of
/// `(code << 1) | scale bit g` (the code is scrambled afterwards by `fix_sas`).
fn sas_moves(m: Mv, b: usize, i: usize) {
    for g in 0..4 {
        m(8 * b + 7 * g, 8 * (i + g) + 1, 7);
        m(8 * b + 28 + g, 8 * (i + g), 1);
    }
}

fn fix_sas(il: &mut [u8], ne0: usize, fwd: bool, bytes: usize) {
    let n = il.len() / 4 / (ne0 / 256); // per-row super-block bytes
    for ibl in 0..ne0 / 256 {
        for b in &mut il[ibl * 4 * n + 8..ibl * 4 * n + 8 + bytes] {
            *b = (scramble((*b >> 1) & 127, fwd) << 1) | (*b & 1);
        }
    }
}

fn fix_iq2_xxs(il: &mut [u8], ne0: usize, fwd: bool) {
    fix_sas(il, ne0, fwd, 128)
}

fn fix_iq3_xxs(il: &mut [u8], ne0: usize, fwd: bool) {
    fix_sas(il, ne0, fwd, 128)
}

fn fix_iq2_xs(il: &mut [u8], ne0: usize, fwd: bool) {
    for ibl in 0..ne0 / 256 {
        for j in 0..128 {
            let o = 296 * ibl + 8 + 2 * j;
            let v = u16::from_le_bytes([il[o], il[o + 1]]);
            let t = scramble((v >> 9) as u8, fwd) as u16;
            il[o..o + 2].copy_from_slice(&((v & 511) | (t << 9)).to_le_bytes());
        }
    }
}

/// ik `scrambled_sign` (forward) and its inverse: `t` with `((t << 1) ^ t) & 0xFF == ksigns_iq2xs[s]`.
fn scramble(s: u8, fwd: bool) -> u8 {
    const T: [u8; 128] = {
        let mut t = [0u8; 128];
        let mut s = 0;
        while s < 128 {
            let ks = (s as u8) | (((s as u32).count_ones() as u8 & 1) << 7);
            let mut c = 0u8;
            while c < 128 {
                if ((c << 1) ^ c) == ks {
                    t[s] = c;
                }
                c += 1;
            }
            s += 1;
        }
        t
    };
    const INV: [u8; 128] = {
        let mut inv = [0u8; 128];
        let mut s = 0;
        while s < 128 {
            inv[T[s] as usize] = s as u8;
            s += 1;
        }
        inv
    };
    if fwd {
        T[(s & 127) as usize]
    } else {
        INV[(s & 127) as usize]
    }
}

fn map_iq2_xs_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 296 * ibl;
        for k in 0..4 {
            let x = k * rs + 74 * ibl;
            by(m, x, y + 2 * k, 2);
            for ib in 0..8 {
                for i in 0..4 {
                    by(m, x + 2 + 2 * (4 * ib + i), y + 8 + 2 * (16 * ib + 4 * k + i), 2);
                }
                by(m, x + 66 + ib, y + 264 + 4 * ib + k, 1);
            }
        }
    }
}

fn map_iq2_s_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 328 * ibl;
        for k in 0..4 {
            let x = k * rs + 82 * ibl;
            by(m, x, y + 2 * k, 2);
            for ib in 0..8 {
                by(m, x + 74 + ib, y + 296 + 4 * ib + k, 1);
                by(m, x + 66 + ib, y + 136 + 4 * ib + k, 1);
                for i in 0..4 {
                    by(m, x + 2 + 4 * ib + i, y + 8 + 16 * ib + 4 * k + i, 1);
                    by(m, x + 34 + 4 * ib + i, y + 168 + 16 * ib + 4 * k + i, 1);
                }
            }
        }
    }
}

fn map_iq3_xxs_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 392 * ibl;
        for k in 0..4 {
            let x = k * rs + 98 * ibl;
            by(m, x, y + 2 * k, 2);
            for ib in 0..8 {
                by(m, x + 2 + 8 * ib, y + 136 + 32 * ib + 8 * k, 8);
                sas_moves(m, x + 66 + 4 * ib, y + 8 + 4 * (4 * ib + k));
            }
        }
    }
}

fn map_iq3_s_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 440 * ibl;
        for k in 0..4 {
            let x = k * rs + 110 * ibl;
            by(m, x, y + 2 * k, 2);
            for ib in 0..4 {
                let j = 8 * ib + k;
                m(8 * (x + 106 + ib), 8 * (y + 424 + j % 16) + 4 * (j / 16), 4);
                m(8 * (x + 106 + ib) + 4, 8 * (y + 424 + (j + 4) % 16) + 4 * ((j + 4) / 16), 4);
            }
            for ib in 0..8 {
                by(m, x + 66 + ib, y + 264 + 4 * ib + k, 1);
                for i in 0..4 {
                    by(m, x + 2 + 8 * ib + i, y + 8 + 32 * ib + k + 8 * i, 1);
                    by(m, x + 2 + 8 * ib + i + 4, y + 8 + 32 * ib + k + 8 * i + 4, 1);
                    for s in 0..4 {
                        let src = 8 * (x + 74 + 4 * ib + s);
                        let dst = 8 * (y + 296 + 16 * ib + 4 * k + i);
                        m(src + i, dst + 2 * s, 1);
                        m(src + 4 + i, dst + 2 * s + 1, 1);
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------------ ternary and bf16

fn map_iq2_bn_r4(ne0: usize, rs: usize, m: Mv) {
    for k in 0..4 {
        by(m, k * rs, 4 * k, 4);
    }
    for ib in 0..ne0 / 64 {
        let y = 16 + 64 * ib;
        for k in 0..4 {
            let x = k * rs + 4 + 16 * ib;
            for l in 0..4 {
                for i in 0..4 {
                    for s in 0..4 {
                        m(8 * (x + i + 4 * s) + 2 * l, 8 * (y + 4 * k + i + 16 * l) + 2 * s, 2);
                    }
                }
            }
        }
    }
}

fn map_bf16_r16(ne0: usize, rs: usize, m: Mv) {
    for k in 0..16 {
        for ib in 0..ne0 / 2 {
            by(m, k * rs + 4 * ib, 2 * (32 * ib + 2 * k), 4);
        }
    }
}

macro_rules! spec {
    ($q:ident, $b:ident, $map:ident, $fix:expr, $hb:expr) => {
        Spec { q: QType::$q, base: QType::$b, map: $map, fix: $fix, helper_block: $hb }
    };
}

pub(super) static SPECS: &[Spec] = &[
    spec!(Q4_0_R8, Q4_0, map_q4_0_r8, None, Some(32)),
    spec!(Q8_0_R8, Q8_0, map_q8_0_r8, None, None),
    spec!(Q5_0_R4, Q5_0, map_q5_0_r4, None, None),
    spec!(Q6_0_R4, Q6_0, map_q6_0_r4, None, Some(32)),
    spec!(IQ4_NL_R4, IQ4_NL, map_iq4_nl_r4, None, Some(32)),
    spec!(MXFP4_R8, MXFP4, map_mxfp4_r8, None, None),
    spec!(IQ4_XS_R8, IQ4_XS, map_iq4_xs_r8, None, Some(32)),
    spec!(Q2_K_R4, Q2_K, map_q2_k_r4, None, Some(16)),
    spec!(Q3_K_R4, Q3_K, map_q3_k_r4, None, Some(16)),
    spec!(Q4_K_R4, Q4_K, map_q4_k_r4, None, Some(32)),
    spec!(Q5_K_R4, Q5_K, map_q5_k_r4, None, Some(32)),
    spec!(Q6_K_R4, Q6_K, map_q6_k_r4, None, Some(16)),
    spec!(IQ2_XXS_R4, IQ2_XXS, map_iq2_xxs_r4, Some(fix_iq2_xxs), Some(32)),
    spec!(IQ2_XS_R4, IQ2_XS, map_iq2_xs_r4, Some(fix_iq2_xs), Some(16)),
    spec!(IQ2_S_R4, IQ2_S, map_iq2_s_r4, None, Some(16)),
    spec!(IQ3_XXS_R4, IQ3_XXS, map_iq3_xxs_r4, Some(fix_iq3_xxs), Some(32)),
    spec!(IQ3_S_R4, IQ3_S, map_iq3_s_r4, None, Some(16)),
    spec!(IQ2_K_R4, IQ2_K, map_iq2_k_r4, None, None),
    spec!(IQ3_K_R4, IQ3_K, map_iq3_k_r4, None, None),
    spec!(IQ4_K_R4, IQ4_K, map_iq4_k_r4, None, None),
    spec!(IQ5_K_R4, IQ5_K, map_iq5_k_r4, None, None),
    spec!(IQ4_KS_R4, IQ4_KS, map_iq4_ks_r4, None, None),
    spec!(IQ5_KS_R4, IQ5_KS, map_iq5_ks_r4, None, None),
    spec!(IQ2_BN_R4, IQ2_BN, map_iq2_bn_r4, None, None),
    spec!(BF16_R16, BF16, map_bf16_r16, None, None),
];

pub(super) fn spec(q: QType) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.q == q)
}

/// ik `QHelper::row_weights`: blocks whose imatrix, values or weighted values all but vanish get a constant
/// 1e-9 weight (the base quantizer would otherwise divide by ~0).
pub(super) fn helper_weights(im: &[f32], x: &[f32], block: usize, out: &mut [f32]) {
    const EPS: f32 = 1e-9;
    const EPS2: f32 = EPS * EPS;
    for ((wi, xb), wb) in im.chunks_exact(block).zip(x.chunks_exact(block)).zip(out.chunks_exact_mut(block)) {
        let (mut sw2, mut sx2, mut swx) = (0f32, 0f32, 0f32);
        for j in 0..block {
            wb[j] = wi[j];
            sw2 += wb[j] * wb[j];
            sx2 += xb[j] * xb[j];
            swx += wb[j] * xb[j].abs();
        }
        let lim = block as f32 * EPS2;
        if !(sw2 > lim && sx2 > lim && swx > lim) {
            wb.fill(EPS);
        }
    }
}

/// Dequantize whole groups of `sp.q` through the base format.
pub(super) fn dequantize_with(sp: &Spec, base: &Format, src: &[u8], dst: &mut [f32], ne0: usize) {
    let n = sp.q.traits().interleave;
    let rs = row_bytes(sp.base, ne0);
    let mut tmp = vec![0u8; n * rs];
    for (g, y) in src.chunks_exact(n * rs).zip(dst.chunks_exact_mut(n * ne0)) {
        unpack_group(sp, ne0, g, &mut tmp);
        (base.dequantize)(&tmp, y, ne0);
    }
}

/// Quantize whole groups of `sp.q`: base quantizer per row (ik order and imatrix handling), then repack.
pub(super) fn quantize_with(sp: &Spec, base: &Format, src: &[f32], dst: &mut [u8], ne0: usize, im: Option<&[f32]>) {
    let n = sp.q.traits().interleave;
    let rs = row_bytes(sp.base, ne0);
    let Some(quant) = base.quantize else { return };
    let mut tmp = vec![0u8; n * rs];
    let mut w = vec![0f32; ne0];
    for (x, g) in src.chunks_exact(n * ne0).zip(dst.chunks_exact_mut(n * rs)) {
        for (xr, tr) in x.chunks_exact(ne0).zip(tmp.chunks_exact_mut(rs)) {
            match (im, sp.helper_block) {
                (Some(im), Some(b)) => {
                    helper_weights(im, xr, b, &mut w);
                    quant(xr, tr, ne0, Some(&w));
                }
                _ => quant(xr, tr, ne0, im),
            }
        }
        repack_group(sp, ne0, &tmp, g);
    }
}

/// Bytes of one row of `q` (block-aligned `ne0` is a caller contract).
pub(super) fn row_bytes(q: QType, ne0: usize) -> usize {
    let t = q.traits();
    t.row_meta + ne0 / t.block * t.type_size
}

/// Q5_0_R4 / Q6_0_R4 `to_float`: ik computes `d·q + (−2^(b−1)·d)` (two roundings), which is not always equal to
/// the base types' `(q − 2^(b−1))·d`, so these two decode their levels here instead of via the base format.
pub(super) fn dequantize_q5_q6_r4(sp: &Spec, src: &[u8], dst: &mut [f32], ne0: usize) {
    use super::common::rd_f16;
    let six = sp.q == QType::Q6_0_R4;
    let (bs, qs_off) = if six { (26, 10) } else { (22, 6) };
    let rs = row_bytes(sp.base, ne0);
    let mut tmp = vec![0u8; 4 * rs];
    for (g, y) in src.chunks_exact(4 * rs).zip(dst.chunks_exact_mut(4 * ne0)) {
        unpack_group(sp, ne0, g, &mut tmp);
        for (x, yr) in tmp.chunks_exact(rs).zip(y.chunks_exact_mut(ne0)) {
            for (b, yb) in x.chunks_exact(bs).zip(yr.chunks_exact_mut(32)) {
                let d = rd_f16(b, 0);
                let m = if six { -32.0 * d } else { -16.0 * d };
                for (e, v) in yb.iter_mut().enumerate() {
                    let lo = (b[qs_off + e % 16] >> (4 * (e / 16))) & 15;
                    let hi = if six {
                        (b[2 + e % 8] >> (4 * ((e % 16) / 8) + 2 * (e / 16))) & 3
                    } else {
                        (u32::from_le_bytes([b[2], b[3], b[4], b[5]]) >> e) as u8 & 1
                    };
                    *v = d * (lo | hi << 4) as f32 + m;
                }
            }
        }
    }
}
