//! Row-interleaved kernels against Q8_K (AVX2): IQ2_K_R4, IQ3_K_R4, IQ4_K_R4, IQ5_K_R4, IQ4_KS_R4, IQ4_XS_R8 —
//! the `-rtr` targets of IQ2_K, IQ3_K, IQ4_K, IQ5_K, IQ4_KS and IQ4_XS — and the scalar twin of every
//! interleaved type whose base has a CPU kernel (legacy / K-quant `_R` kernels: `interleaved_k.rs`).
//!
//! Exactness: a `_R4` weight is a re-arrangement of four base rows (quant/formats/interleave*.rs), and its
//! kernel pairs with the base's activation type (Q8_K) and returns exactly the base reference's numbers: per
//! row and 256-block the exact i32 `isum`, then `sumf += (d·d8)·isum` in block order (f32 multiply and add,
//! no FMA, four rows in the four lanes). `-rtr` therefore changes speed, never a logit (tests/cpu_kernels_iqk.rs).
//!
//! Why it is faster than the base kernel: one 32-byte load holds 8 weights of each of the 4 rows, so one
//! broadcast of 4 activation bytes (`_mm256_shuffle_epi32`) serves 4 rows, the per-row sums land in separate
//! i32 lanes (no horizontal sum per block and row), and the f32 tail runs on 4 rows at once. The shifted value
//! table of the IQK types is the base table + 4, so a per-row shift byte replaces per-lane table choice.
//!
//! Upstream idea: ggml/src/iqk/iqk_gemm_iqk_quants.cpp @ 8337e4cd (`mul_mat_iq4_k_r4_q8_k`,
//! `mul_mat_iq4_ks_r4_q8_k`, `mul_mat_iq2_k_r4_q8_k`, `mul_mat_iq3_k_r4_q8_k`, `mul_mat_iq5_k_r4_q8_k`); the
//! arithmetic here is the base reference's (bit-identical), not ik's.

use crate::cpu::table::kernels_for_tier;
use crate::cpu::tier::Tier;
use crate::quant::formats::unpack_rows;
use crate::quant::QType;

