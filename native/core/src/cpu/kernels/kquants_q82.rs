//! Q4_K, Q5_K, Q6_K against Q8_2_X4 activations (AVX2 + bit-identical scalar twins).
//!
//! ik's AVX2 plan for these weights @ 8337e4cd (`iqk_set_kernels_kquants`: expected B type Q8_2_X4;
//! `mul_mat_qX_K_q8_2_X4_T` for Q4_K/Q5_K, `mul_mat_qY_K_q8_2_X4_T` for Q6_K), rewritten. A 256-weight
//! super-block `i` meets the eight 32-quant Q8_2_X4 blocks `8i..8i+7` (records `2i`, `2i+1`); lane `l` of the
//! 8-lane f32 accumulator of an activation row belongs to block `4j + l % 4` of half `j` (128 weights),
//! low lanes to elements 0..15 of that block, high lanes to 16..31. Per super-block:
//! * Q4_K / Q5_K (unsigned levels 0..15 / 0..31, 6-bit scales `sc` and mins `m`): first the min term through
//!   the activation sums, `acc[k] = fma(dy[k]·Σq[k], −(dmin·m[k]), acc[k])` for k = 0..7, then for j = 0, 1
//!   `acc[l] = fma((d·sc[b])·dy[b], f32(Σ levels·q over the half block), acc[l])`, b = 4j + l % 4;
//! * Q6_K (signed levels −32..31, 16 i8 scales of 16 weights): no min term; `acc[l] = fma((d·sc[2b + l/4])·dy[b],
//!   f32(Σ), acc[l])`;
//! * result: `hsum8(acc)` = `(s0 + s2) + (s1 + s3)` with `s = lo + hi`.
//!
//! The integer sums are exact: the i16 partials of `maddubs` and their four-way i16 sums stay below 2¹⁵
//! (Q5_K: 4·2·31·128, Q6_K: 4·2·32·127; the Q8_2_X4 quantizer never writes −128), so the twins (`twin_*`)
//! compute them as plain i32 sums and repeat the f32 operations in the same order (`mul_add` = FMA).

use super::check_gemm;
use crate::quant::convert::{bf16_to_f32, f16_to_f32};

