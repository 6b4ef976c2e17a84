//! 32-weight block types against Q8_2_X4 activations: Q8_0, IQ4_NL, Q4_0, Q5_0, Q6_0, Q4_1, Q5_1 (AVX2 + bit-identical
//! scalar twins).
//!
//! This is ik's AVX2 plan for these weights @ 8337e4cd (`iqk_gemm_legacy_quants.cpp`,
//! `iqk_set_kernels_legacy_quants`): the activations are Q8_2_X4 (`act::quantize_q8_2_x4`: bf16 scales,
//! round-half-even quants, per-block Σq), and
//! * Q8_0, IQ4_NL (`mul_mat_qX_0_q8_0_T<…, block_q8_2>`, `Sum4TypeQ82S`): signed levels, per group of four
//!   blocks the exact i32 half-block sums `[b0lo b1lo b2lo b3lo | b0hi b1hi b2hi b3hi]` (lo: elements 0..15,
//!   hi: 16..31) are converted to f32 and FMA'd with `dx·dy` (both lanes) into one 8-lane accumulator per
//!   activation row; a tail block (`nb % 4`) adds its 8 four-element partial sums with `dx·dy`;
//! * Q4_0, Q5_0, Q6_0 (`Q4_0_1_Unpacker`, `Q5_0_1_Unpacker`, `Q6_0_1_Unpacker`, `mul_mat_qX_1_q8_2_T`):
//!   unsigned levels 0..15 / 0..31 / 0..63 (Q4_0 through `Sum4q4`, the others `Sum4TypeQ82`: unsigned i32
//!   partials, same lanes) and the offset −8 / −16 / −32 applied through the activation sums: per group
//!   `accm += (−o·dx)·(dy·Σq)` (4 lanes), tail blocks `accm += ((−o·dx)·(dy·Σq))·0.25` in every lane;
//! * Q4_1, Q5_1 (`Q4_1_Unpacker`, `Q5_1_Unpacker`, `ScaleHelperQ_1`): unsigned levels, `Sum4TypeQ82`, and the
//!   block min instead of the offset: `accm += m·(dy·Σq)`, tail blocks `(m·(dy·Σq))·0.25` in every lane;
//! * result: `hsum8(acc)` (Q8_0, IQ4_NL) or `hsum4(lo(acc) + hi(acc) + accm)` (the others) with ik's lane order.
//!
//! The integer sums are exact (|pair| ≤ 2·127·127 and Q4_0's i16 partials ≤ 4·2·15·128 never saturate), so
//! the scalar twins (`twin_*`) reproduce the AVX2 results bit for bit by emulating the same lanes and f32
//! operations (`mul_add` = FMA). Batches of ≥ 32 rows do not come here: `cpu/ops.rs` converts the weights to
//! Q8_0_R8 (Q4_1/Q5_1 not yet) and runs `q8_r8.rs`, as ik does (docs/batch-path.md).

use super::act::q8_2_offsets;
use super::check_gemm;
use crate::quant::convert::{bf16_to_f32, f16_to_f32};
use crate::quant::formats::{unpack_q5_0, unpack_q5_1, unpack_q6_0};

