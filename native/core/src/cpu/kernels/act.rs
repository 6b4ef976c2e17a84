//! AVX2 activation quantizers (one f32 row → the `vec_dot_type` encoding), bit-identical to the scalar
//! references in `quant/formats/{q8,float}.rs` for finite inputs (spec/quants.md §9):
//! * Q8_0 / Q8_1: `d = amax/127`, `q = roundf(x·(1/d))` (half away from zero, done exactly as
//!   `trunc` + a ±1 fix-up where |x − trunc x| ≥ 0.5, not `_mm256_round_ps`' half-to-even);
//! * Q8_K: signed max (first of largest magnitude), `q = min(127, nearest_int(−127/max · x))` with the
//!   reference's magic-number rounding, `bsums`, ik's `sum = d·Σq`;
//! * F16 (`vcvtps2ph`, round to nearest even), BF16 (integer round-to-nearest-even with the NaN rule), F32 copy;
//! * Q8_2_X4 (ik's AVX2 partner of Q8_0 / Q4_0 / IQ4_NL weights, `quantize_row_q8_2_x4` in iqk_quantize.cpp):
//!   `d = bf16(amax/127)`, `q = round_half_even(x·(1/d))`, the block's Σq as i16; groups of four blocks share
//!   one 144-byte record `[4 × bf16 d][4 × i16 Σq][4 × 32 q]`, the `nb % 4` tail blocks are 36-byte
//!   `[bf16 d][i16 Σq][32 q]`. `quantize_q8_2_x4_ref` is the scalar twin (bit-identical).
//!
//! NaN inputs: F16 keeps the NaN payload bits that `vcvtps2ph` keeps (the scalar reference writes 0x7E00);
//! the Q8 quantizers' results for NaN inputs are unspecified (as in ik).

use crate::quant::convert::{bf16_to_f32, f32_to_bf16, f32_to_f16};
use crate::quant::formats::Format;
use crate::quant::QType;

