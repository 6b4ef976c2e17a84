//! IQK non-linear super-block types against Q8_K activations (AVX2): IQ2_K, IQ3_K, IQ4_K, IQ5_K, IQ6_K and the
//! row-scale IQ4_KS, IQ5_KS, IQ2_KS, IQ3_KS.
//!
//! Reference: `quant/formats/{iqk_k,iqk_ks}.rs` through `iqk_common::vec_dot_rows`: per 256-weight block the
//! exact i32 `isum = Σ_k sc_k · Σ v·q8` (16 sub-blocks of 16), then `sumf += (d·d8)·isum` in block order, with
//! `d` the block's f16 scale (`_K`) or the row scale (`_KS`). Here each weight block is unpacked once into
//! eight 32-byte chunks of signed levels (value-table lookups with `_mm256_shuffle_epi8`, one table per
//! 16-weight half-lane so the per-sub-block "shifted table" bit costs nothing) plus i16 scales per maddubs
//! lane, and reused for the NY activation rows: `madd(maddubs(|v|, sign(q8, v)), scales)`. Q8_K quants lie in
//! −127…127 and the levels in −127…127, so the sign trick and the i16 pair sums are exact; the integer sums
//! are exact, and the f32 expression and block order are the reference's → bit-identical results
//! (tests/cpu_kernels_iqk.rs).
//!
//! Upstream idea: ggml/src/iqk/iqk_gemm_iqk_quants.cpp @ 8337e4cd (`DequantizerIQ4K`, `DequantizerIQ4KS`, …
//! with `mul_mat_qX_K_q8_K_T`): value tables in shuffle registers, the shift bit selecting the table.

use super::check_gemm;