const QK_K: usize = 256;
/// Q8_2_X4 bytes per 256 weights: two 144-byte records of four blocks.
const ACT_BYTES: usize = 288;

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;

    /// One super-block weight type.
    pub trait KBlk {
        const BYTES: usize;
        /// Q6_K's signed levels and 16 scales (else Q4_K/Q5_K: unsigned levels, 8 scales + 8 mins).
        const Q6: bool = false;
        /// The 4 × 32 levels of half `j` (128 weights) of the block at `b`, element order.
        unsafe fn levels(b: *const u8, j: usize) -> [__m256i; 4];
    }

    #[inline(always)]
    unsafe fn q4_levels(qs: *const u8, j: usize) -> [__m256i; 4] {
        let ml = _mm256_set1_epi8(0x0F);
        let a = _mm256_loadu_si256((qs as *const __m256i).add(2 * j));
        let b = _mm256_loadu_si256((qs as *const __m256i).add(2 * j + 1));
        [
            _mm256_and_si256(a, ml),
            _mm256_and_si256(_mm256_srli_epi16(a, 4), ml),
            _mm256_and_si256(b, ml),
            _mm256_and_si256(_mm256_srli_epi16(b, 4), ml),
        ]
    }

    pub struct Q4K;
    impl KBlk for Q4K {
        const BYTES: usize = 144;
        #[inline(always)]
        unsafe fn levels(b: *const u8, j: usize) -> [__m256i; 4] {
            q4_levels(b.add(16), j)
        }
    }

    pub struct Q5K;
    impl KBlk for Q5K {
        const BYTES: usize = 176;
        #[inline(always)]
        unsafe fn levels(b: *const u8, j: usize) -> [__m256i; 4] {
            let v = q4_levels(b.add(48), j);
            let h = _mm256_loadu_si256(b.add(16) as *const __m256i);
            let h = if j == 0 { h } else { _mm256_srli_epi16(h, 4) };
            let mh = _mm256_set1_epi8(0x10);
            [
                _mm256_or_si256(v[0], _mm256_and_si256(_mm256_slli_epi16(h, 4), mh)),
                _mm256_or_si256(v[1], _mm256_and_si256(_mm256_slli_epi16(h, 3), mh)),
                _mm256_or_si256(v[2], _mm256_and_si256(_mm256_slli_epi16(h, 2), mh)),
                _mm256_or_si256(v[3], _mm256_and_si256(_mm256_slli_epi16(h, 1), mh)),
            ]
        }
    }

    pub struct Q6K;
    impl KBlk for Q6K {
        const BYTES: usize = 210;
        const Q6: bool = true;
        #[inline(always)]
        unsafe fn levels(b: *const u8, j: usize) -> [__m256i; 4] {
            let (ml, mh, m32) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x30), _mm256_set1_epi8(-32));
            let l1 = _mm256_loadu_si256((b as *const __m256i).add(2 * j));
            let l2 = _mm256_loadu_si256((b as *const __m256i).add(2 * j + 1));
            let h = _mm256_loadu_si256((b.add(128) as *const __m256i).add(j));
            let v = [
                _mm256_or_si256(_mm256_and_si256(l1, ml), _mm256_and_si256(_mm256_slli_epi16(h, 4), mh)),
                _mm256_or_si256(_mm256_and_si256(l2, ml), _mm256_and_si256(_mm256_slli_epi16(h, 2), mh)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), ml), _mm256_and_si256(h, mh)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l2, 4), ml), _mm256_and_si256(_mm256_srli_epi16(h, 2), mh)),
            ];
            [_mm256_add_epi8(v[0], m32), _mm256_add_epi8(v[1], m32), _mm256_add_epi8(v[2], m32), _mm256_add_epi8(v[3], m32)]
        }
    }

    /// Four i16 pair-sum vectors (one per Q8 block) → `[b0lo b1lo b2lo b3lo | b0hi b1hi b2hi b3hi]` as i32
    /// (i16 adds as ik; exact, see the module doc).
    #[inline(always)]
    unsafe fn sum4(p0: __m256i, p1: __m256i, p2: __m256i, p3: __m256i) -> __m256i {
        let p01 = _mm256_add_epi16(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
        let p23 = _mm256_add_epi16(_mm256_unpacklo_epi32(p2, p3), _mm256_unpackhi_epi32(p2, p3));
        let p = _mm256_add_epi16(_mm256_unpacklo_epi64(p01, p23), _mm256_unpackhi_epi64(p01, p23));
        _mm256_madd_epi16(_mm256_set1_epi16(1), p)
    }

    /// The 8 bf16 scales of records `g`, `g + 1` (blocks 8i..8i+7) → 8×f32.
    #[inline(always)]
    unsafe fn dy8(g: *const u8) -> __m256 {
        let a = _mm_cvtepu16_epi32(_mm_loadl_epi64(g as *const __m128i));
        let b = _mm_cvtepu16_epi32(_mm_loadl_epi64(g.add(144) as *const __m128i));
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_set_m128i(b, a), 16))
    }

    /// Q4_K/Q5_K 12-byte scales → (8 scales, 8 mins), ik's `make_q4_scales`.
    #[inline(always)]
    unsafe fn q4_scales(p: *const u8) -> (u64, u64) {
        let w = |k: usize| u32::from_le_bytes([*p.add(4 * k), *p.add(4 * k + 1), *p.add(4 * k + 2), *p.add(4 * k + 3)]);
        let (a0, a1, a2) = (w(0), w(1), w(2));
        let sc = (a0 & 0x3f3f_3f3f) as u64 | ((((a2 & 0x0f0f_0f0f) | ((a0 >> 2) & 0x3030_3030)) as u64) << 32);
        let mn = (a1 & 0x3f3f_3f3f) as u64 | (((((a2 >> 4) & 0x0f0f_0f0f) | ((a1 >> 2) & 0x3030_3030)) as u64) << 32);
        (sc, mn)
    }

    #[inline(always)]
    unsafe fn u8x8_ps(v: u64) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi64x(0, v as i64)))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn gemm<B: KBlk, const NY: usize>(
        n: usize,
        x: *const u8,
        bx: usize,
        nx: usize,
        y: *const u8,
        by: usize,
        out: *mut f32,
        ldo: usize,
    ) {
        let nb = n / super::QK_K;
        let shuff =
            _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
        for ix in 0..nx {
            let xr = x.add(ix * bx);
            let mut acc = [_mm256_setzero_ps(); NY];
            for i in 0..nb {
                let xb = xr.add(i * B::BYTES);
                let mut dy = [_mm256_setzero_ps(); NY];
                let scales = if B::Q6 {
                    let vd = _mm256_set1_ps(f16_at(xb.add(208)));
                    let s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(xb.add(192) as *const __m128i));
                    let s16 = _mm256_shuffle_epi8(s16, shuff);
                    let cvt = |h: __m128i| _mm256_mul_ps(vd, _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(h)));
                    for (iy, d) in dy.iter_mut().enumerate() {
                        *d = dy8(y.add(iy * by + 2 * i * 144));
                    }
                    [cvt(_mm256_castsi256_si128(s16)), cvt(_mm256_extracti128_si256(s16, 1))]
                } else {
                    let (sc, mn) = q4_scales(xb.add(4));
                    let vm = _mm256_set1_ps(f16_at(xb.add(2)));
                    let mins = _mm256_mul_ps(_mm256_set1_ps(-1.0), _mm256_mul_ps(vm, u8x8_ps(mn)));
                    for iy in 0..NY {
                        let g = y.add(iy * by + 2 * i * 144);
                        dy[iy] = dy8(g);
                        let m1 = _mm_cvtepi16_epi32(_mm_loadl_epi64(g.add(8) as *const __m128i));
                        let m2 = _mm_cvtepi16_epi32(_mm_loadl_epi64(g.add(152) as *const __m128i));
                        let my = _mm256_mul_ps(dy[iy], _mm256_cvtepi32_ps(_mm256_set_m128i(m2, m1)));
                        acc[iy] = _mm256_fmadd_ps(my, mins, acc[iy]);
                    }
                    let all = _mm256_mul_ps(_mm256_set1_ps(f16_at(xb)), u8x8_ps(sc));
                    let (lo, hi) = (_mm256_castps256_ps128(all), _mm256_extractf128_ps(all, 1));
                    [_mm256_set_m128(lo, lo), _mm256_set_m128(hi, hi)]
                };
                for (j, &sj) in scales.iter().enumerate() {
                    let v = B::levels(xb, j);
                    let us = if B::Q6 { [0, 1, 2, 3].map(|k| _mm256_sign_epi8(v[k], v[k])) } else { v };
                    for iy in 0..NY {
                        let q = y.add(iy * by + (2 * i + j) * 144 + 16);
                        let p = |k: usize| {
                            let yk = _mm256_loadu_si256(q.add(32 * k) as *const __m256i);
                            _mm256_maddubs_epi16(us[k], if B::Q6 { _mm256_sign_epi8(yk, v[k]) } else { yk })
                        };
                        let sumi = sum4(p(0), p(1), p(2), p(3));
                        let d4 = if j == 0 { _mm256_castps256_ps128(dy[iy]) } else { _mm256_extractf128_ps(dy[iy], 1) };
                        let d = _mm256_mul_ps(sj, _mm256_set_m128(d4, d4));
                        acc[iy] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc[iy]);
                    }
                }
            }
            for (iy, a) in acc.iter().enumerate() {
                *out.add(iy * ldo + ix) = hsum_ps(*a);
            }
        }
    }
}