const QK: usize = 32;
const QK_K: usize = 256;

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::x86::*;
    use super::{bf16_to_f32, f32_to_bf16, f32_to_f16, q8_2_offsets, QK, QK_K};

    #[inline(always)]
    unsafe fn abs_ps(v: __m256) -> __m256 {
        _mm256_andnot_ps(_mm256_set1_ps(-0.0), v)
    }

    #[inline(always)]
    unsafe fn hmax_ps(v: __m256) -> f32 {
        let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_max_ss(m, _mm_movehdup_ps(m));
        _mm_cvtss_f32(m)
    }

    /// C `roundf` for |x| < 2^23: truncate, then step away from zero where the dropped fraction is ≥ 0.5
    /// (x − trunc(x) is exact).
    #[inline(always)]
    unsafe fn roundf(x: __m256) -> __m256i {
        let t = _mm256_round_ps(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        let frac = abs_ps(_mm256_sub_ps(x, t));
        let step = _mm256_or_ps(_mm256_and_ps(x, _mm256_set1_ps(-0.0)), _mm256_set1_ps(1.0));
        let fix = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5), _CMP_GE_OQ), step);
        _mm256_cvtps_epi32(_mm256_add_ps(t, fix))
    }

    /// Four 8×i32 vectors (elements in order) → 32 i8 in order.
    #[inline(always)]
    unsafe fn pack32(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i {
        let p = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
        _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
    }

    /// One Q8_0-style block: writes 32 quants at `qs`, returns (d, Σq).
    #[inline(always)]
    unsafe fn q8_block(x: *const f32, qs: *mut u8) -> (f32, i32) {
        let v = [_mm256_loadu_ps(x), _mm256_loadu_ps(x.add(8)), _mm256_loadu_ps(x.add(16)), _mm256_loadu_ps(x.add(24))];
        let m = _mm256_max_ps(_mm256_max_ps(abs_ps(v[0]), abs_ps(v[1])), _mm256_max_ps(abs_ps(v[2]), abs_ps(v[3])));
        let amax = hmax_ps(m);
        let d = amax / 127.0;
        let id = _mm256_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
        let q = [
            roundf(_mm256_mul_ps(v[0], id)),
            roundf(_mm256_mul_ps(v[1], id)),
            roundf(_mm256_mul_ps(v[2], id)),
            roundf(_mm256_mul_ps(v[3], id)),
        ];
        _mm256_storeu_si256(qs as *mut __m256i, pack32(q[0], q[1], q[2], q[3]));
        let s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        (d, hsum_i32(s))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn q8_0(src: &[f32], dst: &mut [u8]) {
        for (xb, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(34)) {
            let (d, _) = q8_block(xb.as_ptr(), b.as_mut_ptr().add(2));
            b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn q8_1(src: &[f32], dst: &mut [u8]) {
        for (xb, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(36)) {
            let (d, sum) = q8_block(xb.as_ptr(), b.as_mut_ptr().add(4));
            b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
            b[2..4].copy_from_slice(&f32_to_f16(sum as f32 * d).to_le_bytes());
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn q8_2_x4(src: &[f32], dst: &mut [u8]) {
        let nb = src.len() / QK;
        let sign = _mm256_set1_ps(-0.0);
        for ib in 0..nb {
            let x = src.as_ptr().add(ib * QK);
            let v = [_mm256_loadu_ps(x), _mm256_loadu_ps(x.add(8)), _mm256_loadu_ps(x.add(16)), _mm256_loadu_ps(x.add(24))];
            let m = _mm256_max_ps(
                _mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])),
            );
            let t = f32_to_bf16(hmax_ps(m) / 127.0);
            let d = bf16_to_f32(t);
            let id = _mm256_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
            let r = |k: usize| _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            let q = [r(0), r(1), r(2), r(3)];
            let s = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
            let (od, os, oq) = q8_2_offsets(nb, ib);
            dst[od..od + 2].copy_from_slice(&t.to_le_bytes());
            dst[os..os + 2].copy_from_slice(&(s as i16).to_le_bytes());
            _mm256_storeu_si256(dst.as_mut_ptr().add(oq) as *mut __m256i, pack32(q[0], q[1], q[2], q[3]));
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn q8_k(src: &[f32], dst: &mut [u8]) {
        for (xb, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(296)) {
            let x = xb.as_ptr();
            let mut m = _mm256_setzero_ps();
            for k in 0..32 {
                m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x.add(8 * k))));
            }
            let amax = hmax_ps(m);
            if amax == 0.0 {
                b.fill(0);
                continue;
            }
            // the reference keeps the first element of largest magnitude (strict `>` scan)
            let am = _mm256_set1_ps(amax);
            let mut max = 0.0f32;
            for k in 0..32 {
                let eq = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x.add(8 * k))), am, _CMP_EQ_OQ));
                if eq != 0 {
                    max = xb[8 * k + eq.trailing_zeros() as usize];
                    break;
                }
            }
            let iscale = -127.0 / max;
            let is = _mm256_set1_ps(iscale);
            let magic = _mm256_set1_ps(12_582_912.0);
            let mant = _mm256_set1_epi32(0x007f_ffff);
            let off = _mm256_set1_epi32(0x0040_0000);
            let lim = _mm256_set1_epi32(127);
            let qs = b.as_mut_ptr().add(8);
            // per 16-group sums (8×i32 partials) for the bsums
            let mut g = [_mm256_setzero_si256(); 16];
            for c in 0..8 {
                let mut q = [_mm256_setzero_si256(); 4];
                for t in 0..4 {
                    let f = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x.add(32 * c + 8 * t)), is), magic);
                    let i = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(f), mant), off);
                    q[t] = _mm256_min_epi32(i, lim);
                }
                _mm256_storeu_si256(qs.add(32 * c) as *mut __m256i, pack32(q[0], q[1], q[2], q[3]));
                g[2 * c] = _mm256_add_epi32(q[0], q[1]);
                g[2 * c + 1] = _mm256_add_epi32(q[2], q[3]);
            }
            // 16 vectors → 16 sums, in order
            let red8 = |a: &[__m256i]| {
                let h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
                let h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
                _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31))
            };
            let s0 = red8(&g[0..8]);
            let s1 = red8(&g[8..16]);
            let bs = _mm256_permute4x64_epi64(_mm256_packs_epi32(s0, s1), 0xD8);
            _mm256_storeu_si256(b.as_mut_ptr().add(264) as *mut __m256i, bs);
            let tot = hsum_i32(_mm256_add_epi32(s0, s1));
            let d = 1.0 / iscale;
            b[0..4].copy_from_slice(&d.to_le_bytes());
            b[4..8].copy_from_slice(&(d * tot as f32).to_le_bytes());
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn f16(src: &[f32], dst: &mut [u8]) {
        let n8 = src.len() / 8 * 8;
        for i in (0..n8).step_by(8) {
            let h = _mm256_cvtps_ph(_mm256_loadu_ps(src.as_ptr().add(i)), _MM_FROUND_TO_NEAREST_INT);
            _mm_storeu_si128(dst.as_mut_ptr().add(2 * i) as *mut __m128i, h);
        }
        for i in n8..src.len() {
            dst[2 * i..2 * i + 2].copy_from_slice(&f32_to_f16(src[i]).to_le_bytes());
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn bf16(src: &[f32], dst: &mut [u8]) {
        let n8 = src.len() / 8 * 8;
        let one = _mm256_set1_epi32(1);
        let bias = _mm256_set1_epi32(0x7fff);
        let abs = _mm256_set1_epi32(0x7fff_ffff);
        let inf = _mm256_set1_epi32(0x7f80_0000);
        let quiet = _mm256_set1_epi32(0x40);
        for i in (0..n8).step_by(8) {
            let u = _mm256_castps_si256(_mm256_loadu_ps(src.as_ptr().add(i)));
            let r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(_mm256_srli_epi32(u, 16), one)), 16);
            let nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf);
            let qn = _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet);
            let v = _mm256_blendv_epi8(r, qn, nan);
            // 8×u32 (values < 2^16) → 8×u16
            let p = _mm256_permute4x64_epi64(_mm256_packus_epi32(v, v), 0x08);
            _mm_storeu_si128(dst.as_mut_ptr().add(2 * i) as *mut __m128i, _mm256_castsi256_si128(p));
        }
        for i in n8..src.len() {
            dst[2 * i..2 * i + 2].copy_from_slice(&crate::quant::convert::f32_to_bf16(src[i]).to_le_bytes());
        }
    }
}