const QK: usize = 32;
const ACT_BYTES: usize = 36;
/// spec/quants.md §3.1 kvalues_iq4nl.
const IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;
    use super::{q8_2_offsets, QK};

    /// One weight block type: bytes per block and its unpack into 32 levels.
    pub trait Blk32 {
        const BYTES: usize;
        /// Unsigned levels with this offset taken through the activation sums (the `qX_1` path); 0 = signed.
        const OFFSET: i32 = 0;
        /// Four-block integer sums through ik's i16 `Sum4q4` (4-bit levels only) instead of i32 partials.
        const SUM_Q4: bool = false;
        /// Q4_1/Q5_1: unsigned levels and the block's own min `m` (f16 at byte 2) instead of an offset
        /// (`ScaleHelperQ_1`: the min term is `m·(dy·Σq)`).
        const MIN: bool = false;
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
        const OFFSET: i32 = 8;
        const SUM_Q4: bool = true;
        #[inline(always)]
        unsafe fn unpack(b: *const u8) -> __m256i {
            nibbles_n16(b.add(2))
        }
    }

    /// Q5_0: d, qh (bit j = fifth bit of element j), qs; levels 0..31.
    pub struct Q50;
    impl Blk32 for Q50 {
        const BYTES: usize = 22;
        const OFFSET: i32 = 16;
        #[inline(always)]
        unsafe fn unpack(b: *const u8) -> __m256i {
            _mm256_or_si256(nibbles_n16(b.add(6)), fifth_bits(b.add(2)))
        }
    }

    /// Q4_1: d, m, qs; levels 0..15.
    pub struct Q41;
    impl Blk32 for Q41 {
        const BYTES: usize = 20;
        const MIN: bool = true;
        #[inline(always)]
        unsafe fn unpack(b: *const u8) -> __m256i {
            nibbles_n16(b.add(4))
        }
    }

    /// Q5_1: d, m, qh, qs; levels 0..31.
    pub struct Q51;
    impl Blk32 for Q51 {
        const BYTES: usize = 24;
        const MIN: bool = true;
        #[inline(always)]
        unsafe fn unpack(b: *const u8) -> __m256i {
            _mm256_or_si256(nibbles_n16(b.add(8)), fifth_bits(b.add(4)))
        }
    }

    /// Bit k of the u32 at `p` → 0x10 in byte k (the fifth bit of Q5_0/Q5_1 levels).
    #[inline(always)]
    unsafe fn fifth_bits(p: *const u8) -> __m256i {
        let qh = (p as *const i32).read_unaligned();
        // byte k ← qh byte k/8; all bits but bit k%8 set, so == −1 exactly where element k's bit is set
        let sh = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
        let bytes = _mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(qh), sh), _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
        _mm256_and_si256(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi8(-1)), _mm256_set1_epi8(0x10))
    }

    /// Q6_0: d, qh[8] (element j < 16: bits 4(j/8)..+1 of qh[j%8]; element j+16: the next two), qs; levels 0..63.
    pub struct Q60;
    impl Blk32 for Q60 {
        const BYTES: usize = 26;
        const OFFSET: i32 = 32;
        #[inline(always)]
        unsafe fn unpack(b: *const u8) -> __m256i {
            let qh = (b.add(2) as *const i64).read_unaligned();
            // quadword k covers elements 8k..8k+7: shift 0, 4, 2, 6; the low two bits of each byte then remain
            let h = _mm256_srlv_epi64(_mm256_set1_epi64x(qh), _mm256_set_epi64x(6, 2, 4, 0));
            let hi = _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(3)), 4);
            _mm256_or_si256(nibbles_n16(b.add(10)), hi)
        }
    }

    pub struct Iq4Nl;
    impl Blk32 for Iq4Nl {
        const BYTES: usize = 18;
        #[inline(always)]
        unsafe fn unpack(b: *const u8) -> __m256i {
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

    /// Per-block i32 sums of four blocks' 8×i32 partials → `[s0 s1 s2 s3 | t0 t1 t2 t3]` (s: low lane of each
    /// block, t: high lane); exact.
    #[inline(always)]
    unsafe fn interleave4(p0: __m256i, p1: __m256i, p2: __m256i, p3: __m256i) -> __m256i {
        let p01 = _mm256_add_epi32(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
        let p23 = _mm256_add_epi32(_mm256_unpacklo_epi32(p2, p3), _mm256_unpackhi_epi32(p2, p3));
        _mm256_add_epi32(_mm256_unpacklo_epi64(p01, p23), _mm256_unpackhi_epi64(p01, p23))
    }

    /// Unsigned 0..15 × signed: the 8 four-element partials as i32.
    #[inline(always)]
    unsafe fn dot_unsigned(x: __m256i, y: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1))
    }

    /// ik's `Sum4q4`: i16 pair sums of four blocks combined in i16 (exact: ≤ 4·2·15·128), then widened.
    #[inline(always)]
    unsafe fn sum4_q4(q: &[__m256i; 4], y: *const u8) -> __m256i {
        let m = |k: usize| _mm256_maddubs_epi16(q[k], _mm256_loadu_si256(y.add(32 * k) as *const __m256i));
        let (p0, p1, p2, p3) = (m(0), m(1), m(2), m(3));
        let p01 = _mm256_add_epi16(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
        let p23 = _mm256_add_epi16(_mm256_unpacklo_epi32(p2, p3), _mm256_unpackhi_epi32(p2, p3));
        let p = _mm256_add_epi16(_mm256_unpacklo_epi64(p01, p23), _mm256_unpackhi_epi64(p01, p23));
        _mm256_madd_epi16(_mm256_set1_epi16(1), p)
    }

    /// Four bf16 at `p` → 4×f32.
    #[inline(always)]
    unsafe fn bf16x4(p: *const u8) -> __m128 {
        _mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(_mm_loadl_epi64(p as *const __m128i)), 16))
    }

    #[inline(always)]
    unsafe fn hsum4(x: __m128) -> f32 {
        let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
        _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
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
        let nb4 = nb / 4;
        let mo = _mm_set1_ps(-(B::OFFSET as f32));
        for ix in 0..nx {
            let xr = x.add(ix * bx);
            let mut acc = [_mm256_setzero_ps(); NY];
            let mut accm = [_mm_setzero_ps(); NY];
            for g in 0..nb4 {
                let xb = xr.add(4 * g * B::BYTES);
                let q = [B::unpack(xb), B::unpack(xb.add(B::BYTES)), B::unpack(xb.add(2 * B::BYTES)), B::unpack(xb.add(3 * B::BYTES))];
                let dx = d4(xb, B::BYTES);
                for iy in 0..NY {
                    let yg = y.add(iy * by + g * 144);
                    let dy = bf16x4(yg);
                    let (d, sumi) = if B::OFFSET != 0 || B::MIN {
                        let m = _mm_cvtepi32_ps(_mm_cvtepi16_epi32(_mm_loadl_epi64(yg.add(8) as *const __m128i)));
                        let mx = if B::MIN { d4(xb.add(2), B::BYTES) } else { _mm_mul_ps(dx, mo) };
                        accm[iy] = _mm_add_ps(accm[iy], _mm_mul_ps(mx, _mm_mul_ps(dy, m)));
                        let sumi = if B::SUM_Q4 {
                            sum4_q4(&q, yg.add(16))
                        } else {
                            let p = |k: usize| dot_unsigned(q[k], _mm256_loadu_si256(yg.add(16 + 32 * k) as *const __m256i));
                            interleave4(p(0), p(1), p(2), p(3))
                        };
                        (_mm_mul_ps(dx, dy), sumi)
                    } else {
                        let ld = |k: usize| _mm256_loadu_si256(yg.add(16 + 32 * k) as *const __m256i);
                        let p = |k: usize| dot_signed(_mm256_sign_epi8(q[k], q[k]), q[k], ld(k));
                        (_mm_mul_ps(dx, dy), interleave4(p(0), p(1), p(2), p(3)))
                    };
                    acc[iy] = _mm256_fmadd_ps(_mm256_set_m128(d, d), _mm256_cvtepi32_ps(sumi), acc[iy]);
                }
            }
            for ib in 4 * nb4..nb {
                let xb = xr.add(ib * B::BYTES);
                let q = B::unpack(xb);
                let dx = f16_at(xb);
                let (od, os, oq) = q8_2_offsets(nb, ib);
                for iy in 0..NY {
                    let yr = y.add(iy * by);
                    let dy = f32::from_bits((u16::from_le_bytes([*yr.add(od), *yr.add(od + 1)]) as u32) << 16);
                    let v = _mm256_loadu_si256(yr.add(oq) as *const __m256i);
                    let p = if B::OFFSET != 0 || B::MIN {
                        let m = i16::from_le_bytes([*yr.add(os), *yr.add(os + 1)]) as f32;
                        let mx = if B::MIN { f16_at(xb.add(2)) } else { -dx * B::OFFSET as f32 };
                        let second = mx * (dy * m);
                        accm[iy] = _mm_add_ps(accm[iy], _mm_set1_ps(second * 0.25));
                        dot_unsigned(q, v)
                    } else {
                        dot_signed(_mm256_sign_epi8(q, q), q, v)
                    };
                    acc[iy] = _mm256_fmadd_ps(_mm256_set1_ps(dx * dy), _mm256_cvtepi32_ps(p), acc[iy]);
                }
            }
            for iy in 0..NY {
                *out.add(iy * ldo + ix) = if B::OFFSET != 0 || B::MIN {
                    let s = _mm_add_ps(_mm256_castps256_ps128(acc[iy]), _mm256_extractf128_ps(acc[iy], 1));
                    hsum4(_mm_add_ps(s, accm[iy]))
                } else {
                    hsum_ps(acc[iy])
                };
            }
        }
    }
}