super::gemm_wrappers!(KBlk::BYTES, blk QK_K, act ACT_BYTES;
    gemm_q4_k => Q4K,
    gemm_q5_k => Q5K,
    gemm_q6_k => Q6K,
);

// ---------------------------------------------------------------- scalar twins

/// A decoded super-block: `d`, `dmin` (0 for Q6_K), the scales per lane group (8 for Q4_K/Q5_K, 16 for Q6_K),
/// the mins (Q4_K/Q5_K) and the 256 levels (unsigned for Q4_K/Q5_K, −32..31 for Q6_K).
struct Decoded {
    d: f32,
    dmin: f32,
    sc: [i32; 16],
    mn: [i32; 8],
    lv: [i32; QK_K],
}

fn f16_le(b: &[u8], o: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[o], b[o + 1]]))
}

/// spec/quants.md Q4_K/Q5_K 6-bit scale and min of sub-block `j`.
fn scale_min_k4(s: &[u8], j: usize) -> (i32, i32) {
    if j < 4 {
        ((s[j] & 63) as i32, (s[j + 4] & 63) as i32)
    } else {
        (((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4)) as i32, ((s[j + 4] >> 4) | ((s[j] >> 6) << 4)) as i32)
    }
}

fn decode_q45(b: &[u8], q5: bool) -> Decoded {
    let mut k = Decoded { d: f16_le(b, 0), dmin: f16_le(b, 2), sc: [0; 16], mn: [0; 8], lv: [0; QK_K] };
    for j in 0..8 {
        (k.sc[j], k.mn[j]) = scale_min_k4(&b[4..16], j);
    }
    let (qh, qs) = if q5 { (&b[16..48], &b[48..176]) } else { (&b[0..0], &b[16..144]) };
    for c in 0..4 {
        for l in 0..32 {
            let hi = |bit: usize| if q5 { (((qh[l] >> bit) & 1) as i32) << 4 } else { 0 };
            k.lv[64 * c + l] = (qs[32 * c + l] & 15) as i32 | hi(2 * c);
            k.lv[64 * c + 32 + l] = (qs[32 * c + l] >> 4) as i32 | hi(2 * c + 1);
        }
    }
    k
}

