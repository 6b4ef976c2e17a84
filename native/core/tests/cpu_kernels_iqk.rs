//! AVX2 kernels of the IQK types (cpu/kernels/iqk.rs) against their scalar tier (the reference `vec_dot`),
//! bit for bit, for ny = 1..8: on quantizer output and on random block bytes (every shift / sign / high bit
//! pattern, with sane scales patched in), plus a full matmul through `cpu::ops` against f64 of the dequantized
//! operands.

use ikl_core::cpu::table::{kernels_for_tier, Kernels};
use ikl_core::cpu::tier::Tier;
use ikl_core::quant::formats::{lookup, repack_rows};
use ikl_core::quant::QType;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self) -> f32 {
        let u = (0..4).map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32).sum::<f32>() - 2.0;
        if self.next() % 97 == 0 {
            u * 8.0
        } else {
            u
        }
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
}

/// (type, row-scale bytes, block bytes, offset of the block's f16 scale if any).
const TYPES: &[(QType, usize, usize, Option<usize>)] = &[
    (QType::IQ2_K, 0, 76, Some(0)),
    (QType::IQ3_K, 0, 110, Some(0)),
    (QType::IQ4_K, 0, 144, Some(0)),
    (QType::IQ5_K, 0, 176, Some(0)),
    (QType::IQ6_K, 0, 212, Some(0)),
    (QType::IQ4_KS, 4, 136, None),
    (QType::IQ5_KS, 4, 168, None),
    (QType::IQ2_KS, 2, 70, None),
    (QType::IQ3_KS, 2, 102, None),
];

fn have_avx2() -> bool {
    kernels_for_tier(QType::Q8_0, Tier::Avx2).unwrap().tier == Tier::Avx2
}

fn acts(k: &Kernels, n: usize, r: &mut Rng) -> (Vec<u8>, usize) {
    let by = k.act.row_size(n as u64).unwrap() as usize;
    let mut y = vec![0u8; by * 8];
    for iy in 0..8 {
        (k.quantize_act)(&r.vec(n), &mut y[iy * by..(iy + 1) * by]);
    }
    (y, by)
}

fn check(q: QType, x: &[u8], bx: usize, nx: usize, n: usize, seed: u64) {
    let simd = kernels_for_tier(q, Tier::Avx2).unwrap();
    let scalar = kernels_for_tier(q, Tier::Scalar).unwrap();
    assert_eq!(simd.tier, Tier::Avx2, "{} has an AVX2 kernel", q.name());
    assert_eq!(simd.act, scalar.act);
    let (y, by) = acts(&scalar, n, &mut Rng(seed | 1));
    for ny in 1..=8 {
        let ldo = nx + 2;
        let mut o1 = vec![f32::NAN; ldo * ny];
        let mut o2 = vec![f32::NAN; ldo * ny];
        (simd.gemm[ny - 1])(n, x, bx, nx, &y, by, ny, &mut o1, ldo);
        (scalar.gemm[ny - 1])(n, x, bx, nx, &y, by, ny, &mut o2, ldo);
        for iy in 0..ny {
            for ix in 0..nx {
                let (a, b) = (o1[iy * ldo + ix], o2[iy * ldo + ix]);
                assert_eq!(a.to_bits(), b.to_bits(), "{} n={n} ny={ny} ({ix},{iy}): {a} vs {b}", q.name());
            }
            assert!(o1[iy * ldo + nx].is_nan(), "padding column written");
        }
    }
}

#[test]
fn iqk_avx2_matches_scalar_on_quantized_rows() {
    if !have_avx2() {
        eprintln!("no AVX2 on this CPU: SIMD kernels not tested");
        return;
    }
    for (i, &(q, ..)) in TYPES.iter().enumerate() {
        let f = lookup(q).unwrap();
        for (j, (n, nx)) in [(256usize, 3usize), (768, 5), (2048, 9)].into_iter().enumerate() {
            let seed = 0x1234_5678 + (31 * i + j) as u64;
            let w = Rng(seed).vec(n * nx);
            let bx = q.row_size(n as u64).unwrap() as usize;
            let mut x = vec![0u8; bx * nx];
            (f.quantize.expect("quantizer"))(&w, &mut x, n, None);
            check(q, &x, bx, nx, n, seed ^ 0xABCD);
        }
    }
}

/// Random block bytes hit every table half, sign and high-bit pattern the quantizer may not produce.
#[test]
fn iqk_avx2_matches_scalar_on_random_blocks() {
    if !have_avx2() {
        return;
    }
    for (i, &(q, meta, bytes, dpos)) in TYPES.iter().enumerate() {
        let (n, nx) = (1024usize, 7usize);
        let bx = meta + n / 256 * bytes;
        let mut r = Rng(0xFEED + i as u64);
        let mut x: Vec<u8> = (0..bx * nx).map(|_| r.next() as u8).collect();
        for row in x.chunks_exact_mut(bx) {
            match meta {
                4 => row[..4].copy_from_slice(&0.0123f32.to_le_bytes()),
                2 => row[..2].copy_from_slice(&0x2266u16.to_le_bytes()),
                _ => {}
            }
            if let Some(p) = dpos {
                for b in row.chunks_exact_mut(bytes) {
                    b[p..p + 2].copy_from_slice(&(0x2000u16 + (r.next() % 0x800) as u16).to_le_bytes());
                }
            }
        }
        check(q, &x, bx, nx, n, 0x77 + i as u64);
    }
}

