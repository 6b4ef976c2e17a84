//! 32-weight block types against Q8_0 activations: Q8_0, Q4_0, IQ4_NL (AVX2).
//!
//! Reference: `quant/formats/{q8,legacy,iq4}.rs` `vec_dot_*_q8_0`: per block exact `sumi = Σ x·y`, then
//! `sumf += (dx·dy)·sumi`, blocks in order. Here (ik's `mul_mat_qX_0_q8_0_T` order): each weight block is
//! unpacked once into 32 signed i8 and reused for the NY activation rows; per group of four blocks the exact
//! i32 partial sums of each block (two per block, one per 128-bit lane) are interleaved into one 8×i32 vector,
//! converted to f32 and FMA'd with the 4 `dx·dy` scale products (duplicated in both lanes) into one 8-lane f32
//! accumulator per activation row; one horizontal sum per output at the end. Integer per-block sums are exact
//! (checked through `debug_block_sums`); the f32 result agrees with the reference to 1e-5 of Σ|x·y|.
//!
//! No allocation: the activation scales are converted once per call into an on-stack array
//! (`NY × CHUNK` f32); rows longer than `CHUNK` blocks are swept in chunks whose sums are added into `out`.
//!
//! Upstream idea: ggml/src/iqk/iqk_gemm_legacy_quants.cpp @ 8337e4cd (`mul_mat_qX_0_q8_0_T`, sign trick).

use super::check_gemm;