fn check(src: &[f32], dst: &[u8], blk: usize, bytes: usize) {
    assert!(src.len() % blk == 0, "row length {} is not a multiple of {blk}", src.len());
    assert!(dst.len() >= src.len() / blk * bytes, "destination too short");
    assert!(super::avx2_ok());
}

macro_rules! act {
    ($name:ident, $imp:ident, $blk:expr, $bytes:expr) => {
        /// Safe entry: call only when the CPU has AVX2+FMA+F16C (the table guarantees it).
        pub fn $name(src: &[f32], dst: &mut [u8]) {
            check(src, dst, $blk, $bytes);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: sizes checked; AVX2+FMA+F16C present.
            unsafe {
                imp::$imp(src, dst)
            }
        }
    };
}

act!(quantize_q8_0, q8_0, QK, 34);
act!(quantize_q8_1, q8_1, QK, 36);
act!(quantize_q8_k, q8_k, QK_K, 296);
act!(quantize_f16, f16, 1, 2);
act!(quantize_q8_2_x4, q8_2_x4, QK, 36);
act!(quantize_bf16, bf16, 1, 2);

/// F32 activations: a plain copy (no SIMD needed).
pub fn quantize_f32(src: &[f32], dst: &mut [u8]) {
    for (c, &x) in dst.chunks_exact_mut(4).zip(src) {
        c.copy_from_slice(&x.to_le_bytes());
    }
}

