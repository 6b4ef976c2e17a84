//! Bit-move maps of the IQK `_R4` types (IQ2_K … IQ5_KS), split out of `interleave.rs` (same scheme: one list
//! of moves per type serves both repack and unpack). Upstream @ 8337e4cd: ggml/src/iqk/iqk_quantize.cpp
//! (`repack_iq2_k`, `repack_iq3_k`, `repack_iq4_k`, `repack_iq5_k`, `repack_iq4_ks`, `repack_iq5_ks`).

#[allow(unused_imports)]
use super::interleave::{by, c32, c64, layout_a, layout_b, layout_h, n16, Mv, H_IQ5K, H_Q5K, H_SEQ};

// ------------------------------------------------------------------ IQK family (bases implemented elsewhere)

/// `extra` u16 (2 bits per 32-block) → `extra[k]`/`extra[4+k]` bit `ib`.
fn iqk_extra(m: Mv, x: usize, y: usize, k: usize) {
    for ib in 0..8 {
        m(8 * (x + 2) + 2 * ib, 8 * (y + 8 + k) + ib, 1);
        m(8 * (x + 2) + 2 * ib + 1, 8 * (y + 12 + k) + ib, 1);
    }
}

/// Low 4-bit scale nibbles `scales_l[ib]` (base @ `xs`) → nibble `is/32` of `scales_l[is % 32]` (@ `ys`).
fn iqk_scales_l(m: Mv, xs: usize, ys: usize, k: usize) {
    for ib in 0..8 {
        for h in 0..2 {
            let is = 8 * ib + k + 4 * h;
            m(8 * (xs + ib) + 4 * h, 8 * (ys + is % 32) + 4 * (is / 32), 4);
        }
    }
}

/// IQ4_K/IQ5_K high scale bits: `scales_h[ib/2] >> 4(ib%2)` (2 bits per half) → bits `2(is/16)` of
/// `scales_h[is % 16]` (@ `ys`).
fn iqk_scales_h2(m: Mv, xs: usize, ys: usize, k: usize) {
    for ib in 0..8 {
        for h in 0..2 {
            let is = 8 * ib + k + 4 * h;
            m(8 * (xs + ib / 2) + 4 * (ib % 2) + 2 * h, 8 * (ys + is % 16) + 2 * (is / 16), 2);
        }
    }
}

pub(super) fn map_iq2_k_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 304 * ibl;
        for k in 0..4 {
            let x = k * rs + 76 * ibl;
            by(m, x, y + 2 * k, 2);
            iqk_extra(m, x, y, k);
            iqk_scales_l(m, x + 4, y + 16, k);
            for ib in 0..8 {
                layout_b(m, k, y + 48 + 32 * ib, &|w| c32(x + 12, 32 * ib + w));
            }
        }
    }
}

pub(super) fn map_iq3_k_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 440 * ibl;
        for k in 0..4 {
            let x = k * rs + 110 * ibl;
            by(m, x, y + 2 * k, 2);
            iqk_extra(m, x, y, k);
            iqk_scales_l(m, x + 6, y + 24, k);
            for ib in 0..8 {
                for h in 0..2 {
                    let is = 8 * ib + k + 4 * h;
                    m(8 * (x + 4) + 2 * ib + h, 8 * (y + 16 + is % 8) + is / 8, 1);
                }
                let e0 = 32 * ib;
                layout_b(m, k, y + 56 + 32 * ib, &|w| c32(x + 14, e0 + w));
                layout_h(m, k, y + 312 + 16 * ib, H_SEQ, &|w| {
                    let e = e0 + w;
                    8 * (x + 78 + e % 32) + e / 32
                });
            }
        }
    }
}

pub(super) fn map_iq4_k_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 576 * ibl;
        for k in 0..4 {
            let x = k * rs + 144 * ibl;
            by(m, x, y + 2 * k, 2);
            iqk_extra(m, x, y, k);
            iqk_scales_l(m, x + 8, y + 32, k);
            iqk_scales_h2(m, x + 4, y + 16, k);
            for ib in 0..8 {
                layout_a(m, k, y + 64 + 64 * ib, &|w| n16(x + 16 + 16 * ib, w));
            }
        }
    }
}

pub(super) fn map_iq5_k_r4(ne0: usize, rs: usize, m: Mv) {
    for ibl in 0..ne0 / 256 {
        let y = 704 * ibl;
        for k in 0..4 {
            let x = k * rs + 176 * ibl;
            by(m, x, y + 2 * k, 2);
            iqk_extra(m, x, y, k);
            iqk_scales_l(m, x + 8, y + 32, k);
            iqk_scales_h2(m, x + 4, y + 16, k);
            for ib in 0..8 {
                let e0 = 32 * ib;
                layout_a(m, k, y + 64 + 64 * ib, &|w| c64(x + 16, e0 + w));
                layout_h(m, k, y + 576 + 16 * ib, H_IQ5K, &|w| {
                    let e = e0 + w;
                    8 * (x + 144 + e % 32) + e / 32
                });
            }
        }
    }
}

pub(super) fn map_iq4_ks_r4(ne0: usize, rs: usize, m: Mv) {
    for k in 0..4 {
        by(m, k * rs, 4 * k, 4);
    }
    for ibl in 0..ne0 / 256 {
        let y = 16 + 544 * ibl;
        for k in 0..4 {
            let x = k * rs + 4 + 136 * ibl;
            for ib in 0..8 {
                by(m, x + ib, y + 4 * ib + k, 1);
                layout_a(m, k, y + 32 + 64 * ib, &|w| n16(x + 8 + 16 * ib, w));
            }
        }
    }
}

pub(super) fn map_iq5_ks_r4(ne0: usize, rs: usize, m: Mv) {
    for k in 0..4 {
        by(m, k * rs, 4 * k, 4);
    }
    for ibl in 0..ne0 / 256 {
        let y = 16 + 672 * ibl;
        for k in 0..4 {
            let x = k * rs + 4 + 168 * ibl;
            for ib in 0..8 {
                by(m, x + ib, y + 4 * ib + k, 1);
                let e0 = 32 * ib;
                layout_a(m, k, y + 32 + 64 * ib, &|w| c64(x + 8, e0 + w));
                layout_h(m, k, y + 544 + 16 * ib, H_IQ5K, &|w| {
                    let e = e0 + w;
                    8 * (x + 136 + e % 32) + e / 32
                });
            }
        }
    }
}