const QK: usize = 32;
const Q8_0_BYTES: usize = 34;

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;
    use super::{Q8_0_BYTES, QK};

    /// Blocks per chunk of the K dimension: the on-stack activation-scale buffer holds `NY × CHUNK` f32
    /// (8 × 512 × 4 B = 16 KiB); rows of up to 16384 weights take a single chunk.
    pub const CHUNK: usize = 512;

    /// One weight block type: bytes per block and its unpack into 32 signed levels.
    pub trait Blk32 {
        const BYTES: usize;
        /// Levels within ±8: every 4-product partial of `dot_signed` fits i16 (≤ 4·8·128), so four blocks
        /// combine through `packs` + `madd` (ik's `Sum4` `can_pack`) instead of the unpack tree.
        const SMALL: bool = false;
        unsafe fn unpack(b: *const u8) -> __m256i;
    }

    pub struct Q80;
    impl Blk32 for Q80 {
        const BYTES: usize = 34;
        #[inline(always)]
        unsafe fn unpack(b: *const u8) -> __m256i {
            _mm256_loadu_si256(b.add(2) as *const __m256i)
        }
    }

    pub struct Q40;
    impl Blk32 for Q40 {
        const BYTES: usize = 18;
        const SMALL: bool = true;
        #[inline(always)]
        unsafe fn unpack(b: *const u8) -> __m256i {
            _mm256_sub_epi8(nibbles_n16(b.add(2)), _mm256_set1_epi8(8))
        }
    }

    pub struct Iq4Nl;
    impl Blk32 for Iq4Nl {
        const BYTES: usize = 18;
        #[inline(always)]
        unsafe fn unpack(b: *const u8) -> __m256i {
            // spec/quants.md §3.1 kvalues_iq4nl, duplicated in both lanes for the in-lane shuffle
            let t = _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
            _mm256_shuffle_epi8(_mm256_set_m128i(t, t), nibbles_n16(b.add(2)))
        }
    }

    /// Four f16 at `p`, `p + stride`, … → 4×f32.
    #[inline(always)]
    unsafe fn d4(p: *const u8, stride: usize) -> __m128 {
        let h = |k: usize| u16::from_le_bytes([*p.add(k * stride), *p.add(k * stride + 1)]) as i16;
        _mm_cvtph_ps(_mm_setr_epi16(h(0), h(1), h(2), h(3), 0, 0, 0, 0))
    }

    /// Exact per-block i32 sums of four blocks' 8×i32 partials `p0..p3` → `[s0 s1 s2 s3 | t0 t1 t2 t3]`, where
    /// `s_k + t_k` = Σ of block k (s: its low 128-bit lane, t: its high lane).
    #[inline(always)]
    pub unsafe fn interleave4(p0: __m256i, p1: __m256i, p2: __m256i, p3: __m256i) -> __m256i {
        // [p0_0+p0_2, p1_0+p1_2, p0_1+p0_3, p1_1+p1_3 | same on the high lane]
        let p01 = _mm256_add_epi32(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
        let p23 = _mm256_add_epi32(_mm256_unpacklo_epi32(p2, p3), _mm256_unpackhi_epi32(p2, p3));
        _mm256_add_epi32(_mm256_unpacklo_epi64(p01, p23), _mm256_unpackhi_epi64(p01, p23))
    }

    /// `interleave4` for a `SMALL` type: the same lanes, exact (no i16 saturation: |partials| ≤ 2·4096).
    #[inline(always)]
    unsafe fn combine4<B: Blk32>(p0: __m256i, p1: __m256i, p2: __m256i, p3: __m256i) -> __m256i {
        if B::SMALL {
            let one = _mm256_set1_epi16(1);
            let p01 = _mm256_madd_epi16(_mm256_packs_epi32(p0, p1), one);
            let p23 = _mm256_madd_epi16(_mm256_packs_epi32(p2, p3), one);
            _mm256_madd_epi16(_mm256_packs_epi32(p01, p23), one)
        } else {
            interleave4(p0, p1, p2, p3)
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn gemm<B: Blk32, const NY: usize>(
        n: usize,
        x: *const u8,
        bx: usize,
        nx: usize,
        y: *const u8,
        by: usize,
        out: *mut f32,
        ldo: usize,
    ) {
        let nb = n / QK;
        // dy of every activation block of the chunk, converted once per call (shared by all nx weight rows)
        let mut dy = [[0.0f32; CHUNK]; NY];
        let mut c0 = 0;
        while c0 < nb {
            let cn = CHUNK.min(nb - c0);
            for (iy, d) in dy.iter_mut().enumerate() {
                for (ib, v) in d[..cn].iter_mut().enumerate() {
                    *v = f16_at(y.add(iy * by + (c0 + ib) * Q8_0_BYTES));
                }
            }
            chunk::<B, NY>(cn, x.add(c0 * B::BYTES), bx, nx, y.add(c0 * Q8_0_BYTES), by, &dy, out, ldo, c0 > 0);
            c0 += cn;
        }
    }

    /// `nb` blocks (≤ CHUNK) of every row; `add`: add into `out` (later chunks) instead of storing.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn chunk<B: Blk32, const NY: usize>(
        nb: usize,
        x: *const u8,
        bx: usize,
        nx: usize,
        y: *const u8,
        by: usize,
        dy: &[[f32; CHUNK]; NY],
        out: *mut f32,
        ldo: usize,
        add: bool,
    ) {
        for ix in 0..nx {
            let xr = x.add(ix * bx);
            let mut acc = [_mm256_setzero_ps(); NY];
            let mut ib = 0;
            while ib + 4 <= nb {
                let xb = xr.add(ib * B::BYTES);
                let s0 = B::unpack(xb);
                let s1 = B::unpack(xb.add(B::BYTES));
                let s2 = B::unpack(xb.add(2 * B::BYTES));
                let s3 = B::unpack(xb.add(3 * B::BYTES));
                let (a0, a1, a2, a3) =
                    (_mm256_sign_epi8(s0, s0), _mm256_sign_epi8(s1, s1), _mm256_sign_epi8(s2, s2), _mm256_sign_epi8(s3, s3));
                let dx = d4(xb, B::BYTES);
                for iy in 0..NY {
                    let yb = y.add(iy * by + ib * Q8_0_BYTES + 2);
                    let ld = |k: usize| _mm256_loadu_si256(yb.add(k * Q8_0_BYTES) as *const __m256i);
                    let sumi = combine4::<B>(
                        dot_signed(a0, s0, ld(0)),
                        dot_signed(a1, s1, ld(1)),
                        dot_signed(a2, s2, ld(2)),
                        dot_signed(a3, s3, ld(3)),
                    );
                    let d = _mm_mul_ps(dx, _mm_loadu_ps(dy[iy].as_ptr().add(ib)));
                    acc[iy] = _mm256_fmadd_ps(_mm256_set_m128(d, d), _mm256_cvtepi32_ps(sumi), acc[iy]);
                }
                ib += 4;
            }
            while ib < nb {
                let xb = xr.add(ib * B::BYTES);
                let s = B::unpack(xb);
                let a = _mm256_sign_epi8(s, s);
                let dx = f16_at(xb);
                for iy in 0..NY {
                    let yb = y.add(iy * by + ib * Q8_0_BYTES);
                    let v = _mm256_loadu_si256(yb.add(2) as *const __m256i);
                    let d = _mm256_set1_ps(dx * dy[iy][ib]);
                    acc[iy] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_signed(a, s, v)), acc[iy]);
                }
                ib += 1;
            }
            for iy in 0..NY {
                let o = out.add(iy * ldo + ix);
                let s = hsum_ps(acc[iy]);
                *o = if add { *o + s } else { s };
            }
        }
    }

    /// The integer part of `gemm` alone: exact per-block sums of one weight row against one activation row,
    /// through the same unpack, `dot_signed` and `combine4` (tail blocks: `hsum_i32`).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn block_sums<B: Blk32>(nb: usize, x: *const u8, y: *const u8, out: &mut [i32]) {
        let mut ib = 0;
        while ib + 4 <= nb {
            let p = |k: usize| {
                let s = B::unpack(x.add((ib + k) * B::BYTES));
                let v = _mm256_loadu_si256(y.add((ib + k) * Q8_0_BYTES + 2) as *const __m256i);
                dot_signed(_mm256_sign_epi8(s, s), s, v)
            };
            let v = combine4::<B>(p(0), p(1), p(2), p(3));
            let v = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
            _mm_storeu_si128(out.as_mut_ptr().add(ib) as *mut __m128i, v);
            ib += 4;
        }
        while ib < nb {
            let s = B::unpack(x.add(ib * B::BYTES));
            let v = _mm256_loadu_si256(y.add(ib * Q8_0_BYTES + 2) as *const __m256i);
            out[ib] = hsum_i32(dot_signed(_mm256_sign_epi8(s, s), s, v));
            ib += 1;
        }
    }
}