super::gemm_wrappers!(Blk32::BYTES, blk QK, act ACT_BYTES;
    gemm_q8_0 => Q80,
    gemm_q4_0 => Q40,
    gemm_q4_1 => Q41,
    gemm_q5_0 => Q50,
    gemm_q5_1 => Q51,
    gemm_q6_0 => Q60,
    gemm_iq4_nl => Iq4Nl,
);

// ---------------------------------------------------------------- scalar twins

/// Weight block decoders of the twins: `(dx, 32 levels)`; Q4_0 gives the unsigned 0..15 levels.
fn levels_q8_0(b: &[u8]) -> (f32, [i32; QK]) {
    (f16_to_f32(u16::from_le_bytes([b[0], b[1]])), std::array::from_fn(|j| b[2 + j] as i8 as i32))
}

fn nibble(b: &[u8], j: usize) -> usize {
    (if j < 16 { b[2 + j] & 15 } else { b[2 + j - 16] >> 4 }) as usize
}

fn levels_q4_0(b: &[u8]) -> (f32, [i32; QK]) {
    (f16_to_f32(u16::from_le_bytes([b[0], b[1]])), std::array::from_fn(|j| nibble(b, j) as i32))
}

pub(crate) fn levels_q4_1(b: &[u8]) -> (f32, [i32; QK]) {
    (f16_to_f32(u16::from_le_bytes([b[0], b[1]])), std::array::from_fn(|j| nibble(&b[2..], j) as i32))
}

