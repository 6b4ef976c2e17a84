//! Trellis types IQ1_KT, IQ2_KT, IQ3_KT, IQ4_KT against Q8_2_X4 activations (AVX2 + bit-identical scalar twins).
//!
//! Values (spec/quants.md §6.12): every group index `idx` seeds the generator `x ← x·0xCBAC1FED`, and each value is
//! the byte sum of `x & 0x3F3F3F3F` minus 126 — an integer in −126…126. The block scale multipliers are
//! integers too (IQ4_KS table entries, IQ3_KT's nibble, IQ4_KT's 7-bit field), so per 32-weight block
//! `isum = Σ v·q` is exact in i32, and per block the f32 work is one fixed expression:
//! `acc += (d·dy)·f32(w·isum)` (`d` = row scale × the reference's x86 kernel factor, §6.12.6: IQ2_KT 1.05,
//! IQ3_KT 1.01; `w·isum` in i32, |w·isum| < 2³¹), blocks in row order. The AVX2 kernel generates the 8 (IQ4_KT:
//! 2×4) values of a group at once from `idx·K^k` (k = 1…8, powers precomputed, `_mm256_mullo_epi32`), byte sums
//! through `maddubs`/`madd`, and reuses the block's values for the NY activation rows; the twin repeats the
//! integer sums and the same f32 expression → bit-identical.
//!
//! Not ik's arithmetic (ggml/src/iqk/iqk_gemm_ktquants.cpp @ 8337e4cd goes through f16/int8 trellis values and
//! converts to Q8_0_R8 for ≥ 16 rows); results agree with the reference up to f32 rounding (the same factors).

use super::act::q8_2_offsets;
use super::check_gemm;
use crate::cpu::table::GemmFn;
use crate::quant::convert::bf16_to_f32;
use crate::quant::QType;

/// spec/quants.md §3.1 kvalues_iq4nl (the IQ1_KT/IQ2_KT block multipliers).
const IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
const ACT_BYTES: usize = 36;

/// One trellis type: block bytes, kernel factor, per 32-block (multiplier, the 32 values).
trait Kt {
    const BYTES: usize;
    const FACTOR: f32;
    fn block(x: &[u8], b: usize, v: &mut [i32; 32]) -> i32;
}

/// spec/quants.md §6.12.1 generator: `out.len()` values of group index `idx` at offset `o`, as integers
/// (the same numbers as `quant/formats/kt.rs` `gen` forms in f32).
fn gen_i32(idx: u32, o: u32, out: &mut [i32]) {
    let mut x = idx.wrapping_add(o);
    for v in out.iter_mut() {
        x = x.wrapping_mul(0xCBAC_1FED);
        let t = x & 0x3F3F_3F3F;
        *v = ((t & 0xFF) + ((t >> 8) & 0xFF) + ((t >> 16) & 0xFF) + (t >> 24)) as i32 - 126;
    }
}

struct Iq1Kt;
impl Kt for Iq1Kt {
    const BYTES: usize = 56;
    const FACTOR: f32 = 1.0;
    fn block(x: &[u8], b: usize, v: &mut [i32; 32]) -> i32 {
        for g in 0..4 {
            let idx = x[8 + 4 * b + g] as u32
                | ((((x[40 + 4 * (b % 4) + g] >> (4 * (b / 4))) & 15) as u32) << 8)
                | ((((x[b] >> (4 + g)) & 1) as u32) << 12);
            gen_i32(idx, 4096, &mut v[8 * g..8 * g + 8]);
        }
        IQ4NL[(x[b] & 15) as usize] as i32
    }
}

struct Iq2Kt;
impl Kt for Iq2Kt {
    const BYTES: usize = 68;
    const FACTOR: f32 = 1.05;
    fn block(x: &[u8], b: usize, v: &mut [i32; 32]) -> i32 {
        for g in 0..4 {
            let o = 4 + 2 * (4 * b + g);
            gen_i32(u16::from_le_bytes([x[o], x[o + 1]]) as u32, 4096, &mut v[8 * g..8 * g + 8]);
        }
        IQ4NL[((x[b % 4] >> (4 * (b / 4))) & 15) as usize] as i32
    }
}

