//! Row-interleaved legacy and K-quant kernels (AVX2): Q4_0_R8, Q4_K_R4, Q5_K_R4, Q6_K_R4 against Q8_2_X4 — the
//! `-rtr` targets of Q4_0, Q4_K, Q5_K and Q6_K.
//!
//! Exactness: every kernel here is bit-identical to its base type's AVX2 kernel (and so to the scalar twin
//! `interleaved::scalar_gemm_il`), which is what makes `-rtr` a pure speed change:
//! * Q4_0_R8 reproduces `legacy.rs`'s Q4_0 plan (ik's `mul_mat_qX_1_q8_2_T` arithmetic): per row and group of
//!   four 32-blocks the exact i32 half-block sums, FMA'd with `dx·dy` into the same 8 lanes, the −8 offset
//!   through the activation sums in 4 lanes, tail blocks as the base, and the base's final lane order — here
//!   with 8 rows in the 8 f32 lanes of each accumulator instead of one row per accumulator;
//! * the K types reproduce `kquants_q82.rs` (ik's `mul_mat_qX_K_q8_2_X4_T` arithmetic): the min term through
//!   the activation sums first, then per 32-block the exact i32 half-block sums FMA'd with `(d·sc)·dy` into
//!   the base's lanes (lane `c` and `c + 4` of 4 rows in one accumulator), the base's final lane order.
//!
//! This is not ik's own `_r4`/`_r8` arithmetic (`mul_mat_q4_0_r8_q8_2`, `mul_mat_q4_k_r4_q8_k`, … in
//! ggml/src/iqk/iqk_gemm_legacy_quants.cpp / iqk_gemm_kquants.cpp @ 8337e4cd, other activation encodings):
//! on a file shipped in these types results differ from the reference's by f32 rounding only.
//! Borrowed idea: one 32-byte load holds 4 (8) weights of every row of the group, so one broadcast of 4
//! activation bytes serves all rows, and the per-row integer sums land in separate i32 lanes.