const QK_K: usize = 256;
const Q8_K_BYTES: usize = 296;
const Q8K_QS: usize = 8;

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;
    use super::{Q8K_QS, Q8_K_BYTES, QK_K};

    /// spec/quants.md §3.1–3.5 value tables, each half padded to 16 entries (shuffle tables).
    static T2: [i8; 32] = [-31, -13, 1, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -26, -8, 6, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    static T3: [i8; 32] =
        [-63, -40, -23, -10, 1, 13, 28, 47, 0, 0, 0, 0, 0, 0, 0, 0, -59, -36, -19, -6, 5, 17, 32, 51, 0, 0, 0, 0, 0, 0, 0, 0];
    static T4: [i8; 32] = [
        -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113, //
        -123, -100, -79, -61, -45, -31, -18, -6, 5, 17, 29, 42, 57, 73, 93, 117,
    ];
    static T5: [i8; 64] = [
        -126, -114, -103, -92, -83, -74, -65, -57, -50, -43, -36, -30, -24, -18, -12, -6, -1, 5, 11, 17, 23, 29, 36, 43, 51, 59, 68, 77,
        87, 97, 109, 121, //
        -124, -112, -101, -90, -81, -72, -63, -55, -48, -41, -34, -28, -22, -16, -10, -4, 1, 7, 13, 19, 25, 31, 38, 45, 53, 61, 70, 79, 89,
        99, 111, 123,
    ];
    static T6: [i8; 128] = [
        -127, -121, -115, -109, -104, -98, -93, -88, -84, -79, -74, -70, -66, -62, -58, -54, -51, -47, -44, -40, -37, -34, -31, -28, -25,
        -22, -19, -16, -13, -11, -8, -5, -2, 0, 3, 6, 9, 12, 14, 17, 20, 23, 27, 30, 33, 36, 40, 44, 47, 51, 55, 59, 63, 68, 72, 77, 82,
        87, 92, 98, 103, 109, 115, 121, //
        -126, -120, -114, -108, -103, -97, -92, -87, -83, -78, -73, -69, -65, -61, -57, -53, -50, -46, -43, -39, -36, -33, -30, -27, -24,
        -21, -18, -15, -12, -10, -7, -4, -1, 1, 4, 7, 10, 13, 15, 18, 21, 24, 28, 31, 34, 37, 41, 45, 48, 52, 56, 60, 64, 69, 73, 78, 83,
        88, 93, 99, 104, 110, 116, 122,
    ];

    /// One block, unpacked: per 32-weight chunk |levels|, signed levels (sign source) and i16 scales.
    pub struct Unpacked {
        pub ax: [__m256i; 8],
        pub sx: [__m256i; 8],
        pub sc: [__m256i; 8],
    }

    pub trait Block {
        /// Bytes of one 256-weight block.
        const BYTES: usize;
        /// Row-scale bytes before the blocks (0, 2 = f16, 4 = f32).
        const META: usize;
        /// Unpack block `b`; returns its own scale (`_K` types) or `drow`.
        unsafe fn unpack(b: *const u8, drow: f32, u: &mut Unpacked) -> f32;
    }

    #[inline(always)]
    unsafe fn ld(p: *const u8) -> __m256i {
        _mm256_loadu_si256(p as *const __m256i)
    }

    #[inline(always)]
    unsafe fn u16_at(p: *const u8) -> u16 {
        u16::from_le_bytes([*p, *p.add(1)])
    }

    /// Per-lane table: 16 entries at `t[16·lo..]` for elements 0..15 and `t[16·hi..]` for 16..31.
    #[inline(always)]
    unsafe fn tab(t: &[i8], lo: usize, hi: usize) -> __m256i {
        let l = _mm_loadu_si128(t.as_ptr().add(16 * lo) as *const __m128i);
        let h = _mm_loadu_si128(t.as_ptr().add(16 * hi) as *const __m128i);
        _mm256_set_m128i(h, l)
    }

    /// i16 scale `a` for elements 0..15, `b` for 16..31 of a chunk.
    #[inline(always)]
    unsafe fn lanes2(a: i32, b: i32) -> __m256i {
        _mm256_set_m128i(_mm_set1_epi16(b as i16), _mm_set1_epi16(a as i16))
    }

    #[inline(always)]
    unsafe fn set(u: &mut Unpacked, c: usize, s: __m256i) {
        u.sx[c] = s;
        u.ax[c] = _mm256_sign_epi8(s, s);
    }

    /// 0xFF where bit `bit` (0..7) of the byte of `q` is set.
    #[inline(always)]
    unsafe fn bitmask(q: __m256i, bit: usize) -> __m256i {
        let m = _mm256_set1_epi8((1u8 << bit) as i8);
        _mm256_cmpeq_epi8(_mm256_and_si256(q, m), m)
    }

    /// 2-bit field `s` (0..3) of every byte of `q`.
    #[inline(always)]
    unsafe fn crumb(q: __m256i, s: usize) -> __m256i {
        let v = match s {
            0 => q,
            1 => _mm256_srli_epi16(q, 2),
            2 => _mm256_srli_epi16(q, 4),
            _ => _mm256_srli_epi16(q, 6),
        };
        _mm256_and_si256(v, _mm256_set1_epi8(3))
    }

    /// Nibble `h` (0 low, 1 high) of every byte of `q`.
    #[inline(always)]
    unsafe fn nib(q: __m256i, h: usize) -> __m256i {
        let v = if h == 0 { q } else { _mm256_srli_epi16(q, 4) };
        _mm256_and_si256(v, _mm256_set1_epi8(0x0F))
    }

    /// The 6-bit scale of IQ4_K / IQ5_K sub-block `k` (`scales_h` @4, `scales_l` @8), minus 32.
    #[inline(always)]
    unsafe fn sc6(b: *const u8, k: usize) -> i32 {
        let l = (*b.add(8 + k / 2) >> (4 * (k % 2))) & 15;
        let h = (*b.add(4 + k / 4) >> (2 * (k % 4))) & 3;
        (l | (h << 4)) as i32 - 32
    }

    /// `_KS` scale byte → (scale, table half).
    #[inline(always)]
    fn ks(s: u8) -> (i32, usize) {
        ((s & 0xFE) as i32 - 127, (s & 1) as usize)
    }

    pub struct Iq2K;
    impl Block for Iq2K {
        const BYTES: usize = 76;
        const META: usize = 0;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, _drow: f32, u: &mut Unpacked) -> f32 {
            let ex = u16_at(b.add(2)) as usize;
            let scl = |k: usize| ((*b.add(4 + k / 2) >> (4 * (k % 2))) & 15) as i32 - 8;
            for c in 0..8 {
                let q = crumb(ld(b.add(12 + 32 * (c / 4))), c % 4);
                set(u, c, _mm256_shuffle_epi8(tab(&T2, (ex >> (2 * c)) & 1, (ex >> (2 * c + 1)) & 1), q));
                u.sc[c] = lanes2(scl(2 * c), scl(2 * c + 1));
            }
            f16_at(b)
        }
    }

    pub struct Iq3K;
    impl Block for Iq3K {
        const BYTES: usize = 110;
        const META: usize = 0;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, _drow: f32, u: &mut Unpacked) -> f32 {
            let (ex, sh) = (u16_at(b.add(2)) as usize, u16_at(b.add(4)));
            let scl = |k: usize| {
                let m = 2 * ((*b.add(6 + k / 2) >> (4 * (k % 2))) & 15) as i32 + 1;
                if (sh >> k) & 1 != 0 {
                    -m
                } else {
                    m
                }
            };
            let qh = ld(b.add(78));
            let m4 = _mm256_set1_epi8(4);
            for c in 0..8 {
                let q = crumb(ld(b.add(14 + 32 * (c / 4))), c % 4);
                let q = _mm256_or_si256(q, _mm256_and_si256(bitmask(qh, c), m4));
                set(u, c, _mm256_shuffle_epi8(tab(&T3, (ex >> (2 * c)) & 1, (ex >> (2 * c + 1)) & 1), q));
                u.sc[c] = lanes2(scl(2 * c), scl(2 * c + 1));
            }
            f16_at(b)
        }
    }

    pub struct Iq4K;
    impl Block for Iq4K {
        const BYTES: usize = 144;
        const META: usize = 0;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, _drow: f32, u: &mut Unpacked) -> f32 {
            let ex = u16_at(b.add(2)) as usize;
            for c in 0..8 {
                let q = nibbles_n16(b.add(16 + 16 * c));
                set(u, c, _mm256_shuffle_epi8(tab(&T4, (ex >> (2 * c)) & 1, (ex >> (2 * c + 1)) & 1), q));
                u.sc[c] = lanes2(sc6(b, 2 * c), sc6(b, 2 * c + 1));
            }
            f16_at(b)
        }
    }

    /// 32-entry lookup: `t[0..16]` for indices with the 5th bit clear (mask 0), `t[16..32]` where set.
    #[inline(always)]
    unsafe fn lookup32(t: &[i8], lo: usize, hi: usize, q: __m256i, h: __m256i) -> __m256i {
        let a = _mm256_shuffle_epi8(tab(t, 2 * lo, 2 * hi), q);
        let b = _mm256_shuffle_epi8(tab(t, 2 * lo + 1, 2 * hi + 1), q);
        _mm256_blendv_epi8(a, b, h)
    }

    pub struct Iq5K;
    impl Block for Iq5K {
        const BYTES: usize = 176;
        const META: usize = 0;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, _drow: f32, u: &mut Unpacked) -> f32 {
            let ex = u16_at(b.add(2)) as usize;
            let qh = ld(b.add(144));
            for c in 0..8 {
                let q = nib(ld(b.add(16 + 32 * (c / 2))), c % 2);
                set(u, c, lookup32(&T5, (ex >> (2 * c)) & 1, (ex >> (2 * c + 1)) & 1, q, bitmask(qh, c)));
                u.sc[c] = lanes2(sc6(b, 2 * c), sc6(b, 2 * c + 1));
            }
            f16_at(b)
        }
    }

    pub struct Iq6K;
    impl Block for Iq6K {
        const BYTES: usize = 212;
        const META: usize = 0;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, _drow: f32, u: &mut Unpacked) -> f32 {
            let ex = u16_at(b.add(2)) as usize;
            let (one, two, three) = (_mm256_set1_epi8(1), _mm256_set1_epi8(2), _mm256_set1_epi8(3));
            for c in 0..8 {
                let q = nib(ld(b.add(20 + 32 * (c / 2))), c % 2);
                let h = crumb(ld(b.add(148 + 32 * (c / 4))), c % 4);
                let (lo, hi) = (4 * ((ex >> (2 * c)) & 1), 4 * ((ex >> (2 * c + 1)) & 1));
                let r = |j: usize| _mm256_shuffle_epi8(tab(&T6, lo + j, hi + j), q);
                let mut v = r(0);
                v = _mm256_blendv_epi8(v, r(1), _mm256_cmpeq_epi8(h, one));
                v = _mm256_blendv_epi8(v, r(2), _mm256_cmpeq_epi8(h, two));
                v = _mm256_blendv_epi8(v, r(3), _mm256_cmpeq_epi8(h, three));
                set(u, c, v);
                u.sc[c] = lanes2(*b.add(4 + 2 * c) as i8 as i32, *b.add(5 + 2 * c) as i8 as i32);
            }
            f16_at(b)
        }
    }

    pub struct Iq4Ks;
    impl Block for Iq4Ks {
        const BYTES: usize = 136;
        const META: usize = 4;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, drow: f32, u: &mut Unpacked) -> f32 {
            for c in 0..8 {
                let (s, sh) = ks(*b.add(c));
                set(u, c, _mm256_shuffle_epi8(tab(&T4, sh, sh), nibbles_n16(b.add(8 + 16 * c))));
                u.sc[c] = _mm256_set1_epi16(s as i16);
            }
            drow
        }
    }

    pub struct Iq5Ks;
    impl Block for Iq5Ks {
        const BYTES: usize = 168;
        const META: usize = 4;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, drow: f32, u: &mut Unpacked) -> f32 {
            let qh = ld(b.add(136));
            for c in 0..8 {
                let (s, sh) = ks(*b.add(c));
                let q = nib(ld(b.add(8 + 32 * (c / 2))), c % 2);
                set(u, c, lookup32(&T5, sh, sh, q, bitmask(qh, c)));
                u.sc[c] = _mm256_set1_epi16(s as i16);
            }
            drow
        }
    }

    pub struct Iq2Ks;
    impl Block for Iq2Ks {
        const BYTES: usize = 70;
        const META: usize = 2;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, drow: f32, u: &mut Unpacked) -> f32 {
            let ex = u16_at(b) as usize;
            for c in 0..8 {
                let s = ((*b.add(2 + c / 2) >> (4 * (c % 2))) & 15) as i32 | ((((ex >> (8 + c)) & 1) as i32) << 4);
                let t = (ex >> c) & 1;
                let q = crumb(ld(b.add(6 + 32 * (c / 4))), c % 4);
                set(u, c, _mm256_shuffle_epi8(tab(&T2, t, t), q));
                u.sc[c] = _mm256_set1_epi16((s - 16) as i16);
            }
            drow
        }
    }

    pub struct Iq3Ks;
    impl Block for Iq3Ks {
        const BYTES: usize = 102;
        const META: usize = 2;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, drow: f32, u: &mut Unpacked) -> f32 {
            let ex = u16_at(b) as usize;
            let qh = ld(b.add(70));
            let m4 = _mm256_set1_epi8(4);
            for c in 0..8 {
                let s = ((*b.add(2 + c % 4) >> (4 * (c / 4))) & 15) as i32 | ((((ex >> c) & 1) as i32) << 4);
                let t = (ex >> (8 + c)) & 1;
                let q = crumb(ld(b.add(6 + 32 * (c / 4))), c % 4);
                let q = _mm256_or_si256(q, _mm256_and_si256(bitmask(qh, c), m4));
                set(u, c, _mm256_shuffle_epi8(tab(&T3, t, t), q));
                u.sc[c] = _mm256_set1_epi16((s - 16) as i16);
            }
            drow
        }
    }

    /// Row scale of a row (`META` bytes: f16 or f32), 0 when the type has none.
    #[inline(always)]
    unsafe fn row_scale<B: Block>(x: *const u8) -> f32 {
        match B::META {
            2 => f16_at(x),
            4 => f32::from_le_bytes([*x, *x.add(1), *x.add(2), *x.add(3)]),
            _ => 0.0,
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn gemm<B: Block, const NY: usize>(
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
        let mut u = Unpacked { ax: [z; 8], sx: [z; 8], sc: [z; 8] };
        for ix in 0..nx {
            let xr = x.add(ix * bx);
            let drow = row_scale::<B>(xr);
            let mut acc = [0.0f32; NY];
            for ibl in 0..nb {
                let d = B::unpack(xr.add(B::META + ibl * B::BYTES), drow, &mut u);
                for iy in 0..NY {
                    let yb = y.add(iy * by + ibl * Q8_K_BYTES);
                    let mut s = z;
                    for c in 0..8 {
                        let q8 = _mm256_sign_epi8(ld(yb.add(Q8K_QS + 32 * c)), u.sx[c]);
                        s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(u.ax[c], q8), u.sc[c]));
                    }
                    let dy = f32::from_le_bytes([*yb, *yb.add(1), *yb.add(2), *yb.add(3)]);
                    acc[iy] += (d * dy) * hsum_i32(s) as f32;
                }
            }
            for iy in 0..NY {
                *out.add(iy * ldo + ix) = acc[iy];
            }
        }
    }
}