struct Iq3Kt;
impl Kt for Iq3Kt {
    const BYTES: usize = 100;
    const FACTOR: f32 = 1.01;
    fn block(x: &[u8], b: usize, v: &mut [i32; 32]) -> i32 {
        for g in 0..4 {
            let o = 4 + 2 * (4 * b + g);
            gen_i32(u16::from_le_bytes([x[o], x[o + 1]]) as u32, 4096, &mut v[8 * g..8 * g + 8]);
            for k in 0..8 {
                let a = v[8 * g + k].abs();
                v[8 * g + k] = if (x[68 + 8 * g + k] >> b) & 1 != 0 { -a } else { a };
            }
        }
        ((x[b % 4] >> (4 * (b / 4))) & 15) as i32
    }
}

struct Iq4Kt;
impl Kt for Iq4Kt {
    const BYTES: usize = 128;
    const FACTOR: f32 = 1.0;
    fn block(x: &[u8], b: usize, v: &mut [i32; 32]) -> i32 {
        let w = u32::from_le_bytes([x[4 * b], x[4 * b + 1], x[4 * b + 2], x[4 * b + 3]]);
        let o = if w & 1 != 0 { 32768 + 4096 } else { 4096 };
        for g in 0..8 {
            let j = 8 * b + g;
            let idx = x[32 + j] as u32 | ((((x[96 + j % 32] >> (4 * (j / 32))) & 15) as u32) << 8) | (((w >> (8 + 3 * g)) & 7) << 12);
            gen_i32(idx, o, &mut v[4 * g..4 * g + 4]);
        }
        ((w & 0xFF) >> 1) as i32 - 64
    }
}

/// Row scale × kernel factor.
#[inline]
fn row_d(x: &[u8], factor: f32) -> f32 {
    f32::from_le_bytes([x[0], x[1], x[2], x[3]]) * factor
}

/// Activation block `ib` of a Q8_2_X4 row: (dy, 32 quants).
#[inline]
fn act_block(y: &[u8], nb: usize, ib: usize) -> (f32, &[u8]) {
    let (od, _, oq) = q8_2_offsets(nb, ib);
    (bf16_to_f32(u16::from_le_bytes([y[od], y[od + 1]])), &y[oq..oq + 32])
}

fn twin<T: Kt>(n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, out: &mut [f32], ldo: usize) {
    let nb = n / 32;
    check_gemm(n, 256, 4 + n / 256 * T::BYTES, nb * ACT_BYTES, x, bx, nx, y, by, ny, out, ldo);
    let mut v = [0i32; 32];
    for ix in 0..nx {
        let xr = &x[ix * bx..];
        let d = row_d(xr, T::FACTOR);
        for iy in 0..ny {
            let yr = &y[iy * by..];
            let mut acc = 0f32;
            for ib in 0..nb {
                let w = T::block(&xr[4 + ib / 8 * T::BYTES..], ib % 8, &mut v);
                let (dy, q) = act_block(yr, nb, ib);
                let isum: i32 = v.iter().zip(q).map(|(&a, &b)| a * b as i8 as i32).sum();
                acc += (d * dy) * (w * isum) as f32;
            }
            out[iy * ldo + ix] = acc;
        }
    }
}

macro_rules! twins {
    ($($name:ident => $ty:ident),+ $(,)?) => {$(
        /// Scalar twin of the AVX2 kernel (bit-identical results; the scalar tier's kernel).
        #[allow(clippy::too_many_arguments)]
        pub fn $name(n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, out: &mut [f32], ldo: usize) {
            twin::<$ty>(n, x, bx, nx, y, by, ny, out, ldo)
        }
    )+};
}
twins!(twin_iq1_kt => Iq1Kt, twin_iq2_kt => Iq2Kt, twin_iq3_kt => Iq3Kt, twin_iq4_kt => Iq4Kt);

