//! AVX2 GEMM kernels per type family and the AVX2 activation quantizers (STYLE §1.6).
//!
//! Every kernel is a `#[target_feature(enable = "avx2,fma,f16c")] unsafe fn` holding the whole hot loop,
//! monomorphised per activation-row count `NY` (1..8, ik's `nrc_y`); helpers are `#[inline(always)]`. The
//! safe wrappers exported here are only handed out by `cpu/table.rs` when the tier is `Avx2` or better.
//!
//! Exactness contract (tested in `tests/cpu_kernels.rs`):
//! * `kquants` (incl. IQ4_XS): per block the exact i32 sums of the scalar reference (`quant/formats`), then the
//!   reference's f32 expression and block order → bit-identical results;
//! * `legacy` (Q8_0, Q4_0, IQ4_NL against Q8_2_X4) and float weights (`float`, against F32): ik's AVX2
//!   arithmetic (activation type, integer lanes, f32 FMA order); their scalar tier is a bit-identical twin
//!   (`legacy::twin_*`, `float::twin_*`), itself checked against the dequantized dot product to 1e-5 of Σ|x·y|;
//! * activation quantizers (`act`): bit-identical bytes for finite inputs;
//! * the scalar tier (`IKL_CPU_TIER=scalar`) is the reference itself (the twins for legacy/float), bit for bit.
//!
//! Upstream ideas (rewritten): ggml/src/iqk/iqk_gemm_legacy_quants.cpp, iqk_gemm_kquants.cpp,
//! iqk_gemm_iquants.cpp @ 8337e4cd — weight block unpacked once and reused over NY rows, `_mm256_sign_epi8`
//! for signed×signed products, Q8_K `bsums` for the min / offset terms.

pub mod act;
pub mod float;
pub mod interleaved;
pub mod interleaved_k;
pub mod iqk;
pub mod kquants;
pub mod kquants_q82;
pub mod kt;
pub mod legacy;
pub mod q8_r8;
pub mod q8k_r8;

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    pub use std::arch::x86_64::*;

    /// Horizontal sum of 8 i32 lanes.
    #[inline(always)]
    pub unsafe fn hsum_i32(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01));
        _mm_cvtsi128_si32(s)
    }

    /// Horizontal sums of two 8×i32 vectors → (Σa, Σb).
    #[inline(always)]
    pub unsafe fn hsum2_i32(a: __m256i, b: __m256i) -> (i32, i32) {
        let h = _mm256_hadd_epi32(a, b); // lane: a01 a23 b01 b23
        let s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        let s = _mm_hadd_epi32(s, s); // Σa Σb Σa Σb
        (_mm_cvtsi128_si32(s), _mm_extract_epi32(s, 1))
    }

    #[inline(always)]
    pub unsafe fn hsum_ps(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// 16 bytes of N16 nibbles → 32 levels 0..15 (low nibbles in the low lane: elements 0..15, high: 16..31).
    #[inline(always)]
    pub unsafe fn nibbles_n16(p: *const u8) -> __m256i {
        let q = _mm_loadu_si128(p as *const __m128i);
        _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F))
    }

    /// Σ over pairs of x·y as 8×i32 for signed x (|x| ≤ 127 or −128 with y ≠ −128) and signed y.
    #[inline(always)]
    pub unsafe fn dot_signed(ax: __m256i, sx: __m256i, y: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(y, sx)), _mm256_set1_epi16(1))
    }

    /// f16 at `p` (unaligned) → f32 (exact).
    #[inline(always)]
    pub unsafe fn f16_at(p: *const u8) -> f32 {
        crate::quant::convert::f16_to_f32(u16::from_le_bytes([*p, *p.add(1)]))
    }
}