fn levels_q5_1(b: &[u8]) -> (f32, [i32; QK]) {
    (f16_to_f32(u16::from_le_bytes([b[0], b[1]])), unpack_q5_1(b).map(i32::from))
}

fn levels_q5_0(b: &[u8]) -> (f32, [i32; QK]) {
    (f16_to_f32(u16::from_le_bytes([b[0], b[1]])), unpack_q5_0(b).map(i32::from))
}

fn levels_q6_0(b: &[u8]) -> (f32, [i32; QK]) {
    (f16_to_f32(u16::from_le_bytes([b[0], b[1]])), unpack_q6_0(b).map(i32::from))
}

fn levels_iq4_nl(b: &[u8]) -> (f32, [i32; QK]) {
    (f16_to_f32(u16::from_le_bytes([b[0], b[1]])), std::array::from_fn(|j| IQ4NL[nibble(b, j)] as i32))
}

/// ik's `hsum_float_8` order.
fn hsum8(a: &[f32; 8]) -> f32 {
    let s: [f32; 4] = std::array::from_fn(|i| a[i] + a[i + 4]);
    (s[0] + s[2]) + (s[1] + s[3])
}

/// The second term of a type's dot product (module doc): none (signed levels), `−o·dx·(dy·Σq)` for an offset
/// `o`, or `m·(dy·Σq)` with the block's min `m` (f16 at byte 2).
#[derive(Clone, Copy)]
enum Term {
    Signed,
    Offset(f32),
    Min,
}