super::gemm_wrappers!(Blk32::BYTES, blk QK, act Q8_0_BYTES;
    gemm_q8_0 => Q80,
    gemm_q4_0 => Q40,
    gemm_iq4_nl => Iq4Nl,
);

/// Test hook: the exact per-block integer sums `Σ x·y` that the AVX2 kernels of `q` (Q8_0, Q4_0 or IQ4_NL)
/// compute for one weight row `x` against one Q8_0 activation row `y` of `n` elements. `None` for another type
/// or without AVX2+FMA+F16C.
#[doc(hidden)]
pub fn debug_block_sums(q: crate::quant::QType, n: usize, x: &[u8], y: &[u8]) -> Option<Vec<i32>> {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::quant::QType;
        if !super::avx2_ok() || n % QK != 0 {
            return None;
        }
        let nb = n / QK;
        let bytes = match q {
            QType::Q8_0 => 34,
            QType::Q4_0 | QType::IQ4_NL => 18,
            _ => return None,
        };
        assert!(x.len() >= nb * bytes && y.len() >= nb * Q8_0_BYTES, "debug_block_sums: rows too short");
        let mut out = vec![0i32; nb];
        // SAFETY: lengths checked above; AVX2+FMA+F16C present.
        unsafe {
            match q {
                QType::Q8_0 => imp::block_sums::<imp::Q80>(nb, x.as_ptr(), y.as_ptr(), &mut out),
                QType::Q4_0 => imp::block_sums::<imp::Q40>(nb, x.as_ptr(), y.as_ptr(), &mut out),
                _ => imp::block_sums::<imp::Iq4Nl>(nb, x.as_ptr(), y.as_ptr(), &mut out),
            }
        }
        Some(out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (q, n, x, y);
        None
    }
}