/// One safe GEMM entry point (`cpu::table::GemmFn`) around an AVX2 kernel: checks the call (`check_entry`: `ny`
/// = NY, `nx` whole groups of `group` interleaved rows stored contiguously, slice sizes with `row` weight bytes
/// and `act` activation bytes per row of `n = $n` values in blocks of `blk`) and calls `kernel(n, x, bx, nx, y,
/// by, out, ldo)` on raw pointers.
macro_rules! avx2_entry {
    ($(#[$doc:meta])* $name:ident, group $group:expr, blk $blk:expr, row |$n:ident| $row:expr, act $act:expr, kernel $($kernel:tt)+) => {
        $(#[$doc])*
        /// Safe entry: call only when the CPU has AVX2+FMA+F16C (the table guarantees it).
        #[allow(clippy::too_many_arguments)]
        pub fn $name<const NY: usize>($n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, out: &mut [f32], ldo: usize) {
            #[cfg(target_arch = "x86_64")]
            {
                $crate::cpu::kernels::check_entry(NY, $group, $blk, $row, $act, $n, x, bx, nx, y, by, ny, out, ldo);
                // SAFETY: sizes checked above; AVX2+FMA+F16C present (check_entry).
                unsafe { $($kernel)+($n, x.as_ptr(), bx, nx, y.as_ptr(), by, out.as_mut_ptr(), ldo) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("AVX2 kernel on a non-x86 target")
        }
    };
}
pub(crate) use avx2_entry;

/// The safe entry points of one kernel family: for each `name => Ty`, `avx2_entry!` with `blk` weights per block,
/// `n / blk` blocks of `imp::Trait::CONST` weight bytes and of `act` activation bytes each (`act same` = the
/// weight's), calling `imp::gemm::<imp::Ty, NY>`.
macro_rules! gemm_wrappers {
    (@act same, $tr:ident::$bytes:ident, $ty:ident) => { <imp::$ty as imp::$tr>::$bytes };
    (@act $act:expr, $tr:ident::$bytes:ident, $ty:ident) => { $act };
    ($tr:ident::$bytes:ident, blk $blk:expr, act $act:tt; $($name:ident => $ty:ident),+ $(,)?) => {$(
        $crate::cpu::kernels::avx2_entry!($name, group 1, blk $blk, row |n| n / $blk * <imp::$ty as imp::$tr>::$bytes,
            act n / $blk * $crate::cpu::kernels::gemm_wrappers!(@act $act, $tr::$bytes, $ty), kernel imp::gemm::<imp::$ty, NY>);
    )+};
}
pub(crate) use gemm_wrappers;

/// AVX2+FMA+F16C present on this CPU (independent of a forced lower `IKL_CPU_TIER`).
#[inline]
pub(crate) fn avx2_ok() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The checks of an `avx2_entry!` wrapper: `ny` is the kernel's NY; interleaved types (`group` > 1) get whole
/// groups of contiguous rows; then `check_gemm`, and the CPU features the kernels are compiled for.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_entry(
    ny_kernel: usize,
    group: usize,
    blk: usize,
    row: usize,
    act: usize,
    n: usize,
    x: &[u8],
    bx: usize,
    nx: usize,
    y: &[u8],
    by: usize,
    ny: usize,
    out: &[f32],
    ldo: usize,
) {
    assert_eq!(ny, ny_kernel, "gemm[ny-1] called with another ny");
    if group > 1 {
        assert!(nx % group == 0, "row-interleaved GEMM on {nx} rows (not whole groups of {group})");
        assert_eq!(bx, row, "row-interleaved rows are contiguous");
    }
    check_gemm(n, blk, row, act, x, bx, nx, y, by, ny, out, ldo);
    assert!(avx2_ok());
}

/// Checks shared by every GEMM wrapper (the `unsafe` kernels index with raw pointers).
#[inline]
pub(crate) fn check_gemm(
    n: usize,
    blk: usize,
    row_bytes: usize,
    act_row_bytes: usize,
    x: &[u8],
    bx: usize,
    nx: usize,
    y: &[u8],
    by: usize,
    ny: usize,
    out: &[f32],
    ldo: usize,
) {
    assert!(n % blk == 0, "row length {n} is not a multiple of the block size {blk}");
    assert!(bx >= row_bytes && by >= act_row_bytes, "row strides smaller than a row");
    assert!(nx == 0 || x.len() >= (nx - 1) * bx + row_bytes, "weight slice too short");
    assert!(ny == 0 || y.len() >= (ny - 1) * by + act_row_bytes, "activation slice too short");
    assert!(ny == 0 || nx == 0 || out.len() >= (ny - 1) * ldo + nx, "output slice too short");
}