const QK_K: usize = 256;
/// Q4_0_R8: 8 rows × 32 columns = 8 f16 scales + 128 nibble bytes.
const Q40R8_BYTES: usize = 144;
/// Q8_2_X4 bytes per 32 activations.
const Q82_BYTES: usize = 36;

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::act::q8_2_offsets;
    use super::super::x86::*;
    use super::{Q40R8_BYTES, QK_K};

    #[inline(always)]
    unsafe fn ld(p: *const u8) -> __m256i {
        _mm256_loadu_si256(p as *const __m256i)
    }

    #[inline(always)]
    unsafe fn bcast4(p: *const u8) -> __m256i {
        _mm256_set1_epi32((p as *const i32).read_unaligned())
    }

    /// Σ over 4 consecutive bytes (one row each in the 8 i32 lanes) of unsigned `q` × broadcast `y`, exact
    /// (|pair| ≤ 2·15·128, four of them summed in i16 ≤ 15360).
    #[inline(always)]
    unsafe fn dot4x(q: &[__m256i; 4], y: [__m256i; 4]) -> __m256i {
        let p = |l: usize| _mm256_maddubs_epi16(q[l], y[l]);
        let s = _mm256_add_epi16(_mm256_add_epi16(p(0), p(1)), _mm256_add_epi16(p(2), p(3)));
        _mm256_madd_epi16(s, _mm256_set1_epi16(1))
    }

    /// Q4_0_R8 (`legacy.rs` Q4_0 arithmetic, 8 rows per lane set; see the module doc). Block `ib` of a group:
    /// d f16[8] @0, then 4 chunks of 32 bytes: chunk `l` holds base bytes `4l..4l+3` of row `k` at `4k..4k+3`
    /// (low nibbles: elements `4l..4l+3`, high nibbles: `16+4l..16+4l+3`).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn gemm_q4_0_r8<const NY: usize>(
        n: usize,
        x: *const u8,
        bx: usize,
        nx: usize,
        y: *const u8,
        by: usize,
        out: *mut f32,
        ldo: usize,
    ) {
        let nb = n / 32;
        let nb4 = nb / 4;
        let m4 = _mm256_set1_epi8(0x0F);
        let mo = _mm256_set1_ps(-8.0);
        let z = _mm256_setzero_si256();
        let unpack = |b: *const u8| -> ([__m256i; 4], [__m256i; 4], __m256) {
            let (mut lo, mut hi) = ([z; 4], [z; 4]);
            for l in 0..4 {
                let q = ld(b.add(16 + 32 * l));
                lo[l] = _mm256_and_si256(q, m4);
                hi[l] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            }
            (lo, hi, _mm256_cvtph_ps(_mm_loadu_si128(b as *const __m128i)))
        };
        for ix in (0..nx).step_by(8) {
            let xg = x.add(ix * bx);
            // acc[iy][lane of the base kernel] over the 8 rows; accm: the offset term (4 base lanes)
            let mut acc = [[_mm256_setzero_ps(); 8]; NY];
            let mut accm = [[_mm256_setzero_ps(); 4]; NY];
            for g in 0..nb4 {
                let blk = [
                    unpack(xg.add(4 * g * Q40R8_BYTES)),
                    unpack(xg.add((4 * g + 1) * Q40R8_BYTES)),
                    unpack(xg.add((4 * g + 2) * Q40R8_BYTES)),
                    unpack(xg.add((4 * g + 3) * Q40R8_BYTES)),
                ];
                for iy in 0..NY {
                    let yg = y.add(iy * by + g * 144);
                    for (k, (lo, hi, dx)) in blk.iter().enumerate() {
                        let dy = _mm256_set1_ps(f32::from_bits((u16::from_le_bytes([*yg.add(2 * k), *yg.add(2 * k + 1)]) as u32) << 16));
                        let m = _mm256_set1_ps(i16::from_le_bytes([*yg.add(8 + 2 * k), *yg.add(9 + 2 * k)]) as f32);
                        let yq = yg.add(16 + 32 * k);
                        let sl = dot4x(lo, [bcast4(yq), bcast4(yq.add(4)), bcast4(yq.add(8)), bcast4(yq.add(12))]);
                        let sh = dot4x(hi, [bcast4(yq.add(16)), bcast4(yq.add(20)), bcast4(yq.add(24)), bcast4(yq.add(28))]);
                        let d = _mm256_mul_ps(*dx, dy);
                        acc[iy][k] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sl), acc[iy][k]);
                        acc[iy][4 + k] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sh), acc[iy][4 + k]);
                        accm[iy][k] = _mm256_add_ps(accm[iy][k], _mm256_mul_ps(_mm256_mul_ps(*dx, mo), _mm256_mul_ps(dy, m)));
                    }
                }
            }
            for ib in 4 * nb4..nb {
                let (lo, hi, dx) = unpack(xg.add(ib * Q40R8_BYTES));
                let (od, os, oq) = q8_2_offsets(nb, ib);
                for iy in 0..NY {
                    let yr = y.add(iy * by);
                    let dy = _mm256_set1_ps(f32::from_bits((u16::from_le_bytes([*yr.add(od), *yr.add(od + 1)]) as u32) << 16));
                    let m = _mm256_set1_ps(i16::from_le_bytes([*yr.add(os), *yr.add(os + 1)]) as f32);
                    let second = _mm256_mul_ps(_mm256_mul_ps(dx, mo), _mm256_mul_ps(dy, m));
                    let quarter = _mm256_mul_ps(second, _mm256_set1_ps(0.25));
                    let d = _mm256_mul_ps(dx, dy);
                    let yq = yr.add(oq);
                    let one = _mm256_set1_epi16(1);
                    for l in 0..4 {
                        accm[iy][l] = _mm256_add_ps(accm[iy][l], quarter);
                        let pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo[l], bcast4(yq.add(4 * l))), one);
                        let ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi[l], bcast4(yq.add(16 + 4 * l))), one);
                        acc[iy][l] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(pl), acc[iy][l]);
                        acc[iy][4 + l] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(ph), acc[iy][4 + l]);
                    }
                }
            }
            for iy in 0..NY {
                let t: [__m256; 4] = std::array::from_fn(|k| _mm256_add_ps(_mm256_add_ps(acc[iy][k], acc[iy][4 + k]), accm[iy][k]));
                let r = _mm256_add_ps(_mm256_add_ps(t[0], t[2]), _mm256_add_ps(t[1], t[3]));
                _mm256_storeu_ps(out.add(iy * ldo + ix), r);
            }
        }
    }

    /// One 256-column block of a 4-row K group, unpacked: per 32-block `b` the levels (Q6_K: |levels| and the
    /// signed levels as sign source) in the order of the activation broadcasts `[w0-3, w4-7, w8-11, w12-15]`
    /// (high lane: +16); `ds[b]` = `d·scale` of the 4 rows for the low half-block (low lane) and the high
    /// half-block (high lane); `mins[c]` = `−(dmin·min)` of blocks `c` (low lane) and `c + 4` (high lane).
    pub struct Unpacked {
        pub v: [__m256i; 32],
        pub sg: [__m256i; 32],
        pub ds: [__m256; 8],
        pub mins: [__m256; 4],
    }

    pub trait KGroup {
        /// Bytes of one 256-column block of the 4-row group.
        const BYTES: usize;
        /// Q6_K: signed levels, no min term.
        const Q6: bool = false;
        unsafe fn unpack(b: *const u8, u: &mut Unpacked);
    }

    /// Layout-A nibbles (spec/quants.md §8.2) of one 32-block at `q` in broadcast order.
    #[inline(always)]
    unsafe fn layout_a(q: *const u8) -> [__m256i; 4] {
        let m4 = _mm256_set1_epi8(0x0F);
        let (q1, q2) = (ld(q), ld(q.add(32)));
        [
            _mm256_and_si256(q1, m4),
            _mm256_and_si256(q2, m4),
            _mm256_and_si256(_mm256_srli_epi16(q1, 4), m4),
            _mm256_and_si256(_mm256_srli_epi16(q2, 4), m4),
        ]
    }

    #[inline(always)]
    unsafe fn f16x4(p: *const u8) -> __m128 {
        _mm_cvtph_ps(_mm_loadl_epi64(p as *const __m128i))
    }

    /// `[a0 a1 a2 a3 | b0 b1 b2 b3]` as f32.
    #[inline(always)]
    unsafe fn ps44(a: [i32; 4], b: [i32; 4]) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_setr_epi32(a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]))
    }

    /// Scales and mins of a Q4_K_R4/Q5_K_R4 block (`is = 4·ib + k`): low 4 bits in byte `32 + is` (scale: low
    /// nibble, min: high nibble), high 2 bits at bit `4·(is/16)` (+2 for the min) of byte `16 + is%16`; the
    /// f32 products as the base kernel forms them (`d·sc`, `−1·(dmin·m)`).
    #[inline(always)]
    unsafe fn k4_scales(b: *const u8, u: &mut Unpacked) {
        let (mut sc, mut mn) = ([[0i32; 4]; 8], [[0i32; 4]; 8]);
        for is in 0..32 {
            let l = *b.add(32 + is);
            let h = *b.add(16 + is % 16) >> (4 * (is / 16));
            sc[is / 4][is % 4] = ((l & 15) | ((h & 3) << 4)) as i32;
            mn[is / 4][is % 4] = ((l >> 4) | (((h >> 2) & 3) << 4)) as i32;
        }
        let d = f16x4(b);
        let d = _mm256_set_m128(d, d);
        let dm = f16x4(b.add(8));
        let dm = _mm256_set_m128(dm, dm);
        for ib in 0..8 {
            u.ds[ib] = _mm256_mul_ps(d, ps44(sc[ib], sc[ib]));
        }
        for c in 0..4 {
            u.mins[c] = _mm256_mul_ps(_mm256_set1_ps(-1.0), _mm256_mul_ps(dm, ps44(mn[c], mn[c + 4])));
        }
    }

    /// Q4_K_R4 block (576 B): d f16[4] @0, dmin f16[4] @8, scales @16/@32, qs @64 + 64·ib (layout A).
    pub struct Q4KR4;
    impl KGroup for Q4KR4 {
        const BYTES: usize = 576;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, u: &mut Unpacked) {
            k4_scales(b, u);
            for ib in 0..8 {
                u.v[4 * ib..4 * ib + 4].copy_from_slice(&layout_a(b.add(64 + 64 * ib)));
            }
        }
    }

    /// Q5_K_R4 block (704 B): as Q4_K_R4, plus the fifth bits @64 + 16·ib (byte `4k + i`, bit s = weight
    /// `i + [0,8,4,12,16,24,20,28][s]`), qs @192 + 64·ib.
    pub struct Q5KR4;
    impl KGroup for Q5KR4 {
        const BYTES: usize = 704;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, u: &mut Unpacked) {
            k4_scales(b, u);
            for ib in 0..8 {
                let h = _mm_loadu_si128(b.add(64 + 16 * ib) as *const __m128i);
                // low lane: bits 0..3 (weights < 16), high lane: bits 4..7 moved down
                let hh = _mm256_set_m128i(_mm_srli_epi16(h, 4), h);
                let m = |v: i8| _mm256_and_si256(hh, _mm256_set1_epi8(v));
                let hb = [_mm256_slli_epi16(m(1), 4), _mm256_slli_epi16(m(4), 2), _mm256_slli_epi16(m(2), 3), _mm256_slli_epi16(m(8), 1)];
                let lv = layout_a(b.add(192 + 64 * ib));
                for j in 0..4 {
                    u.v[4 * ib + j] = _mm256_or_si256(lv[j], hb[j]);
                }
            }
        }
    }

    /// Q6_K_R4 block (840 B): d f16[4] @0, i8 scales @8 + 8·ib (`[h0: r0..r3, h1: r0..r3]`), high bits
    /// @72 + 32·ib (byte `4k + i` (+16), bits 2s = weight `i + [0,8,4,12][s]`), low nibbles @328 + 64·ib
    /// (layout A); levels 0..63 − 32.
    pub struct Q6KR4;
    impl KGroup for Q6KR4 {
        const BYTES: usize = 840;
        const Q6: bool = true;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, u: &mut Unpacked) {
            let (m30, m32) = (_mm256_set1_epi8(0x30), _mm256_set1_epi8(-32));
            let d = f16x4(b);
            let d = _mm256_set_m128(d, d);
            for ib in 0..8 {
                let s = |k: usize| *b.add(8 + 8 * ib + k) as i8 as i32;
                u.ds[ib] = _mm256_mul_ps(d, ps44([s(0), s(1), s(2), s(3)], [s(4), s(5), s(6), s(7)]));
                let h = ld(b.add(72 + 32 * ib));
                let hb = [
                    _mm256_and_si256(_mm256_slli_epi16(h, 4), m30),
                    _mm256_and_si256(h, m30),
                    _mm256_and_si256(_mm256_slli_epi16(h, 2), m30),
                    _mm256_and_si256(_mm256_srli_epi16(h, 2), m30),
                ];
                let lv = layout_a(b.add(328 + 64 * ib));
                for j in 0..4 {
                    let v = _mm256_add_epi8(_mm256_or_si256(lv[j], hb[j]), m32);
                    u.sg[4 * ib + j] = v;
                    u.v[4 * ib + j] = _mm256_sign_epi8(v, v);
                }
            }
        }
    }

    /// Q4_K_R4 / Q5_K_R4 / Q6_K_R4 against Q8_2_X4 (`kquants_q82.rs` arithmetic, 4 rows; see the module doc).
    /// Accumulator `c` of a row set holds base lane `c` (low) and `c + 4` (high) of the 4 rows.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn gemm_k<G: KGroup, const NY: usize>(
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
        let zf = _mm256_setzero_ps();
        let mut u = Unpacked { v: [z; 32], sg: [z; 32], ds: [zf; 8], mins: [zf; 4] };
        let one = _mm256_set1_epi16(1);
        for ix in (0..nx).step_by(4) {
            let xg = x.add(ix * bx);
            let mut acc = [[zf; 4]; NY];
            for ibl in 0..nb {
                G::unpack(xg.add(ibl * G::BYTES), &mut u);
                for iy in 0..NY {
                    let g = y.add(iy * by + 2 * ibl * 144);
                    let dy: [f32; 8] = std::array::from_fn(|b| {
                        let o = g.add(144 * (b / 4) + 2 * (b % 4));
                        f32::from_bits((u16::from_le_bytes([*o, *o.add(1)]) as u32) << 16)
                    });
                    if !G::Q6 {
                        let my: [f32; 8] = std::array::from_fn(|b| {
                            let o = g.add(144 * (b / 4) + 8 + 2 * (b % 4));
                            dy[b] * i16::from_le_bytes([*o, *o.add(1)]) as f32
                        });
                        for c in 0..4 {
                            let m = _mm256_set_m128(_mm_set1_ps(my[c + 4]), _mm_set1_ps(my[c]));
                            acc[iy][c] = _mm256_fmadd_ps(m, u.mins[c], acc[iy][c]);
                        }
                    }
                    for b in 0..8 {
                        let yv = ld(g.add(144 * (b / 4) + 16 + 32 * (b % 4)));
                        let ys = [
                            _mm256_shuffle_epi32(yv, 0x00),
                            _mm256_shuffle_epi32(yv, 0x55),
                            _mm256_shuffle_epi32(yv, 0xAA),
                            _mm256_shuffle_epi32(yv, 0xFF),
                        ];
                        // i16 sums of four maddubs stay exact (kquants_q82.rs bounds)
                        let p = |j: usize| {
                            let yj = if G::Q6 { _mm256_sign_epi8(ys[j], u.sg[4 * b + j]) } else { ys[j] };
                            _mm256_maddubs_epi16(u.v[4 * b + j], yj)
                        };
                        let s = _mm256_madd_epi16(_mm256_add_epi16(_mm256_add_epi16(p(0), p(1)), _mm256_add_epi16(p(2), p(3))), one);
                        let d = _mm256_mul_ps(u.ds[b], _mm256_set1_ps(dy[b]));
                        acc[iy][b % 4] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc[iy][b % 4]);
                    }
                }
            }
            for iy in 0..NY {
                let t: [__m128; 4] =
                    std::array::from_fn(|c| _mm_add_ps(_mm256_castps256_ps128(acc[iy][c]), _mm256_extractf128_ps(acc[iy][c], 1)));
                _mm_storeu_ps(out.add(iy * ldo + ix), _mm_add_ps(_mm_add_ps(t[0], t[2]), _mm_add_ps(t[1], t[3])));
            }
        }
    }
}

super::avx2_entry!(
    /// Q4_0_R8 (`-rtr` target of Q4_0) against Q8_2_X4; `nx` whole groups of 8.
    gemm_q4_0_r8, group 8, blk 32, row |n| n / 32 * (Q40R8_BYTES / 8), act n / 32 * Q82_BYTES, kernel imp::gemm_q4_0_r8::<NY>
);

macro_rules! k_r4_wrappers {
    ($($name:ident => $ty:ident),+ $(,)?) => {$(
        super::avx2_entry!(
            /// K-quant `_R4` against Q8_2_X4; `nx` whole groups of 4.
            $name, group 4, blk QK_K, row |n| n / QK_K * <imp::$ty as imp::KGroup>::BYTES / 4, act n / QK_K * 8 * Q82_BYTES,
            kernel imp::gemm_k::<imp::$ty, NY>
        );
    )+};
}

k_r4_wrappers!(
    gemm_q4_k_r4 => Q4KR4,
    gemm_q5_k_r4 => Q5KR4,
    gemm_q6_k_r4 => Q6KR4,
);