/// Byte offsets of block `ib`'s scale, Σq and first quant inside a Q8_2_X4 row of `nb` blocks.
#[inline(always)]
pub(crate) fn q8_2_offsets(nb: usize, ib: usize) -> (usize, usize, usize) {
    let nb4 = nb / 4;
    if ib < 4 * nb4 {
        let (g, r) = (ib / 4 * 144, ib % 4);
        (g + 2 * r, g + 8 + 2 * r, g + 16 + 32 * r)
    } else {
        let b = nb4 * 144 + (ib - 4 * nb4) * 36;
        (b, b + 2, b + 4)
    }
}

/// Scalar twin of `quantize_q8_2_x4` (and the scalar tier's Q8_2_X4 quantizer): one row of `src.len()`
/// floats (a multiple of 32). q is the f32 product rounded half to even; the stored byte saturates to i8
/// (never reached: |x·(1/d)| ≤ 127·(1 + 2⁻⁸) < 127.5) while Σq uses the unsaturated values, as ik.
pub fn quantize_q8_2_x4_ref(src: &[f32], dst: &mut [u8]) {
    assert!(src.len() % QK == 0 && dst.len() >= src.len() / QK * 36, "quantize_q8_2_x4_ref: bad sizes");
    let nb = src.len() / QK;
    for (ib, xb) in src.chunks_exact(QK).enumerate() {
        let amax = xb.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
        let t = f32_to_bf16(amax / 127.0);
        let d = bf16_to_f32(t);
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        let (od, os, oq) = q8_2_offsets(nb, ib);
        let mut sum = 0i32;
        for (j, &v) in xb.iter().enumerate() {
            let q = (v * id).round_ties_even() as i32;
            sum += q;
            dst[oq + j] = q.clamp(-128, 127) as i8 as u8;
        }
        dst[od..od + 2].copy_from_slice(&t.to_le_bytes());
        dst[os..os + 2].copy_from_slice(&(sum as i16).to_le_bytes());
    }
}

fn quantize_rows_q8_2_x4(src: &[f32], dst: &mut [u8], ne0: usize, _imatrix: Option<&[f32]>) {
    let rb = ne0 / QK * 36;
    for (x, y) in src.chunks_exact(ne0).zip(dst.chunks_exact_mut(rb)) {
        quantize_q8_2_x4_ref(x, y);
    }
}

fn dequantize_rows_q8_2_x4(src: &[u8], dst: &mut [f32], ne0: usize) {
    let (nb, rb) = (ne0 / QK, ne0 / QK * 36);
    for (x, y) in src.chunks_exact(rb).zip(dst.chunks_exact_mut(ne0)) {
        for ib in 0..nb {
            let (od, _, oq) = q8_2_offsets(nb, ib);
            let d = bf16_to_f32(u16::from_le_bytes([x[od], x[od + 1]]));
            for j in 0..QK {
                y[ib * QK + j] = d * (x[oq + j] as i8) as f32;
            }
        }
    }
}

/// The Q8_2_X4 activation encoding as a `Format` (it has no entry in the tensor-format registry: it never
/// appears in a file). Dequantize gives `d·q` per block; `vec_dot` is none (it is only ever the `y` side).
pub static Q8_2_X4_FORMAT: Format = Format {
    qtype: QType::Q8_2_X4,
    dequantize: dequantize_rows_q8_2_x4,
    quantize: Some(quantize_rows_q8_2_x4),
    vec_dot_type: QType::Q8_2_X4,
    vec_dot: None,
};

/// The format of an activation type a kernel-table entry can name: the registry's, or Q8_2_X4's.
pub fn act_format(q: QType) -> Option<&'static Format> {
    match q {
        QType::Q8_2_X4 => Some(&Q8_2_X4_FORMAT),
        _ => crate::quant::formats::lookup(q),
    }
}
