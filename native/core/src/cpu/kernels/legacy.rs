//! 32-weight block types against Q8_0 activations: Q8_0, Q4_0, IQ4_NL (AVX2).
//!
//! Reference: `quant/formats/{q8,legacy,iq4}.rs` `vec_dot_*_q8_0`: per block exact `sumi = Σ x·y`, then
//! `sumf += (dx·dy)·sumi`, blocks in order. Here: each weight block is unpacked once into 32 signed i8 and
//! reused for the NY activation rows; four blocks' i32 sums come out of one `hadd` tree, are scaled by
//! `dx·dy` in one 4-wide multiply (same f32 roundings) and added to the row sum in block order → bit-identical.
//!
//! Upstream idea: ggml/src/iqk/iqk_gemm_legacy_quants.cpp @ 8337e4cd (`mul_mat_qX_0_q8_0_T`, sign trick).

use super::check_gemm;

const QK: usize = 32;
const Q8_0_BYTES: usize = 34;

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;
    use super::{Q8_0_BYTES, QK};

    /// One weight block type: bytes per block and its unpack into 32 signed levels.
    pub trait Blk32 {
        const BYTES: usize;
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
            let t = _mm_setr_epi8(
                -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
            );
            _mm256_shuffle_epi8(_mm256_set_m128i(t, t), nibbles_n16(b.add(2)))
        }
    }

    #[inline(always)]
    unsafe fn d4(p: *const u8, stride: usize) -> __m128 {
        let h = |k: usize| u16::from_le_bytes([*p.add(k * stride), *p.add(k * stride + 1)]) as i16;
        _mm_cvtph_ps(_mm_setr_epi16(h(0), h(1), h(2), h(3), 0, 0, 0, 0))
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
        // dy of every activation block, converted once per call (shared by all nx weight rows)
        let mut dy = vec![0.0f32; NY * nb + 4];
        for iy in 0..NY {
            for ib in 0..nb {
                dy[iy * nb + ib] = f16_at(y.add(iy * by + ib * Q8_0_BYTES));
            }
        }
        let dy = dy.as_ptr();
        for ix in 0..nx {
            let xr = x.add(ix * bx);
            let mut acc = [0.0f32; NY];
            let mut ib = 0;
            while ib + 4 <= nb {
                let xb = xr.add(ib * B::BYTES);
                let s0 = B::unpack(xb);
                let s1 = B::unpack(xb.add(B::BYTES));
                let s2 = B::unpack(xb.add(2 * B::BYTES));
                let s3 = B::unpack(xb.add(3 * B::BYTES));
                let (a0, a1, a2, a3) = (
                    _mm256_sign_epi8(s0, s0),
                    _mm256_sign_epi8(s1, s1),
                    _mm256_sign_epi8(s2, s2),
                    _mm256_sign_epi8(s3, s3),
                );
                let dx = d4(xb, B::BYTES);
                for iy in 0..NY {
                    let yb = y.add(iy * by + ib * Q8_0_BYTES + 2);
                    let ld =
                        |k: usize| _mm256_loadu_si256(yb.add(k * Q8_0_BYTES) as *const __m256i);
                    let sumi = hsum4_i32(
                        dot_signed(a0, s0, ld(0)),
                        dot_signed(a1, s1, ld(1)),
                        dot_signed(a2, s2, ld(2)),
                        dot_signed(a3, s3, ld(3)),
                    );
                    let d = _mm_mul_ps(dx, _mm_loadu_ps(dy.add(iy * nb + ib)));
                    let mut p = [0.0f32; 4];
                    _mm_storeu_ps(p.as_mut_ptr(), _mm_mul_ps(d, _mm_cvtepi32_ps(sumi)));
                    acc[iy] = acc[iy] + p[0] + p[1] + p[2] + p[3];
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
                    let sumi = hsum_i32(dot_signed(a, s, v));
                    acc[iy] += (dx * *dy.add(iy * nb + ib)) * sumi as f32;
                }
                ib += 1;
            }
            for iy in 0..NY {
                *out.add(iy * ldo + ix) = acc[iy];
            }
        }
    }
}

super::gemm_wrappers!(Blk32::BYTES, blk QK, act Q8_0_BYTES;
    gemm_q8_0 => Q80,
    gemm_q4_0 => Q40,
    gemm_iq4_nl => Iq4Nl,
);