fn decode_q4_k(b: &[u8]) -> Decoded {
    decode_q45(b, false)
}

fn decode_q5_k(b: &[u8]) -> Decoded {
    decode_q45(b, true)
}

fn decode_q6_k(b: &[u8]) -> Decoded {
    let mut k = Decoded { d: f16_le(b, 208), dmin: 0.0, sc: [0; 16], mn: [0; 8], lv: [0; QK_K] };
    for (s, &v) in k.sc.iter_mut().zip(&b[192..208]) {
        *s = v as i8 as i32;
    }
    for h in 0..2 {
        let (ql, qh) = (&b[64 * h..64 * h + 64], &b[128 + 32 * h..160 + 32 * h]);
        for l in 0..32 {
            let lv = &mut k.lv[128 * h..];
            lv[l] = ((ql[l] & 15) | ((qh[l] & 3) << 4)) as i32 - 32;
            lv[l + 32] = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            lv[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            lv[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
        }
    }
    k
}

/// One dot product in the AVX2 kernel's lanes and f32 operations (see the module doc).
fn twin_dot(n: usize, x: &[u8], xbytes: usize, dec: fn(&[u8]) -> Decoded, q6: bool, y: &[u8]) -> f32 {
    let mut acc = [0.0f32; 8];
    for i in 0..n / QK_K {
        let k = dec(&x[i * xbytes..(i + 1) * xbytes]);
        let g = &y[i * ACT_BYTES..(i + 1) * ACT_BYTES];
        // block b of this super-block: record b / 4, slot b % 4
        let dy: [f32; 8] = std::array::from_fn(|b| {
            let o = 144 * (b / 4) + 2 * (b % 4);
            bf16_to_f32(u16::from_le_bytes([g[o], g[o + 1]]))
        });
        let q = |b: usize, e: usize| g[144 * (b / 4) + 16 + 32 * (b % 4) + e] as i8 as i32;
        if !q6 {
            for (b, a) in acc.iter_mut().enumerate() {
                let o = 144 * (b / 4) + 8 + 2 * (b % 4);
                let m = i16::from_le_bytes([g[o], g[o + 1]]) as f32;
                let mins = -(k.dmin * k.mn[b] as f32); // = −1·x (ik), exact for finite x
                *a = (dy[b] * m).mul_add(mins, *a);
            }
        }
        for j in 0..2 {
            for (l, a) in acc.iter_mut().enumerate() {
                let (b, h) = (4 * j + l % 4, l / 4);
                let s: i32 = (16 * h..16 * h + 16).map(|e| k.lv[32 * b + e] * q(b, e)).sum();
                let sc = if q6 { k.d * k.sc[2 * b + h] as f32 } else { k.d * k.sc[b] as f32 };
                *a = (sc * dy[b]).mul_add(s as f32, *a);
            }
        }
    }
    let s: [f32; 4] = std::array::from_fn(|i| acc[i] + acc[i + 4]);
    (s[0] + s[2]) + (s[1] + s[3])
}

macro_rules! twin {
    ($name:ident, $bytes:expr, $dec:ident, $q6:expr) => {
        /// Scalar twin of the AVX2 kernel of the same type (bit-identical results).
        #[allow(clippy::too_many_arguments)]
        pub fn $name(n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, out: &mut [f32], ldo: usize) {
            check_gemm(n, QK_K, n / QK_K * $bytes, n / QK_K * ACT_BYTES, x, bx, nx, y, by, ny, out, ldo);
            for iy in 0..ny {
                for ix in 0..nx {
                    out[iy * ldo + ix] = twin_dot(n, &x[ix * bx..], $bytes, $dec, $q6, &y[iy * by..]);
                }
            }
        }
    };
}

twin!(twin_q4_k, 144, decode_q4_k, false);
twin!(twin_q5_k, 176, decode_q5_k, false);
twin!(twin_q6_k, 210, decode_q6_k, true);