/// One dot product in the AVX2 kernel's lanes and f32 operations (see the module doc).
fn twin_dot(n: usize, x: &[u8], xbytes: usize, dec: fn(&[u8]) -> (f32, [i32; QK]), term: Term, y: &[u8]) -> f32 {
    let offset8 = !matches!(term, Term::Signed);
    // the min factor of block `b` with scale `dx`, as the kernel forms it (group path / tail path)
    let mx = |b: &[u8], dx: f32, tail: bool| match term {
        Term::Min => f16_to_f32(u16::from_le_bytes([b[2], b[3]])),
        Term::Offset(o) if tail => -dx * o,
        Term::Offset(o) => dx * -o,
        Term::Signed => 0.0,
    };
    let nb = n / QK;
    let nb4 = nb / 4;
    let mut acc = [0.0f32; 8];
    let mut accm = [0.0f32; 4];
    let yq = |ib: usize| {
        let (od, os, oq) = q8_2_offsets(nb, ib);
        let dy = bf16_to_f32(u16::from_le_bytes([y[od], y[od + 1]]));
        let m = i16::from_le_bytes([y[os], y[os + 1]]) as f32;
        (dy, m, &y[oq..oq + QK])
    };
    for g in 0..nb4 {
        let mut d = [0.0f32; 4];
        let mut sumi = [0i32; 8];
        for k in 0..4 {
            let b = &x[(4 * g + k) * xbytes..];
            let (dx, q) = dec(b);
            let (dy, m, v) = yq(4 * g + k);
            d[k] = dx * dy;
            if offset8 {
                accm[k] += mx(b, dx, false) * (dy * m);
            }
            sumi[k] = (0..16).map(|j| q[j] * v[j] as i8 as i32).sum();
            sumi[k + 4] = (16..32).map(|j| q[j] * v[j] as i8 as i32).sum();
        }
        for l in 0..8 {
            acc[l] = d[l % 4].mul_add(sumi[l] as f32, acc[l]);
        }
    }
    for ib in 4 * nb4..nb {
        let b = &x[ib * xbytes..];
        let (dx, q) = dec(b);
        let (dy, m, v) = yq(ib);
        if offset8 {
            let second = mx(b, dx, true) * (dy * m);
            accm.iter_mut().for_each(|a| *a += second * 0.25);
        }
        let d = dx * dy;
        for l in 0..8 {
            let p: i32 = (4 * l..4 * l + 4).map(|j| q[j] * v[j] as i8 as i32).sum();
            acc[l] = d.mul_add(p as f32, acc[l]);
        }
    }
    if offset8 {
        let s: [f32; 4] = std::array::from_fn(|i| acc[i] + acc[i + 4] + accm[i]);
        (s[0] + s[2]) + (s[1] + s[3])
    } else {
        hsum8(&acc)
    }
}

macro_rules! twin {
    ($name:ident, $bytes:expr, $dec:ident, $off:expr) => {
        /// Scalar twin of the AVX2 kernel of the same type (bit-identical results).
        #[allow(clippy::too_many_arguments)]
        pub fn $name(n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, out: &mut [f32], ldo: usize) {
            check_gemm(n, QK, n / QK * $bytes, n / QK * ACT_BYTES, x, bx, nx, y, by, ny, out, ldo);
            for iy in 0..ny {
                for ix in 0..nx {
                    out[iy * ldo + ix] = twin_dot(n, &x[ix * bx..], $bytes, $dec, $off, &y[iy * by..]);
                }
            }
        }
    };
}

twin!(twin_q8_0, 34, levels_q8_0, Term::Signed);
twin!(twin_q4_0, 18, levels_q4_0, Term::Offset(8.0));
twin!(twin_q4_1, 20, levels_q4_1, Term::Min);
twin!(twin_q5_0, 22, levels_q5_0, Term::Offset(16.0));
twin!(twin_q5_1, 24, levels_q5_1, Term::Min);
twin!(twin_q6_0, 26, levels_q6_0, Term::Offset(32.0));
twin!(twin_iq4_nl, 18, levels_iq4_nl, Term::Signed);
