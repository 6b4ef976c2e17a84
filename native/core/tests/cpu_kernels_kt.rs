//! Trellis kernels (cpu/kernels/kt.rs): AVX2 = scalar twin bit for bit for ny = 1..8 on quantizer output and on
//! random blocks, and the twin against f64 of the dequantized operands (row scale × the x86 kernel factor of
//! spec/quants.md §6.12.6) to 1e-5 of Σ|x·y|.

use ikl_core::cpu::table::{kernels_for_tier, Kernels};
use ikl_core::cpu::tier::Tier;
use ikl_core::quant::formats::lookup;
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

/// (type, block bytes, x86 kernel factor).
const TYPES: &[(QType, usize, f64)] =
    &[(QType::IQ1_KT, 56, 1.0), (QType::IQ2_KT, 68, 1.05), (QType::IQ3_KT, 100, 1.01), (QType::IQ4_KT, 128, 1.0)];

fn acts(k: &Kernels, n: usize, seed: u64) -> (Vec<u8>, usize) {
    let by = k.act.row_size(n as u64).unwrap() as usize;
    let mut g = Rng(seed | 1);
    let mut y = vec![0u8; by * 8];
    for iy in 0..8 {
        let v: Vec<f32> = (0..n).map(|_| g.f()).collect();
        (k.quantize_act)(&v, &mut y[iy * by..(iy + 1) * by]);
    }
    (y, by)
}

/// Q8_2_X4 row (n a multiple of 128: groups of four blocks only) → f64 values.
fn deq_act(y: &[u8], n: usize) -> Vec<f64> {
    (0..n)
        .map(|e| {
            let (g, r, i) = (e / 128, (e / 32) % 4, e % 32);
            let dy = f32::from_bits((u16::from_le_bytes([y[144 * g + 2 * r], y[144 * g + 2 * r + 1]]) as u32) << 16);
            dy as f64 * y[144 * g + 16 + 32 * r + i] as i8 as f64
        })
        .collect()
}

fn gemm(k: &Kernels, n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize) -> Vec<f32> {
    let ldo = nx + 1;
    let mut o = vec![f32::NAN; ldo * ny];
    (k.gemm[ny - 1])(n, x, bx, nx, y, by, ny, &mut o, ldo);
    for iy in 0..ny {
        assert!(o[iy * ldo + nx].is_nan(), "padding column written");
    }
    o
}

fn check(q: QType, factor: f64, x: &[u8], n: usize, nx: usize, seed: u64) {
    let bx = x.len() / nx;
    let (simd, scalar) = (kernels_for_tier(q, Tier::Avx2).unwrap(), kernels_for_tier(q, Tier::Scalar).unwrap());
    let (y, by) = acts(&scalar, n, seed);
    let ldo = nx + 1;
    for ny in 1..=8 {
        let b = gemm(&scalar, n, x, bx, nx, &y, by, ny);
        let avx2 = kernels_for_tier(QType::Q8_0, Tier::Avx2).unwrap().tier == Tier::Avx2;
        assert_eq!(simd.tier == Tier::Avx2, avx2, "{} has an AVX2 kernel wherever AVX2 is present", q.name());
        if avx2 {
            let a = gemm(&simd, n, x, bx, nx, &y, by, ny);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{} AVX2 vs scalar ny={ny}", q.name());
        }
        if ny == 8 {
            let mut w = vec![0f32; n * nx];
            (lookup(q).unwrap().dequantize)(x, &mut w, n);
            for iy in 0..ny {
                let ya = deq_act(&y[iy * by..], n);
                for ix in 0..nx {
                    let wr = &w[ix * n..(ix + 1) * n];
                    let dot: f64 = wr.iter().zip(&ya).map(|(&a, &b)| a as f64 * b).sum::<f64>() * factor;
                    let mag: f64 = wr.iter().zip(&ya).map(|(&a, &b)| (a as f64 * b).abs()).sum::<f64>() * factor;
                    let got = b[iy * ldo + ix] as f64;
                    assert!((got - dot).abs() <= 1e-5 * mag + 1e-30, "{} ({ix},{iy}): {got} vs {dot} (Σ|xy| {mag})", q.name());
                }
            }
        }
    }
}

#[test]
fn kt_kernels_on_quantized_rows() {
    for (i, &(q, _, factor)) in TYPES.iter().enumerate() {
        let (n, nx) = (512usize, 3usize);
        let mut g = Rng(0x4B54 + i as u64);
        let w: Vec<f32> = (0..n * nx).map(|_| g.f()).collect();
        let bx = q.row_size(n as u64).unwrap() as usize;
        let mut x = vec![0u8; bx * nx];
        (lookup(q).unwrap().quantize.expect("quantizer"))(&w, &mut x, n, None);
        check(q, factor, &x, n, nx, 0x77 + i as u64);
    }
}

#[test]
fn kt_kernels_on_random_blocks() {
    for (i, &(q, bytes, factor)) in TYPES.iter().enumerate() {
        let (n, nx) = (768usize, 5usize);
        let bx = 4 + n / 256 * bytes;
        assert_eq!(bx, q.row_size(n as u64).unwrap() as usize);
        let mut g = Rng(0xB10C + i as u64);
        let mut x: Vec<u8> = (0..bx * nx).map(|_| g.next() as u8).collect();
        for row in x.chunks_exact_mut(bx) {
            row[..4].copy_from_slice(&(0.001f32 + (g.next() % 100) as f32 * 1e-5).to_le_bytes());
        }
        check(q, factor, &x, n, nx, 0x99 + i as u64);
    }
}
