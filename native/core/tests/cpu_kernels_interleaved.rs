//! AVX2 row-interleaved kernels (cpu/kernels/interleaved_k.rs: Q4_0_R8, Q4_K_R4, Q5_K_R4, Q6_K_R4;
//! cpu/kernels/interleaved.rs: IQ2_K_R4, IQ3_K_R4, IQ5_K_R4) against
//! their scalar twin and against the base type's AVX2 kernel, bit for bit, for ny = 1..8: on random base
//! blocks (every nibble / high-bit / scale pattern, sane f16 scales patched in) repacked with `repack_rows`,
//! and on quantizer output — the `-rtr` promise that repacking changes speed only.

use ikl_core::cpu::table::{kernels_for_tier, Kernels};
use ikl_core::cpu::tier::Tier;
use ikl_core::model::repack::repacked_type;
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
        (0..4).map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32).sum::<f32>() - 2.0
    }
}

/// (base, interleaved, base block bytes, byte offsets of the block's f16 scales).
const CASES: &[(QType, QType, usize, &[usize])] = &[
    (QType::Q4_0, QType::Q4_0_R8, 18, &[0]),
    (QType::Q4_K, QType::Q4_K_R4, 144, &[0, 2]),
    (QType::Q5_K, QType::Q5_K_R4, 176, &[0, 2]),
    (QType::Q6_K, QType::Q6_K_R4, 210, &[208]),
    (QType::IQ2_K, QType::IQ2_K_R4, 76, &[0]),
    (QType::IQ3_K, QType::IQ3_K_R4, 110, &[0]),
    (QType::IQ5_K, QType::IQ5_K_R4, 176, &[0]),
];

fn have_avx2() -> bool {
    kernels_for_tier(QType::Q8_0, Tier::Avx2).unwrap().tier == Tier::Avx2
}

fn gemm(k: &Kernels, n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize) -> Vec<u32> {
    let ldo = nx + 3;
    let mut o = vec![f32::NAN; ldo * ny];
    (k.gemm[ny - 1])(n, x, bx, nx, y, by, ny, &mut o, ldo);
    for iy in 0..ny {
        assert!(o[iy * ldo + nx..(iy + 1) * ldo].iter().all(|v| v.is_nan()), "padding columns written");
    }
    o.iter().map(|v| v.to_bits()).collect()
}

/// SIMD interleaved = scalar interleaved = SIMD base on rows `x` of `q` (bit for bit), ny = 1..8.
fn check(q: QType, r: QType, x: &[u8], n: usize, nx: usize, seed: u64) {
    let bx = x.len() / nx;
    let mut xr = vec![0u8; x.len()];
    repack_rows(r, x, &mut xr, n).unwrap();
    let (simd, scalar, base) =
        (kernels_for_tier(r, Tier::Avx2).unwrap(), kernels_for_tier(r, Tier::Scalar).unwrap(), kernels_for_tier(q, Tier::Avx2).unwrap());
    assert_eq!(simd.tier, Tier::Avx2, "{} has an AVX2 kernel", r.name());
    assert_eq!(simd.act, base.act, "{} pairs with its base's activation", r.name());
    let by = simd.act.row_size(n as u64).unwrap() as usize;
    let mut g = Rng(seed | 1);
    let mut y = vec![0u8; by * 8];
    for iy in 0..8 {
        let v: Vec<f32> = (0..n).map(|_| g.f()).collect();
        (simd.quantize_act)(&v, &mut y[iy * by..(iy + 1) * by]);
    }
    for ny in 1..=8 {
        let a = gemm(&simd, n, &xr, bx, nx, &y, by, ny);
        assert_eq!(a, gemm(&scalar, n, &xr, bx, nx, &y, by, ny), "{} AVX2 vs scalar n={n} ny={ny}", r.name());
        assert_eq!(a, gemm(&base, n, x, bx, nx, &y, by, ny), "{} vs {} n={n} ny={ny}", r.name(), q.name());
    }
}

#[test]
fn interleaved_k_avx2_matches_scalar_and_base_on_random_blocks() {
    if !have_avx2() {
        eprintln!("no AVX2 on this CPU: SIMD kernels not tested");
        return;
    }
    for (i, &(q, r, bytes, dpos)) in CASES.iter().enumerate() {
        let blk = q.traits().block;
        // Q4_0: 6 and 9 blocks exercise the groups of four and the tail blocks
        for (j, nblk) in [6usize, 9].into_iter().enumerate() {
            let (n, nx) = (blk * nblk, 2 * r.traits().interleave);
            let mut g = Rng(0xC0FFEE + (10 * i + j) as u64);
            let mut x: Vec<u8> = (0..bytes * nblk * nx).map(|_| g.next() as u8).collect();
            for b in x.chunks_exact_mut(bytes) {
                for &p in dpos {
                    b[p..p + 2].copy_from_slice(&(0x2000u16 + (g.next() % 0x800) as u16).to_le_bytes());
                }
            }
            check(q, r, &x, n, nx, 0x51 + i as u64);
        }
    }
}

#[test]
fn interleaved_k_avx2_matches_base_on_quantized_rows() {
    if !have_avx2() {
        return;
    }
    for (i, &(q, r, ..)) in CASES.iter().enumerate() {
        let (n, nx) = (512usize, 16usize);
        let mut g = Rng(0xABCD + i as u64);
        let w: Vec<f32> = (0..n * nx).map(|_| g.f()).collect();
        let bx = q.row_size(n as u64).unwrap() as usize;
        let mut x = vec![0u8; bx * nx];
        (lookup(q).unwrap().quantize.expect("quantizer"))(&w, &mut x, n, None);
        check(q, r, &x, n, nx, 0x99 + i as u64);
    }
}

/// `-rtr` repacks these bases now that their interleaved form has a kernel of the same tier.
#[test]
fn rtr_targets_with_kernels_are_taken() {
    if !have_avx2() {
        return;
    }
    for &(q, r, ..) in CASES {
        assert_eq!(repacked_type(q, 64), Some(r), "{} → {}", q.name(), r.name());
        assert_eq!(repacked_type(q, 64 + 2), None, "row count not a multiple of the interleave");
    }
}