/// The KT types' pairing (`cpu/table.rs`): Q8_2_X4 activations and the scalar twin.
pub fn pairing(q: QType) -> Option<(QType, GemmFn)> {
    let f: GemmFn = match q {
        QType::IQ1_KT => twin_iq1_kt,
        QType::IQ2_KT => twin_iq2_kt,
        QType::IQ3_KT => twin_iq3_kt,
        QType::IQ4_KT => twin_iq4_kt,
        _ => return None,
    };
    Some((QType::Q8_2_X4, f))
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;
    use super::{act_block, row_d, Kt};

    /// K^1 … K^8 (mod 2³²) of the generator multiplier.
    const fn powers() -> [i32; 8] {
        let mut p = [0i32; 8];
        let mut x: u32 = 1;
        let mut k = 0;
        while k < 8 {
            x = x.wrapping_mul(0xCBAC_1FED);
            p[k] = x as i32;
            k += 1;
        }
        p
    }
    const KP: [i32; 8] = powers();

    /// Values of one vector of seeds `s` (lane k: seed of its group × K^(k+1) already applied by the caller's
    /// multiplier vector `m`): byte sum of `x & 0x3F3F3F3F` − 126 in 8 i32 lanes.
    #[inline(always)]
    unsafe fn values(s: __m256i, m: __m256i) -> __m256i {
        let x = _mm256_mullo_epi32(s, m);
        let t = _mm256_and_si256(x, _mm256_set1_epi32(0x3F3F_3F3F));
        let s = _mm256_madd_epi16(_mm256_maddubs_epi16(t, _mm256_set1_epi8(1)), _mm256_set1_epi16(1));
        _mm256_sub_epi32(s, _mm256_set1_epi32(126))
    }

    /// The 32 values of 32-block `b` of a block at `x` as 4 vectors of 8 i32 (element order), and the multiplier.
    pub trait KtSimd: Kt {
        unsafe fn block_simd(x: *const u8, b: usize) -> ([__m256i; 4], i32);
    }

    #[inline(always)]
    unsafe fn u16_at(p: *const u8) -> u32 {
        u16::from_le_bytes([*p, *p.add(1)]) as u32
    }

    #[inline(always)]
    unsafe fn g8(idx: u32, o: u32) -> __m256i {
        values(_mm256_set1_epi32(idx.wrapping_add(o) as i32), _mm256_loadu_si256(KP.as_ptr() as *const __m256i))
    }

    impl KtSimd for super::Iq1Kt {
        #[inline(always)]
        unsafe fn block_simd(x: *const u8, b: usize) -> ([__m256i; 4], i32) {
            let xb = *x.add(b);
            let mut v = [_mm256_setzero_si256(); 4];
            for (g, vg) in v.iter_mut().enumerate() {
                let idx = *x.add(8 + 4 * b + g) as u32
                    | ((((*x.add(40 + 4 * (b % 4) + g) >> (4 * (b / 4))) & 15) as u32) << 8)
                    | ((((xb >> (4 + g)) & 1) as u32) << 12);
                *vg = g8(idx, 4096);
            }
            (v, super::IQ4NL[(xb & 15) as usize] as i32)
        }
    }

    impl KtSimd for super::Iq2Kt {
        #[inline(always)]
        unsafe fn block_simd(x: *const u8, b: usize) -> ([__m256i; 4], i32) {
            let mut v = [_mm256_setzero_si256(); 4];
            for (g, vg) in v.iter_mut().enumerate() {
                *vg = g8(u16_at(x.add(4 + 2 * (4 * b + g))), 4096);
            }
            (v, super::IQ4NL[((*x.add(b % 4) >> (4 * (b / 4))) & 15) as usize] as i32)
        }
    }

    impl KtSimd for super::Iq3Kt {
        #[inline(always)]
        unsafe fn block_simd(x: *const u8, b: usize) -> ([__m256i; 4], i32) {
            let bit = _mm256_set1_epi32(1 << b);
            let mut v = [_mm256_setzero_si256(); 4];
            for (g, vg) in v.iter_mut().enumerate() {
                let a = _mm256_abs_epi32(g8(u16_at(x.add(4 + 2 * (4 * b + g))), 4096));
                let sb = _mm256_cvtepu8_epi32(_mm_loadl_epi64(x.add(68 + 8 * g) as *const __m128i));
                let neg = _mm256_cmpeq_epi32(_mm256_and_si256(sb, bit), bit);
                *vg = _mm256_sub_epi32(_mm256_xor_si256(a, neg), neg);
            }
            (v, ((*x.add(b % 4) >> (4 * (b / 4))) & 15) as i32)
        }
    }

    impl KtSimd for super::Iq4Kt {
        #[inline(always)]
        unsafe fn block_simd(x: *const u8, b: usize) -> ([__m256i; 4], i32) {
            let w = u32::from_le_bytes([*x.add(4 * b), *x.add(4 * b + 1), *x.add(4 * b + 2), *x.add(4 * b + 3)]);
            let o: u32 = if w & 1 != 0 { 32768 + 4096 } else { 4096 };
            let seed = |g: usize| {
                let j = 8 * b + g;
                (*x.add(32 + j) as u32 | ((((*x.add(96 + j % 32) >> (4 * (j / 32))) & 15) as u32) << 8) | (((w >> (8 + 3 * g)) & 7) << 12))
                    .wrapping_add(o) as i32
            };
            let m = _mm256_setr_epi32(KP[0], KP[1], KP[2], KP[3], KP[0], KP[1], KP[2], KP[3]);
            let mut v = [_mm256_setzero_si256(); 4];
            for (h, vh) in v.iter_mut().enumerate() {
                let (a, c) = (seed(2 * h), seed(2 * h + 1));
                *vh = values(_mm256_setr_epi32(a, a, a, a, c, c, c, c), m);
            }
            (v, ((w & 0xFF) >> 1) as i32 - 64)
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm<T: KtSimd, const NY: usize>(
        n: usize,
        x: &[u8],
        bx: usize,
        nx: usize,
        y: &[u8],
        by: usize,
        out: &mut [f32],
        ldo: usize,
    ) {
        let nb = n / 32;
        for ix in 0..nx {
            let xr = &x[ix * bx..];
            let d = row_d(xr, T::FACTOR);
            let mut acc = [0f32; NY];
            for ib in 0..nb {
                let (v, w) = T::block_simd(xr.as_ptr().add(4 + ib / 8 * T::BYTES), ib % 8);
                for iy in 0..NY {
                    let (dy, q) = act_block(&y[iy * by..], nb, ib);
                    let mut s = _mm256_setzero_si256();
                    for (g, vg) in v.iter().enumerate() {
                        let qg = _mm256_cvtepi8_epi32(_mm_loadl_epi64(q.as_ptr().add(8 * g) as *const __m128i));
                        s = _mm256_add_epi32(s, _mm256_mullo_epi32(*vg, qg));
                    }
                    acc[iy] += (d * dy) * (w * hsum_i32(s)) as f32;
                }
            }
            for iy in 0..NY {
                out[iy * ldo + ix] = acc[iy];
            }
        }
    }
}

macro_rules! avx2 {
    ($($name:ident => $ty:ident),+ $(,)?) => {$(
        /// Safe entry: call only when the CPU has AVX2+FMA+F16C (the table guarantees it).
        #[allow(clippy::too_many_arguments)]
        pub fn $name<const NY: usize>(n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, out: &mut [f32], ldo: usize) {
            #[cfg(target_arch = "x86_64")]
            {
                assert_eq!(ny, NY, "gemm[ny-1] called with another ny");
                check_gemm(n, 256, 4 + n / 256 * <$ty as Kt>::BYTES, n / 32 * ACT_BYTES, x, bx, nx, y, by, ny, out, ldo);
                assert!(super::avx2_ok());
                // SAFETY: sizes checked above; AVX2+FMA+F16C present (tier check).
                unsafe { imp::gemm::<$ty, NY>(n, x, bx, nx, y, by, out, ldo) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("AVX2 kernel on a non-x86 target")
        }
    )+};
}
avx2!(gemm_iq1_kt => Iq1Kt, gemm_iq2_kt => Iq2Kt, gemm_iq3_kt => Iq3Kt, gemm_iq4_kt => Iq4Kt);