const QK_K: usize = 256;
const Q8_K_BYTES: usize = 296;
const Q8K_QS: usize = 8;

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;
    use super::{Q8K_QS, Q8_K_BYTES, QK_K};

    /// One 256-column block of a 4-row group, unpacked: per 32-block `ib` four (|levels|, levels) pairs in
    /// the order of the activation broadcasts `[w0-3, w4-7, w8-11, w12-15]` (high lane: +16), and the i16
    /// scales `[r0 r0 r1 r1 r2 r2 r3 r3]` (low lane: first 16 weights, high lane: last 16).
    pub struct Unpacked {
        pub ax: [__m256i; 32],
        pub sx: [__m256i; 32],
        pub sc: [__m256i; 8],
    }

    pub trait Group {
        /// Bytes of one 256-column block of the 4-row group.
        const BYTES: usize;
        /// Group header bytes before the blocks (4 f32 row scales for `_KS`).
        const META: usize;
        /// Unpack block `b`; returns the 4 rows' scales (block `d` or `drow`).
        unsafe fn unpack(b: *const u8, drow: __m128, u: &mut Unpacked) -> __m128;
    }

    #[inline(always)]
    unsafe fn ld(p: *const u8) -> __m256i {
        _mm256_loadu_si256(p as *const __m256i)
    }

    /// spec/quants.md §3.1 base table (the shifted half is +4).
    #[inline(always)]
    unsafe fn iq4_table() -> __m256i {
        let t = _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
        _mm256_set_m128i(t, t)
    }

    /// Layout-A nibbles (spec/quants.md §8.2) of one 32-block at `q` → levels `t[nibble] + shift` in
    /// broadcast order.
    #[inline(always)]
    unsafe fn layout_a(q: *const u8, t: __m256i, shift: __m256i, u: &mut Unpacked, ib: usize) {
        let m4 = _mm256_set1_epi8(0x0F);
        let (q1, q2) = (ld(q), ld(q.add(32)));
        let nib = [
            _mm256_and_si256(q1, m4),
            _mm256_and_si256(q2, m4),
            _mm256_and_si256(_mm256_srli_epi16(q1, 4), m4),
            _mm256_and_si256(_mm256_srli_epi16(q2, 4), m4),
        ];
        for (j, n) in nib.into_iter().enumerate() {
            let s = _mm256_add_epi8(_mm256_shuffle_epi8(t, n), shift);
            u.sx[4 * ib + j] = s;
            u.ax[4 * ib + j] = _mm256_sign_epi8(s, s);
        }
    }

    /// Per-row bytes (row k → bytes 4k..4k+3 of each lane) of `lo` (low lane) and `hi` (high lane).
    #[inline(always)]
    unsafe fn per_row(lo: u32, hi: u32) -> __m256i {
        let spread = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        let l = _mm_shuffle_epi8(_mm_cvtsi32_si128(lo as i32), spread);
        let h = _mm_shuffle_epi8(_mm_cvtsi32_si128(hi as i32), spread);
        _mm256_set_m128i(h, l)
    }

    /// 8 i8 scales `[h0: r0..r3, h1: r0..r3]` at `p` → i16 `[r0 r0 r1 r1 r2 r2 r3 r3]` per lane.
    #[inline(always)]
    unsafe fn scales8(p: *const i8) -> __m256i {
        let v = _mm_loadl_epi64(p as *const __m128i);
        _mm256_cvtepi8_epi16(_mm_shuffle_epi8(v, _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7)))
    }

    #[inline(always)]
    unsafe fn u32_at(p: *const u8) -> u32 {
        u32::from_le_bytes([*p, *p.add(1), *p.add(2), *p.add(3)])
    }

    /// The 64 six-bit scales of an IQ4_K_R4 / IQ4_XS_R8 block, minus 32: index `i` has its low nibble in
    /// nibble `i/32` of byte `32 + i%32` and its high two bits at bit `2·(i/16)` of byte `16 + i%16`.
    #[inline(always)]
    unsafe fn scales64(b: *const u8) -> [i8; 64] {
        let m4 = _mm256_set1_epi8(0x0F);
        let m3 = _mm_set1_epi8(3);
        let l = ld(b.add(32));
        let h = _mm_loadu_si128(b.add(16) as *const __m128i);
        let hb = |s: i32| match s {
            0 => _mm_and_si128(h, m3),
            2 => _mm_and_si128(_mm_srli_epi16(h, 2), m3),
            4 => _mm_and_si128(_mm_srli_epi16(h, 4), m3),
            _ => _mm_and_si128(_mm_srli_epi16(h, 6), m3),
        };
        let h01 = _mm256_slli_epi16(_mm256_set_m128i(hb(2), hb(0)), 4);
        let h23 = _mm256_slli_epi16(_mm256_set_m128i(hb(6), hb(4)), 4);
        let m32 = _mm256_set1_epi8(32);
        let s_lo = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(l, m4), h01), m32);
        let s_hi = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l, 4), m4), h23), m32);
        let mut sc = [0i8; 64];
        _mm256_storeu_si256(sc.as_mut_ptr() as *mut __m256i, s_lo);
        _mm256_storeu_si256(sc.as_mut_ptr().add(32) as *mut __m256i, s_hi);
        sc
    }

    /// IQ4_K_R4 block (576 B): d f16[4] @0, extra @8 (byte k: first halves, byte 4+k: second halves, bit ib),
    /// scales_h @16, scales_l @32 (scale `is = 8·ib + k + 4·half`), qs @64 (layout A per 32-block).
    pub struct Iq4KR4;
    impl Group for Iq4KR4 {
        const BYTES: usize = 576;
        const META: usize = 0;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, _drow: __m128, u: &mut Unpacked) -> __m128 {
            let sc = scales64(b);
            let ex = per_row(u32_at(b.add(8)), u32_at(b.add(12)));
            let t = iq4_table();
            let four = _mm256_set1_epi8(4);
            for ib in 0..8 {
                u.sc[ib] = scales8(sc.as_ptr().add(8 * ib));
                let m = _mm256_set1_epi8((1u8 << ib) as i8);
                let shift = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(ex, m), m), four);
                layout_a(b.add(64 + 64 * ib), t, shift, u, ib);
            }
            _mm_cvtph_ps(_mm_loadl_epi64(b as *const __m128i))
        }
    }

    /// IQ4_KS_R4: 4 f32 row scales, then per block (544 B) scale bytes @0 (`4·ib + k`), qs @32 (layout A).
    pub struct Iq4KsR4;
    impl Group for Iq4KsR4 {
        const BYTES: usize = 544;
        const META: usize = 16;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, drow: __m128, u: &mut Unpacked) -> __m128 {
            let t = iq4_table();
            let (one, four) = (_mm256_set1_epi8(1), _mm256_set1_epi8(4));
            let fe = _mm_set1_epi8(-2);
            for ib in 0..8 {
                let s = u32_at(b.add(4 * ib));
                let v = _mm_cvtsi32_si128(s as i32);
                // (s & 0xFE) − 127 as i16, both halves
                let sc = _mm_sub_epi16(_mm_cvtepu8_epi16(_mm_and_si128(v, fe)), _mm_set1_epi16(127));
                let sc = _mm_shuffle_epi8(sc, _mm_setr_epi8(0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7));
                u.sc[ib] = _mm256_set_m128i(sc, sc);
                let shift = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(per_row(s, s), one), one), four);
                layout_a(b.add(32 + 64 * ib), t, shift, u, ib);
            }
            drow
        }
    }

    /// 16-entry value table in both lanes (spec/quants.md §3 tables, unshifted half; the shifted half is the
    /// same + a constant: IQ2_K +5, IQ3_K +4, IQ5_K +2).
    #[inline(always)]
    unsafe fn table16(t: &[i8; 16]) -> __m256i {
        let v = _mm_loadu_si128(t.as_ptr() as *const __m128i);
        _mm256_set_m128i(v, v)
    }

    /// `add` in the bytes of the rows whose extra bit `ib` is set (`ex` from `per_row`).
    #[inline(always)]
    unsafe fn shift_of(ex: __m256i, ib: usize, add: i8) -> __m256i {
        let m = _mm256_set1_epi8((1u8 << ib) as i8);
        _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(ex, m), m), _mm256_set1_epi8(add))
    }

    /// 0xFF in the bytes of `v` where bit `bit` is set.
    #[inline(always)]
    unsafe fn bit_set(v: __m256i, bit: usize) -> __m256i {
        let m = _mm256_set1_epi8((1u8 << bit) as i8);
        _mm256_cmpeq_epi8(_mm256_and_si256(v, m), m)
    }

    #[inline(always)]
    unsafe fn set_level(u: &mut Unpacked, k: usize, s: __m256i) {
        u.sx[k] = s;
        u.ax[k] = _mm256_sign_epi8(s, s);
    }

    /// Layout-B crumb `j` of every byte of `q` (weights `4j..4j+3` of each row, +16 in the high lane).
    #[inline(always)]
    unsafe fn crumb(q: __m256i, j: usize) -> __m256i {
        _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j as i32)), _mm256_set1_epi8(3))
    }

    /// IQ2_K_R4 block (304 B): d f16[4] @0, extra @8 (as IQ4_K_R4), scale nibbles @16 (scale `is = 8·ib + k
    /// + 4·half` = nibble `is/32` of byte `16 + is%32`, minus 8), qs @48 + 32·ib (layout B).
    pub struct Iq2KR4;
    impl Group for Iq2KR4 {
        const BYTES: usize = 304;
        const META: usize = 0;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, _drow: __m128, u: &mut Unpacked) -> __m128 {
            let (m4, m8) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(8));
            let l = ld(b.add(16));
            let mut sc = [0i8; 64];
            _mm256_storeu_si256(sc.as_mut_ptr() as *mut __m256i, _mm256_sub_epi8(_mm256_and_si256(l, m4), m8));
            _mm256_storeu_si256(
                sc.as_mut_ptr().add(32) as *mut __m256i,
                _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(l, 4), m4), m8),
            );
            let ex = per_row(u32_at(b.add(8)), u32_at(b.add(12)));
            let t = table16(&[-31, -13, 1, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            for ib in 0..8 {
                u.sc[ib] = scales8(sc.as_ptr().add(8 * ib));
                let shift = shift_of(ex, ib, 5);
                let q = ld(b.add(48 + 32 * ib));
                for j in 0..4 {
                    set_level(u, 4 * ib + j, _mm256_add_epi8(_mm256_shuffle_epi8(t, crumb(q, j)), shift));
                }
            }
            _mm_cvtph_ps(_mm_loadl_epi64(b as *const __m128i))
        }
    }

    /// IQ3_K_R4 block (440 B): d f16[4] @0, extra @8, scale signs @16 (bit `is/8` of byte `16 + is%8`),
    /// scale nibbles @24 (`2·nibble + 1`, as IQ2_K_R4's at 24), qs @56 + 32·ib (layout B), third bits
    /// @312 + 16·ib (byte `4k + i`, bit s = weight `i + 4s`).
    pub struct Iq3KR4;
    impl Group for Iq3KR4 {
        const BYTES: usize = 440;
        const META: usize = 0;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, _drow: __m128, u: &mut Unpacked) -> __m128 {
            let sc: [i8; 64] = std::array::from_fn(|is| {
                let m = 2 * ((*b.add(24 + is % 32) >> (4 * (is / 32))) & 15) as i8 + 1;
                if (*b.add(16 + is % 8) >> (is / 8)) & 1 != 0 {
                    -m
                } else {
                    m
                }
            });
            let ex = per_row(u32_at(b.add(8)), u32_at(b.add(12)));
            let t = table16(&[-63, -40, -23, -10, 1, 13, 28, 47, 0, 0, 0, 0, 0, 0, 0, 0]);
            let m4 = _mm256_set1_epi8(4);
            for ib in 0..8 {
                u.sc[ib] = scales8(sc.as_ptr().add(8 * ib));
                let shift = shift_of(ex, ib, 4);
                let q = ld(b.add(56 + 32 * ib));
                let h = _mm_loadu_si128(b.add(312 + 16 * ib) as *const __m128i);
                let hh = _mm256_set_m128i(_mm_srli_epi16(h, 4), h);
                for j in 0..4 {
                    let idx = _mm256_or_si256(crumb(q, j), _mm256_and_si256(bit_set(hh, j), m4));
                    set_level(u, 4 * ib + j, _mm256_add_epi8(_mm256_shuffle_epi8(t, idx), shift));
                }
            }
            _mm_cvtph_ps(_mm_loadl_epi64(b as *const __m128i))
        }
    }

    /// IQ5_K_R4 block (704 B): d f16[4] @0, extra @8, scales as IQ4_K_R4 (@16/@32), low nibbles @64 + 64·ib
    /// (layout A), fifth bits @576 + 16·ib (byte `4k + i`, bit s = weight `i + [0,8,16,24,4,12,20,28][s]`).
    pub struct Iq5KR4;
    impl Group for Iq5KR4 {
        const BYTES: usize = 704;
        const META: usize = 0;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, _drow: __m128, u: &mut Unpacked) -> __m128 {
            let sc = scales64(b);
            let ex = per_row(u32_at(b.add(8)), u32_at(b.add(12)));
            let tl = table16(&[-126, -114, -103, -92, -83, -74, -65, -57, -50, -43, -36, -30, -24, -18, -12, -6]);
            let th = table16(&[-1, 5, 11, 17, 23, 29, 36, 43, 51, 59, 68, 77, 87, 97, 109, 121]);
            let m4 = _mm256_set1_epi8(0x0F);
            for ib in 0..8 {
                u.sc[ib] = scales8(sc.as_ptr().add(8 * ib));
                let shift = shift_of(ex, ib, 2);
                let q = b.add(64 + 64 * ib);
                let (q1, q2) = (ld(q), ld(q.add(32)));
                let nib = [
                    _mm256_and_si256(q1, m4),
                    _mm256_and_si256(q2, m4),
                    _mm256_and_si256(_mm256_srli_epi16(q1, 4), m4),
                    _mm256_and_si256(_mm256_srli_epi16(q2, 4), m4),
                ];
                // high lane: bits 2, 6, 3, 7 moved to 0, 4, 1, 5 (weights 16.. of the low lane's pattern)
                let h = _mm_loadu_si128(b.add(576 + 16 * ib) as *const __m128i);
                let hh = _mm256_set_m128i(_mm_srli_epi16(h, 2), h);
                for (j, bit) in [0usize, 4, 1, 5].into_iter().enumerate() {
                    let v = _mm256_blendv_epi8(_mm256_shuffle_epi8(tl, nib[j]), _mm256_shuffle_epi8(th, nib[j]), bit_set(hh, bit));
                    set_level(u, 4 * ib + j, _mm256_add_epi8(v, shift));
                }
            }
            _mm_cvtph_ps(_mm_loadl_epi64(b as *const __m128i))
        }
    }

    /// IQ4_XS_R8 (8-row groups, 1088 B per 256 columns): d f16[8] @0, scales as `scales64` (index
    /// `8·ib + k`), qs @64 + 128·ib: 32 bytes per `l` (0..3) holding 4 bytes of each row, low nibbles =
    /// weights `8l..8l+3`, high = `8l+4..8l+7`. One broadcast of 4 activation bytes serves the 8 rows, whose
    /// sums land in 8 i32 lanes; the f32 tail is the base's `(d·d8)·isum` on 8 lanes (no FMA).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn gemm_iq4_xs_r8<const NY: usize>(
        n: usize,
        x: *const u8,
        bx: usize,
        nx: usize,
        y: *const u8,
        by: usize,
        out: *mut f32,
        ldo: usize,
    ) {
        let nb = n / QK_K;
        let t = iq4_table();
        let m4 = _mm256_set1_epi8(0x0F);
        let z = _mm256_setzero_si256();
        let (mut ax, mut sx, mut sc) = ([z; 64], [z; 64], [z; 8]);
        for ix in (0..nx).step_by(8) {
            let xg = x.add(ix * bx);
            let mut acc = [_mm256_setzero_ps(); NY];
            for ibl in 0..nb {
                let b = xg.add(ibl * 1088);
                let s8 = scales64(b);
                for ib in 0..8 {
                    sc[ib] = scales8(s8.as_ptr().add(8 * ib));
                    for l in 0..4 {
                        let q = ld(b.add(64 + 128 * ib + 32 * l));
                        for (h, v) in [_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4)].into_iter().enumerate() {
                            let s = _mm256_shuffle_epi8(t, v);
                            sx[8 * ib + 2 * l + h] = s;
                            ax[8 * ib + 2 * l + h] = _mm256_sign_epi8(s, s);
                        }
                    }
                }
                let d = _mm256_cvtph_ps(_mm_loadu_si128(b as *const __m128i));
                for iy in 0..NY {
                    let yb = y.add(iy * by + ibl * Q8_K_BYTES);
                    let yq = yb.add(Q8K_QS) as *const i32;
                    let mut s = z;
                    for ib in 0..8 {
                        for k in 0..8 {
                            let yv = _mm256_set1_epi32(yq.add(8 * ib + k).read_unaligned());
                            let p = _mm256_maddubs_epi16(ax[8 * ib + k], _mm256_sign_epi8(yv, sx[8 * ib + k]));
                            s = _mm256_add_epi32(s, _mm256_madd_epi16(p, sc[ib]));
                        }
                    }
                    let dy = _mm256_set1_ps(f32::from_le_bytes([*yb, *yb.add(1), *yb.add(2), *yb.add(3)]));
                    acc[iy] = _mm256_add_ps(acc[iy], _mm256_mul_ps(_mm256_mul_ps(d, dy), _mm256_cvtepi32_ps(s)));
                }
            }
            for iy in 0..NY {
                _mm256_storeu_ps(out.add(iy * ldo + ix), acc[iy]);
            }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn gemm<G: Group, const NY: usize>(
        n: usize,
        x: *const u8,
        bx: usize,
        nx: usize,
        y: *const u8,
        by: usize,
        out: *mut f32,
        ldo: usize,
    ) {
        let nb = n / QK_K;
        let z = _mm256_setzero_si256();
        let mut u = Unpacked { ax: [z; 32], sx: [z; 32], sc: [z; 8] };
        for ix in (0..nx).step_by(4) {
            let xg = x.add(ix * bx);
            let drow = if G::META == 16 { _mm_loadu_ps(xg as *const f32) } else { _mm_setzero_ps() };
            let mut acc = [_mm_setzero_ps(); NY];
            for ibl in 0..nb {
                let d = G::unpack(xg.add(G::META + ibl * G::BYTES), drow, &mut u);
                for iy in 0..NY {
                    let yb = y.add(iy * by + ibl * Q8_K_BYTES);
                    let mut s = z;
                    for ib in 0..8 {
                        let yv = ld(yb.add(Q8K_QS + 32 * ib));
                        let ys = [
                            _mm256_shuffle_epi32(yv, 0x00),
                            _mm256_shuffle_epi32(yv, 0x55),
                            _mm256_shuffle_epi32(yv, 0xAA),
                            _mm256_shuffle_epi32(yv, 0xFF),
                        ];
                        for j in 0..4 {
                            let k = 4 * ib + j;
                            let p = _mm256_maddubs_epi16(u.ax[k], _mm256_sign_epi8(ys[j], u.sx[k]));
                            s = _mm256_add_epi32(s, _mm256_madd_epi16(p, u.sc[ib]));
                        }
                    }
                    let isum = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
                    let dy = _mm_set1_ps(f32::from_le_bytes([*yb, *yb.add(1), *yb.add(2), *yb.add(3)]));
                    acc[iy] = _mm_add_ps(acc[iy], _mm_mul_ps(_mm_mul_ps(d, dy), _mm_cvtepi32_ps(isum)));
                }
            }
            for iy in 0..NY {
                _mm_storeu_ps(out.add(iy * ldo + ix), acc[iy]);
            }
        }
    }
}

