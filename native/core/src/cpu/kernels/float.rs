//! Float weights F32, F16 (F16C) and BF16 against F32 activations (AVX2 + FMA), with bit-identical scalar twins.
//!
//! This is ik's AVX2 plan @ 8337e4cd (`iqk_gemm_floats.cpp` `mul_mat_fX_fY_T<…, FloatX, float>`: ggml hands
//! iqk the f32 activations directly for float weights): per output, 8 f32 lanes, lane `l` accumulates
//! `x[8i+l]·y[8i+l]` with FMA over `i` in order; an `n % 8 == 4` tail adds `x·y` of the last 4 elements into
//! lanes 0..3; then ik's `hsum_float_8` (`((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7))`). Any other `n % 4`
//! remainder (iqk does not take such rows) is added after the lane sum, in element order. A tile of XT
//! weight rows × NY activation rows shares each load (per-output arithmetic does not depend on the tiling).

use super::check_gemm;

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;

    pub trait Load8 {
        const ES: usize;
        unsafe fn load(p: *const u8) -> __m256;
        /// 4 elements into the low 4 lanes (the upper lanes are not used).
        unsafe fn load4(p: *const u8) -> __m256;
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
        unsafe fn load4(p: *const u8) -> __m256 {
            _mm256_castps128_ps256(_mm_loadu_ps(p as *const f32))
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
        unsafe fn load4(p: *const u8) -> __m256 {
            _mm256_castps128_ps256(_mm_cvtph_ps(_mm_loadl_epi64(p as *const __m128i)))
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
        unsafe fn load4(p: *const u8) -> __m256 {
            _mm256_castps128_ps256(_mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(_mm_loadl_epi64(p as *const __m128i)), 16)))
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
                let yv = _mm256_loadu_ps(y.add(iy * by + i * 4) as *const f32);
                for t in 0..XT {
                    acc[t][iy] = _mm256_fmadd_ps(xv[t], yv, acc[t][iy]);
                }
            }
            i += 8;
        }
        let n4 = if n - n8 >= 4 { n8 + 4 } else { n8 };
        for t in 0..XT {
            for iy in 0..NY {
                let mut a = acc[t][iy];
                if n4 > n8 {
                    // ik's `load4Floats`: the 4 values in the low lanes, zeros above
                    let lo = |v: __m128| _mm256_insertf128_ps(_mm256_setzero_ps(), v, 0);
                    let xv = lo(_mm256_castps256_ps128(L::load4(x.add(t * bx + n8 * L::ES))));
                    let yv = lo(_mm_loadu_ps(y.add(iy * by + n8 * 4) as *const f32));
                    a = _mm256_fmadd_ps(yv, xv, a);
                }
                let mut s = hsum_ps(a);
                for j in n4..n {
                    s += L::one(x.add(t * bx + j * L::ES)) * (y.add(iy * by + j * 4) as *const f32).read_unaligned();
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

// One "block" per element: weight rows are `n · ES` bytes, activation rows `n · 4` (f32).
super::gemm_wrappers!(Load8::ES, blk 1, act 4;
    gemm_f32 => F32,
    gemm_f16 => F16,
    gemm_bf16 => BF16,
);

// ---------------------------------------------------------------- scalar twins

/// One dot product in the AVX2 kernel's lanes and f32 operations (see the module doc).
fn twin_dot(n: usize, x: &[u8], es: usize, one: fn(&[u8]) -> f32, y: &[u8]) -> f32 {
    let yv = |j: usize| f32::from_le_bytes([y[4 * j], y[4 * j + 1], y[4 * j + 2], y[4 * j + 3]]);
    let xv = |j: usize| one(&x[j * es..]);
    let n8 = n / 8 * 8;
    let n4 = if n - n8 >= 4 { n8 + 4 } else { n8 };
    let mut acc = [0.0f32; 8];
    for i in (0..n4).step_by(8) {
        for (l, a) in acc.iter_mut().enumerate().take((n4 - i).min(8)) {
            *a = yv(i + l).mul_add(xv(i + l), *a);
        }
    }
    let s: [f32; 4] = std::array::from_fn(|i| acc[i] + acc[i + 4]);
    let mut r = (s[0] + s[2]) + (s[1] + s[3]);
    for j in n4..n {
        r += xv(j) * yv(j);
    }
    r
}

fn f32_one(p: &[u8]) -> f32 {
    f32::from_le_bytes([p[0], p[1], p[2], p[3]])
}

fn f16_one(p: &[u8]) -> f32 {
    crate::quant::convert::f16_to_f32(u16::from_le_bytes([p[0], p[1]]))
}

fn bf16_one(p: &[u8]) -> f32 {
    crate::quant::convert::bf16_to_f32(u16::from_le_bytes([p[0], p[1]]))
}

macro_rules! twin {
    ($name:ident, $es:expr, $one:ident) => {
        /// Scalar twin of the AVX2 kernel of the same weight type (bit-identical results).
        #[allow(clippy::too_many_arguments)]
        pub fn $name(n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, out: &mut [f32], ldo: usize) {
            check_gemm(n, 1, n * $es, n * 4, x, bx, nx, y, by, ny, out, ldo);
            for iy in 0..ny {
                for ix in 0..nx {
                    out[iy * ldo + ix] = twin_dot(n, &x[ix * bx..], $es, $one, &y[iy * by..]);
                }
            }
        }
    };
}

twin!(twin_f32, 4, f32_one);
twin!(twin_f16, 2, f16_one);
twin!(twin_bf16, 2, bf16_one);
