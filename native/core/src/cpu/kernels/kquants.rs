//! 256-weight super-block types against Q8_K activations: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS (AVX2).
//!
//! Reference: `quant/formats/{kquants_lo,kquants_hi,iq4}.rs`: per super-block exact i32 `isum` (and `summs`
//! for the min terms), then the reference's f32 expression, super-blocks in order. Here each weight super-block
//! is unpacked once into eight 32-byte chunks of levels plus per-lane i16 scales and reused for the NY rows:
//! `maddubs(levels, q8)` → `madd(·, scales)` accumulates `isum` in 8 i32 lanes; the min / offset term comes from
//! the Q8_K `bsums` (`madd(mins, bsums)`). Q6_K and Q3_K use unsigned levels (offset +32 / +4) and subtract the
//! offset through the bsums, IQ4_XS uses the `_mm256_sign_epi8` trick. Integer sums are exact, so the results
//! are bit-identical to the reference.
//!
//! Upstream idea: ggml/src/iqk/iqk_gemm_kquants.cpp / iqk_gemm_iquants.cpp @ 8337e4cd (`mul_mat_qX_K_q8_K_T`).

const QK_K: usize = 256;
const Q8_K_BYTES: usize = 296;
const Q8K_QS: usize = 8;
const Q8K_BSUMS: usize = 264;

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;
    use super::{Q8K_BSUMS, Q8K_QS, Q8_K_BYTES, QK_K};

    /// One super-block, unpacked: 8 chunks of 32 levels (Q8_K element order), i16 scale per maddubs lane.
    pub struct Unpacked {
        pub v: [__m256i; 8],
        /// signed levels (sign source) when `SIGNED`; `v` then holds |levels|
        pub sg: [__m256i; 8],
        pub sc: [__m256i; 8],
        /// i16 factor per Q8_K bsum (16 groups of 16) for the min / offset term
        pub mins: __m256i,
    }

    pub trait SuperBlock {
        const BYTES: usize;
        const SIGNED: bool;
        const HAS_MIN: bool;
        unsafe fn unpack(b: *const u8, u: &mut Unpacked) -> [f32; 2];
        /// The reference's f32 contribution of one super-block from the exact integer sums; `dd` = what
        /// `unpack` returned (the block's f16 scales as f32, converted once per weight block).
        fn finish(dd: [f32; 2], dy: f32, isum: i32, summs: i32) -> f32;
    }

    #[inline(always)]
    unsafe fn lanes2(a: i16, b: i16) -> __m256i {
        _mm256_set_m128i(_mm_set1_epi16(b), _mm_set1_epi16(a))
    }

    #[inline(always)]
    unsafe fn ld(p: *const u8) -> __m256i {
        _mm256_loadu_si256(p as *const __m256i)
    }

    /// Little-endian u32 at `p` (unaligned).
    #[inline(always)]
    unsafe fn u32_at(p: *const u8) -> u32 {
        u32::from_le_bytes([*p, *p.add(1), *p.add(2), *p.add(3)])
    }

    /// (low, high) nibbles of every byte of `q`.
    #[inline(always)]
    unsafe fn nibbles(q: __m256i) -> (__m256i, __m256i) {
        let m4 = _mm256_set1_epi8(0x0F);
        (_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4))
    }

    /// `a | (b & m)`: high bits `b` masked by `m` onto levels `a`.
    #[inline(always)]
    unsafe fn or_masked(a: __m256i, b: __m256i, m: __m256i) -> __m256i {
        _mm256_or_si256(a, _mm256_and_si256(b, m))
    }

    /// The four 2-bit fields of every byte of `q` (bits 0–1, 2–3, 4–5, 6–7).
    #[inline(always)]
    unsafe fn crumbs(q: __m256i) -> [__m256i; 4] {
        let m3 = _mm256_set1_epi8(3);
        [
            _mm256_and_si256(q, m3),
            _mm256_and_si256(_mm256_srli_epi16(q, 2), m3),
            _mm256_and_si256(_mm256_srli_epi16(q, 4), m3),
            _mm256_and_si256(_mm256_srli_epi16(q, 6), m3),
        ]
    }

    /// `finish` of the types with a min term (Q2_K, Q4_K, Q5_K): `d·isum − dmin·summs`, `d`, `dmin` = dy·dd.
    #[inline(always)]
    fn finish_min(dd: [f32; 2], dy: f32, isum: i32, summs: i32) -> f32 {
        let (d, dmin) = (dy * dd[0], dy * dd[1]);
        d * isum as f32 - dmin * summs as f32
    }

    /// `finish` of the offset types (Q3_K, Q6_K): the level offset is taken back through `summs`.
    #[inline(always)]
    fn finish_offset(dd: [f32; 2], dy: f32, isum: i32, summs: i32) -> f32 {
        (dd[0] * dy) * (isum - summs) as f32
    }

    /// The 8 six-bit scales and mins of a Q4_K/Q5_K block (ggml `get_scale_min_k4` for all j at once, the
    /// kmask trick of ggml's AVX2 `vec_dot_q4_K`): per-chunk scale vectors and the bsum factors (min_j twice).
    #[inline(always)]
    unsafe fn q45_scales(b: *const u8, u: &mut Unpacked) {
        let a = |i: usize| u32_at(b.add(4 + 4 * i));
        let (a0, a1, a2) = (a(0), a(1), a(2));
        let (k1, k2, k3) = (0x3f3f_3f3fu32, 0x0f0f_0f0fu32, 0x0303_0303u32);
        let sc_lo = a0 & k1;
        let sc_hi = (a2 & k2) | (((a0 >> 6) & k3) << 4);
        let m_lo = a1 & k1;
        let m_hi = ((a2 >> 4) & k2) | (((a1 >> 6) & k3) << 4);
        let v = _mm_setr_epi32(sc_lo as i32, sc_hi as i32, m_lo as i32, m_hi as i32);
        let sc16 = _mm256_cvtepu8_epi16(v); // lanes 0..7 scales, 8..15 mins
        let s = _mm256_permute2x128_si256(sc16, sc16, 0x00); // scales in both halves
        for j in 0..8 {
            let m = _mm256_set1_epi16((2 * j as i16) | ((2 * j as i16 + 1) << 8));
            u.sc[j] = _mm256_shuffle_epi8(s, m);
        }
        let mins8 = _mm_srli_si128(v, 8);
        u.mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mins8, mins8));
    }

    pub struct Q4K;
    impl SuperBlock for Q4K {
        const BYTES: usize = 144;
        const SIGNED: bool = false;
        const HAS_MIN: bool = true;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, u: &mut Unpacked) -> [f32; 2] {
            q45_scales(b, u);
            for c in 0..4 {
                (u.v[2 * c], u.v[2 * c + 1]) = nibbles(ld(b.add(16 + 32 * c)));
            }
            [f16_at(b), f16_at(b.add(2))]
        }
        #[inline(always)]
        fn finish(dd: [f32; 2], dy: f32, isum: i32, summs: i32) -> f32 {
            finish_min(dd, dy, isum, summs)
        }
    }

    pub struct Q5K;
    impl SuperBlock for Q5K {
        const BYTES: usize = 176;
        const SIGNED: bool = false;
        const HAS_MIN: bool = true;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, u: &mut Unpacked) -> [f32; 2] {
            q45_scales(b, u);
            let m16 = _mm256_set1_epi8(0x10);
            // why the rolling 16-bit shift: bit j of each qh byte reaches bit 4 after j right shifts; bits that
            // cross from the neighbouring byte enter at bit 7 and need 8 shifts to reach bit 0 (j ≤ 7 here)
            let mut h = ld(b.add(16));
            for c in 0..4 {
                let (lo, hi) = nibbles(ld(b.add(48 + 32 * c)));
                u.v[2 * c] = or_masked(lo, _mm256_slli_epi16(h, 4), m16);
                h = _mm256_srli_epi16(h, 1);
                u.v[2 * c + 1] = or_masked(hi, _mm256_slli_epi16(h, 4), m16);
                h = _mm256_srli_epi16(h, 1);
            }
            [f16_at(b), f16_at(b.add(2))]
        }
        #[inline(always)]
        fn finish(dd: [f32; 2], dy: f32, isum: i32, summs: i32) -> f32 {
            finish_min(dd, dy, isum, summs)
        }
    }

    pub struct Q6K;
    impl SuperBlock for Q6K {
        const BYTES: usize = 210;
        const SIGNED: bool = false;
        const HAS_MIN: bool = true;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, u: &mut Unpacked) -> [f32; 2] {
            let mut m = [0i16; 16];
            for i in 0..16 {
                m[i] = 32 * (*b.add(192 + i) as i8) as i16;
            }
            for k in 0..8 {
                u.sc[k] = lanes2(*b.add(192 + 2 * k) as i8 as i16, *b.add(193 + 2 * k) as i8 as i16);
            }
            u.mins = _mm256_loadu_si256(m.as_ptr() as *const __m256i);
            let m30 = _mm256_set1_epi8(0x30);
            for h in 0..2 {
                let (lo0, hi0) = nibbles(ld(b.add(64 * h)));
                let (lo1, hi1) = nibbles(ld(b.add(64 * h + 32)));
                let qh = ld(b.add(128 + 32 * h));
                u.v[4 * h] = or_masked(lo0, _mm256_slli_epi16(qh, 4), m30);
                u.v[4 * h + 1] = or_masked(lo1, _mm256_slli_epi16(qh, 2), m30);
                u.v[4 * h + 2] = or_masked(hi0, qh, m30);
                u.v[4 * h + 3] = or_masked(hi1, _mm256_srli_epi16(qh, 2), m30);
            }
            [f16_at(b.add(208)), 0.0]
        }
        #[inline(always)]
        fn finish(dd: [f32; 2], dy: f32, isum: i32, summs: i32) -> f32 {
            finish_offset(dd, dy, isum, summs)
        }
    }

    pub struct Q3K;
    impl SuperBlock for Q3K {
        const BYTES: usize = 110;
        const SIGNED: bool = false;
        const HAS_MIN: bool = true;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, u: &mut Unpacked) -> [f32; 2] {
            // the 16 six-bit scales in order (ggml's AVX2 `vec_dot_q3_K` kmask trick), then −32
            let a = |i: usize| u32_at(b.add(96 + 4 * i));
            let (a0, a1, a2) = (a(0), a(1), a(2));
            let (k1, k2) = (0x0303_0303u32, 0x0f0f_0f0fu32);
            let v = _mm_setr_epi32(
                ((a0 & k2) | ((a2 & k1) << 4)) as i32,
                ((a1 & k2) | (((a2 >> 2) & k1) << 4)) as i32,
                (((a0 >> 4) & k2) | (((a2 >> 4) & k1) << 4)) as i32,
                (((a1 >> 4) & k2) | (((a2 >> 6) & k1) << 4)) as i32,
            );
            let s16 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(v), _mm256_set1_epi16(32));
            u.mins = _mm256_slli_epi16(s16, 2);
            let lo = _mm256_permute2x128_si256(s16, s16, 0x00);
            let hi = _mm256_permute2x128_si256(s16, s16, 0x11);
            for k in 0..8 {
                let (src, kk) = if k < 4 { (lo, k as i16) } else { (hi, k as i16 - 4) };
                let ix = |e: i16| _mm_set1_epi16((2 * e) | ((2 * e + 1) << 8));
                u.sc[k] = _mm256_shuffle_epi8(src, _mm256_set_m128i(ix(2 * kk + 1), ix(2 * kk)));
            }
            let m04 = _mm256_set1_epi8(4);
            // hmask bit k → bit 2 (rolling shift, see Q5K)
            let mut hm = ld(b);
            for h in 0..2 {
                let c = crumbs(ld(b.add(32 + 32 * h)));
                for t in 0..4 {
                    u.v[4 * h + t] = or_masked(c[t], _mm256_slli_epi16(hm, 2), m04);
                    hm = _mm256_srli_epi16(hm, 1);
                }
            }
            [f16_at(b.add(108)), 0.0]
        }
        #[inline(always)]
        fn finish(dd: [f32; 2], dy: f32, isum: i32, summs: i32) -> f32 {
            finish_offset(dd, dy, isum, summs)
        }
    }

    pub struct Q2K;
    impl SuperBlock for Q2K {
        const BYTES: usize = 84;
        const SIGNED: bool = false;
        const HAS_MIN: bool = true;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, u: &mut Unpacked) -> [f32; 2] {
            let sv = _mm_loadu_si128(b as *const __m128i);
            u.mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sv, 4), _mm_set1_epi8(0x0F)));
            for k in 0..8 {
                u.sc[k] = lanes2((*b.add(2 * k) & 15) as i16, (*b.add(2 * k + 1) & 15) as i16);
            }
            for h in 0..2 {
                u.v[4 * h..4 * h + 4].copy_from_slice(&crumbs(ld(b.add(16 + 32 * h))));
            }
            [f16_at(b.add(80)), f16_at(b.add(82))]
        }
        #[inline(always)]
        fn finish(dd: [f32; 2], dy: f32, isum: i32, summs: i32) -> f32 {
            finish_min(dd, dy, isum, summs)
        }
    }

    pub struct IQ4XS;
    impl SuperBlock for IQ4XS {
        const BYTES: usize = 136;
        const SIGNED: bool = true;
        const HAS_MIN: bool = false;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, u: &mut Unpacked) -> [f32; 2] {
            // spec/quants.md §3.1 kvalues_iq4nl
            let t = _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
            let t = _mm256_set_m128i(t, t);
            let sh = u16::from_le_bytes([*b.add(2), *b.add(3)]);
            for k in 0..8 {
                let ls = ((*b.add(4 + k / 2) >> (4 * (k % 2))) & 15) | ((((sh >> (2 * k)) & 3) as u8) << 4);
                u.sc[k] = _mm256_set1_epi16(ls as i16 - 32);
                let s = _mm256_shuffle_epi8(t, nibbles_n16(b.add(8 + 16 * k)));
                u.sg[k] = s;
                u.v[k] = _mm256_sign_epi8(s, s);
            }
            [f16_at(b), 0.0]
        }
        #[inline(always)]
        fn finish(dd: [f32; 2], dy: f32, isum: i32, _summs: i32) -> f32 {
            (dd[0] * dy) * isum as f32
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn gemm<B: SuperBlock, const NY: usize>(
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
        let mut u = Unpacked { v: [z; 8], sg: [z; 8], sc: [z; 8], mins: z };
        for ix in 0..nx {
            let xr = x.add(ix * bx);
            let mut acc = [0.0f32; NY];
            for ibl in 0..nb {
                let xb = xr.add(ibl * B::BYTES);
                let dd = B::unpack(xb, &mut u);
                for iy in 0..NY {
                    let yb = y.add(iy * by + ibl * Q8_K_BYTES);
                    let mut s = _mm256_setzero_si256();
                    for k in 0..8 {
                        let q8 = ld(yb.add(Q8K_QS + 32 * k));
                        let q8 = if B::SIGNED { _mm256_sign_epi8(q8, u.sg[k]) } else { q8 };
                        s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(u.v[k], q8), u.sc[k]));
                    }
                    let m = if B::HAS_MIN { _mm256_madd_epi16(u.mins, ld(yb.add(Q8K_BSUMS))) } else { z };
                    let (isum, summs) = hsum2_i32(s, m);
                    let dy = f32::from_bits(u32_at(yb));
                    acc[iy] += B::finish(dd, dy, isum, summs);
                }
            }
            for iy in 0..NY {
                *out.add(iy * ldo + ix) = acc[iy];
            }
        }
    }
}

super::gemm_wrappers!(SuperBlock::BYTES, blk QK_K, act Q8_K_BYTES;
    gemm_q2_k => Q2K,
    gemm_q3_k => Q3K,
    gemm_q4_k => Q4K,
    gemm_q5_k => Q5K,
    gemm_q6_k => Q6K,
    gemm_iq4_xs => IQ4XS,
);
