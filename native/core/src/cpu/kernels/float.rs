//! Float types F32, F16 (F16C) and BF16 against activations of the same type (AVX2 + FMA).
//!
//! Reference: `quant/formats/float.rs` (f32 products accumulated in f64 in element order). Here: 8-lane f32
//! FMA partial sums, a tile of XT weight rows × NY activation rows sharing each load, lane sums at the end,
//! then the `n % 8` tail in f32. The order differs from the reference (like ik's `mul_mat_f16_f16`), so the
//! results agree within 1e-5 of Σ|x·y| rather than bit for bit.

use super::check_gemm;

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;

    pub trait Load8 {
        const ES: usize;
        unsafe fn load(p: *const u8) -> __m256;
        unsafe fn one(p: *const u8) -> f32;
    }

    pub struct F32;
    impl Load8 for F32 {
        const ES: usize = 4;
        #[inline(always)]
        unsafe fn load(p: *const u8) -> __m256 {
            _mm256_loadu_ps(p as *const f32)
        }
        #[inline(always)]
        unsafe fn one(p: *const u8) -> f32 {
            (p as *const f32).read_unaligned()
        }
    }

    pub struct F16;
    impl Load8 for F16 {
        const ES: usize = 2;
        #[inline(always)]
        unsafe fn load(p: *const u8) -> __m256 {
            _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
        }
        #[inline(always)]
        unsafe fn one(p: *const u8) -> f32 {
            f16_at(p)
        }
    }

    pub struct BF16;
    impl Load8 for BF16 {
        const ES: usize = 2;
        #[inline(always)]
        unsafe fn load(p: *const u8) -> __m256 {
            _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i)), 16))
        }
        #[inline(always)]
        unsafe fn one(p: *const u8) -> f32 {
            f32::from_bits((u16::from_le_bytes([*p, *p.add(1)]) as u32) << 16)
        }
    }

    /// XT weight rows starting at `x` against NY activation rows.
    #[inline(always)]
    unsafe fn tile<L: Load8, const XT: usize, const NY: usize>(
        n: usize,
        x: *const u8,
        bx: usize,
        y: *const u8,
        by: usize,
        out: *mut f32,
        ldo: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); NY]; XT];
        let n8 = n / 8 * 8;
        let mut i = 0;
        while i < n8 {
            let mut xv = [_mm256_setzero_ps(); XT];
            for t in 0..XT {
                xv[t] = L::load(x.add(t * bx + i * L::ES));
            }
            for iy in 0..NY {
                let yv = L::load(y.add(iy * by + i * L::ES));
                for t in 0..XT {
                    acc[t][iy] = _mm256_fmadd_ps(xv[t], yv, acc[t][iy]);
                }
            }
            i += 8;
        }
        for t in 0..XT {
            for iy in 0..NY {
                let mut s = hsum_ps(acc[t][iy]);
                for j in n8..n {
                    s += L::one(x.add(t * bx + j * L::ES)) * L::one(y.add(iy * by + j * L::ES));
                }
                *out.add(iy * ldo + t) = s;
            }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn gemm<L: Load8, const NY: usize>(
        n: usize,
        x: *const u8,
        bx: usize,
        nx: usize,
        y: *const u8,
        by: usize,
        out: *mut f32,
        ldo: usize,
    ) {
        let mut ix = 0;
        // why these tiles: XT·NY accumulators + XT weight vectors stay within the 16 ymm registers
        if NY <= 2 {
            while ix + 4 <= nx {
                tile::<L, 4, NY>(n, x.add(ix * bx), bx, y, by, out.add(ix), ldo);
                ix += 4;
            }
        } else if NY <= 4 {
            while ix + 2 <= nx {
                tile::<L, 2, NY>(n, x.add(ix * bx), bx, y, by, out.add(ix), ldo);
                ix += 2;
            }
        }
        while ix < nx {
            tile::<L, 1, NY>(n, x.add(ix * bx), bx, y, by, out.add(ix), ldo);
            ix += 1;
        }
    }
}

// One "block" per element: rows are `n · ES` bytes for weights and activations alike.
super::gemm_wrappers!(Load8::ES, blk 1, act same;
    gemm_f32 => F32,
    gemm_f16 => F16,
    gemm_bf16 => BF16,
);