/// Safe GEMM entry points (`cpu::table::GemmFn`) for each `name => Ty`: slice checks (row = `META` row-scale
/// bytes + `n/256` blocks), then `imp::gemm::<imp::Ty, NY>`.
macro_rules! iqk_wrappers {
    ($($name:ident => $ty:ident),+ $(,)?) => {$(
        /// Safe entry: call only when the CPU has AVX2+FMA+F16C (the table guarantees it).
        #[allow(clippy::too_many_arguments)]
        pub fn $name<const NY: usize>(
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
            #[cfg(target_arch = "x86_64")]
            {
                use imp::Block;
                assert_eq!(ny, NY, "gemm[ny-1] called with another ny");
                let row = imp::$ty::META + n / QK_K * imp::$ty::BYTES;
                check_gemm(n, QK_K, row, n / QK_K * Q8_K_BYTES, x, bx, nx, y, by, ny, out, ldo);
                assert!(super::avx2_ok());
                // SAFETY: sizes checked above; AVX2+FMA+F16C present (tier check).
                unsafe { imp::gemm::<imp::$ty, NY>(n, x.as_ptr(), bx, nx, y.as_ptr(), by, out.as_mut_ptr(), ldo) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("AVX2 kernel on a non-x86 target")
        }
    )+};
}

iqk_wrappers!(
    gemm_iq2_k => Iq2K,
    gemm_iq3_k => Iq3K,
    gemm_iq4_k => Iq4K,
    gemm_iq5_k => Iq5K,
    gemm_iq6_k => Iq6K,
    gemm_iq4_ks => Iq4Ks,
    gemm_iq5_ks => Iq5Ks,
    gemm_iq2_ks => Iq2Ks,
    gemm_iq3_ks => Iq3Ks,
);