// ---------------------------------------------------------------- row-interleaved (-rtr) kernels

/// Base rows of `q` (quantized from random weights) and the same rows repacked into `r`.
fn base_and_repacked(q: QType, r: QType, n: usize, nx: usize, seed: u64) -> (Vec<u8>, Vec<u8>, usize) {
    let bx = q.row_size(n as u64).unwrap() as usize;
    let w = Rng(seed).vec(n * nx);
    let mut x = vec![0u8; bx * nx];
    (lookup(q).unwrap().quantize.expect("quantizer"))(&w, &mut x, n, None);
    let mut xr = vec![0u8; x.len()];
    repack_rows(r, &x, &mut xr, n).unwrap();
    (x, xr, bx)
}

/// `gemm[ny-1]` of `k` on (x, y) → ny rows of nx outputs.
fn gemm(k: &Kernels, n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize) -> Vec<f32> {
    let mut o = vec![f32::NAN; nx * ny];
    (k.gemm[ny - 1])(n, x, bx, nx, y, by, ny, &mut o, nx);
    o
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// The `-rtr` promise: an interleaved weight gives bit for bit the base weight's results, at both tiers.
/// (Q8_0_R8 is not in the list: its kernel, cpu/kernels/q8_r8.rs, follows ik's own `_r8` arithmetic.)
#[test]
fn interleaved_kernels_equal_base_kernels() {
    let cases = [
        (QType::IQ4_K, QType::IQ4_K_R4),
        (QType::IQ4_KS, QType::IQ4_KS_R4),
        (QType::Q4_K, QType::Q4_K_R4),
        (QType::IQ4_XS, QType::IQ4_XS_R8),
        (QType::Q4_0, QType::Q4_0_R8),
        (QType::IQ2_K, QType::IQ2_K_R4),
    ];
    let tiers: &[Tier] = if have_avx2() { &[Tier::Scalar, Tier::Avx2] } else { &[Tier::Scalar] };
    for (i, &(q, r)) in cases.iter().enumerate() {
        let (n, nx) = (512usize, 16usize);
        let (x, xr, bx) = base_and_repacked(q, r, n, nx, 0x5EED + i as u64);
        for &t in tiers {
            let (kb, kr) = (kernels_for_tier(q, t).unwrap(), kernels_for_tier(r, t).unwrap());
            assert_eq!(kb.act, kr.act, "{} pairs with its base's activation", r.name());
            let (y, by) = acts(&kb, n, &mut Rng(0xACE + i as u64));
            for ny in [1, 3, 8] {
                let a = gemm(&kb, n, &x, bx, nx, &y, by, ny);
                let b = gemm(&kr, n, &xr, bx, nx, &y, by, ny);
                assert_eq!(bits(&a), bits(&b), "{} vs {} at {} ny={ny}", r.name(), q.name(), t.name());
            }
        }
    }
}

/// The AVX2 `_R4` kernels against their scalar twin on random base blocks (every shift / sign pattern).
#[test]
fn interleaved_avx2_matches_scalar_on_random_blocks() {
    if !have_avx2() {
        return;
    }
    for (i, &(q, r, meta, bytes, dpos)) in [
        (QType::IQ4_K, QType::IQ4_K_R4, 0usize, 144usize, Some(0usize)),
        (QType::IQ4_KS, QType::IQ4_KS_R4, 4, 136, None),
        (QType::IQ4_XS, QType::IQ4_XS_R8, 0, 136, Some(0)),
    ]
    .iter()
    .enumerate()
    {
        let (n, nx) = (768usize, 16usize);
        let bx = meta + n / 256 * bytes;
        let mut g = Rng(0xBEEF + i as u64);
        let mut x: Vec<u8> = (0..bx * nx).map(|_| g.next() as u8).collect();
        for row in x.chunks_exact_mut(bx) {
            if meta == 4 {
                row[..4].copy_from_slice(&(0.01f32 + (g.next() % 100) as f32 * 1e-4).to_le_bytes());
            }
            if let Some(p) = dpos {
                for b in row.chunks_exact_mut(bytes) {
                    b[p..p + 2].copy_from_slice(&(0x2000u16 + (g.next() % 0x800) as u16).to_le_bytes());
                }
            }
        }
        let mut xr = vec![0u8; x.len()];
        repack_rows(r, &x, &mut xr, n).unwrap();
        let (simd, scalar) = (kernels_for_tier(r, Tier::Avx2).unwrap(), kernels_for_tier(r, Tier::Scalar).unwrap());
        assert_eq!(simd.tier, Tier::Avx2, "{} has an AVX2 kernel", r.name());
        let base = kernels_for_tier(q, Tier::Avx2).unwrap();
        let (y, by) = acts(&scalar, n, &mut Rng(0xF00D + i as u64));
        for ny in 1..=8 {
            let a = gemm(&simd, n, &xr, bx, nx, &y, by, ny);
            assert_eq!(bits(&a), bits(&gemm(&scalar, n, &xr, bx, nx, &y, by, ny)), "{} ny={ny}", r.name());
            assert_eq!(bits(&a), bits(&gemm(&base, n, &x, bx, nx, &y, by, ny)), "{} vs base ny={ny}", r.name());
        }
    }
}