macro_rules! r4_wrappers {
    ($($name:ident => $ty:ident),+ $(,)?) => {$(
        super::avx2_entry!(
            /// `nx` whole groups of 4.
            $name, group 4, blk QK_K, row |n| (<imp::$ty as imp::Group>::META + n / QK_K * <imp::$ty as imp::Group>::BYTES) / 4,
            act n / QK_K * Q8_K_BYTES, kernel imp::gemm::<imp::$ty, NY>
        );
    )+};
}

r4_wrappers!(
    gemm_iq4_k_r4 => Iq4KR4,
    gemm_iq4_ks_r4 => Iq4KsR4,
    gemm_iq2_k_r4 => Iq2KR4,
    gemm_iq3_k_r4 => Iq3KR4,
    gemm_iq5_k_r4 => Iq5KR4,
);

super::avx2_entry!(
    /// IQ4_XS_R8 (`-rtr` target of IQ4_XS); `nx` whole groups of 8.
    gemm_iq4_xs_r8, group 8, blk QK_K, row |n| n / QK_K * 136, act n / QK_K * Q8_K_BYTES, kernel imp::gemm_iq4_xs_r8::<NY>
);

/// Scalar twin of a row-interleaved type `ID`: each group of rows is unpacked into its base rows (an exact
/// re-arrangement) and multiplied by the base type's scalar-tier GEMM — the same numbers as the base weight
/// gives, which is what the SIMD `_R` kernels reproduce. Slow (bit-level unpack per call): tests, and files
/// shipped in an interleaved type that has no SIMD kernel yet.
#[allow(clippy::too_many_arguments)]
pub fn scalar_gemm_il<const ID: u32>(
    n: usize,
    x: &[u8],
    bx: usize,
    nx: usize,
    y: &[u8],
    by: usize,
    ny: usize,
    out: &mut [f32],
    ldo: usize,
) {
    let q = QType::from_id(ID).expect("scalar_gemm_il instantiated for a registered type");
    let base = kernels_for_tier(q.base_type(), Tier::Scalar).expect("base type with CPU kernels");
    let il = q.traits().interleave;
    assert!(nx % il == 0, "row-interleaved GEMM on {nx} rows (not whole groups of {il})");
    let mut rows = vec![0u8; il * bx];
    for g in (0..nx).step_by(il) {
        unpack_rows(q, &x[g * bx..(g + il) * bx], &mut rows, n).expect("interleaved type with an unpacker");
        (base.gemm[ny - 1])(n, &rows, bx, il, y, by, ny, &mut out[g..], ldo);
    }
}
