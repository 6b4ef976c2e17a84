//! CPU kernel table: every SIMD kernel against the scalar reference (`Format::vec_dot` / `quantize`), for
//! ny = 1..8 and several shapes (nx not a multiple of 4/8, block counts with a tail), the AVX2 activation
//! quantizers byte for byte, and the `IKL_CPU_TIER=scalar` path.
//!
//! Every SIMD kernel must be bit-identical to its scalar tier: the reference itself for the Q8_K families,
//! the twins of `kquants_q82` for Q4_K/Q5_K/Q6_K (Q8_2_X4 activations, more in `cpu_kernels_kq82.rs`),
//! the bit-identical twins for the legacy 32-blocks (Q8_2_X4 activations) and float weights (F32 activations),
//! which follow ik's AVX2 arithmetic. The twins are in turn checked against an f64 dot product of the
//! dequantized operands (within 1e-5 of Σ|x·y|).

use ikl_core::cpu::kernels::act::act_format;
use ikl_core::cpu::table::{kernels, kernels_for_tier, Kernels};
use ikl_core::cpu::tier::{tier, Tier};
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
    /// Roughly normal (sum of uniforms), sometimes with outliers, like real weights/activations.
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

const SIMD_TYPES: &[QType] = &[
    QType::Q8_0,
    QType::Q4_0,
    QType::Q4_1,
    QType::Q5_0,
    QType::Q5_1,
    QType::Q6_0,
    QType::IQ4_NL,
    QType::Q2_K,
    QType::Q3_K,
    QType::Q4_K,
    QType::Q5_K,
    QType::Q6_K,
    QType::IQ4_XS,
    QType::F16,
    QType::BF16,
    QType::F32,
];

fn is_float(q: QType) -> bool {
    matches!(q, QType::F32 | QType::F16 | QType::BF16)
}

/// Legacy 32-blocks against Q8_2_X4 (ik's AVX2 pairing, scalar tier = bit-identical twin).
fn is_legacy(q: QType) -> bool {
    matches!(q, QType::Q8_0 | QType::Q4_0 | QType::Q4_1 | QType::Q5_0 | QType::Q5_1 | QType::Q6_0 | QType::IQ4_NL)
}

fn row_bytes(q: QType, n: usize) -> usize {
    q.row_size(n as u64).unwrap() as usize
}

fn have_avx2() -> bool {
    kernels_for_tier(QType::Q8_0, Tier::Avx2).unwrap().tier == Tier::Avx2
}

/// Quantized weights (nx rows) and activations (8 rows, scalar act quantizer) of one shape.
fn data(q: QType, n: usize, nx: usize, seed: u64) -> (Vec<u8>, Vec<f32>, Vec<u8>, usize, usize) {
    let f = lookup(q).unwrap();
    let mut r = Rng(seed | 1);
    let w = r.vec(n * nx);
    let bx = row_bytes(q, n);
    let mut x = vec![0u8; bx * nx];
    (f.quantize.unwrap())(&w, &mut x, n, None);
    let ks = kernels_for_tier(q, Tier::Scalar).unwrap();
    let by = row_bytes(ks.act, n);
    let a = r.vec(n * 8);
    let mut y = vec![0u8; by * 8];
    for iy in 0..8 {
        (ks.quantize_act)(&a[iy * n..(iy + 1) * n], &mut y[iy * by..(iy + 1) * by]);
    }
    (x, a, y, bx, by)
}

/// Σ|x·y| per (ix, iy) from the dequantized rows: the scale of f32 rounding error in a dot product.
fn abs_dot(q: QType, act: QType, n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize) -> Vec<f32> {
    let (fx, fy) = (lookup(q).unwrap(), act_format(act).unwrap());
    let mut dx = vec![0f32; n * nx];
    for ix in 0..nx {
        (fx.dequantize)(&x[ix * bx..(ix + 1) * bx], &mut dx[ix * n..(ix + 1) * n], n);
    }
    let mut dy = vec![0f32; n * ny];
    for iy in 0..ny {
        (fy.dequantize)(&y[iy * by..(iy + 1) * by], &mut dy[iy * n..(iy + 1) * n], n);
    }
    let mut s = vec![0f32; nx * ny];
    for iy in 0..ny {
        for ix in 0..nx {
            s[iy * nx + ix] = (0..n).map(|i| (dx[ix * n + i] * dy[iy * n + i]).abs()).sum();
        }
    }
    s
}

fn compare(q: QType, simd: &Kernels, scalar: &Kernels, n: usize, nx: usize, seed: u64) {
    let (x, _a, y, bx, by) = data(q, n, nx, seed);
    for ny in 1..=8 {
        let ldo = nx + 3;
        let mut o1 = vec![f32::NAN; ldo * ny];
        let mut o2 = vec![f32::NAN; ldo * ny];
        (simd.gemm[ny - 1])(n, &x, bx, nx, &y, by, ny, &mut o1, ldo);
        (scalar.gemm[ny - 1])(n, &x, bx, nx, &y, by, ny, &mut o2, ldo);
        for iy in 0..ny {
            for ix in 0..nx {
                let (a, b) = (o1[iy * ldo + ix], o2[iy * ldo + ix]);
                assert_eq!(a.to_bits(), b.to_bits(), "{} n={n} nx={nx} ny={ny} ({ix},{iy}): {a} vs {b}", q.name());
            }
        }
        // untouched padding columns
        for iy in 0..ny {
            for ix in nx..ldo {
                assert!(o1[iy * ldo + ix].is_nan());
            }
        }
    }
}

fn shapes(q: QType) -> Vec<(usize, usize)> {
    let blk = q.traits().block;
    if is_float(q) {
        vec![(8, 1), (37, 5), (256, 7), (1000, 13), (4096, 9)]
    } else if blk == 32 {
        // block counts 1, 3, 5 (4-block unroll + tail), 8, 128, 602 (two K chunks of the legacy kernel)
        vec![(32, 1), (96, 5), (160, 7), (256, 13), (4096, 9), (19264, 3)]
    } else {
        vec![(256, 1), (512, 7), (1024, 13), (4096, 9)]
    }
}

#[test]
fn simd_gemm_matches_scalar() {
    if !have_avx2() {
        eprintln!("no AVX2 on this CPU: SIMD kernels not tested");
        return;
    }
    for (i, &q) in SIMD_TYPES.iter().enumerate() {
        let simd = kernels_for_tier(q, Tier::Avx2).unwrap();
        let scalar = kernels_for_tier(q, Tier::Scalar).unwrap();
        assert_eq!(simd.tier, Tier::Avx2, "{} has an AVX2 kernel", q.name());
        assert_eq!(scalar.tier, Tier::Scalar);
        assert_eq!(simd.act, scalar.act);
        for (j, (n, nx)) in shapes(q).into_iter().enumerate() {
            compare(q, &simd, &scalar, n, nx, 0x9E37_79B9 + (i * 31 + j) as u64);
        }
    }
}

/// Exercise blocks whose scales hit the extremes (all-equal rows, zero rows, large outliers).
#[test]
fn simd_gemm_matches_scalar_on_edge_rows() {
    if !have_avx2() {
        return;
    }
    for &q in SIMD_TYPES {
        let n = 512;
        let nx = 6;
        let mut w = vec![0f32; n * nx];
        for i in 0..n {
            w[i] = 1.0; // constant row
            w[n + i] = 0.0; // zero row
            w[2 * n + i] = if i % 37 == 0 { 1000.0 } else { 0.001 * i as f32 }; // outliers
            w[3 * n + i] = -(i as f32); // monotone negative
            w[4 * n + i] = if i % 2 == 0 { 1e-3 } else { -1e-3 };
            w[5 * n + i] = ((i * 7919) % 255) as f32 - 127.0;
        }
        let f = lookup(q).unwrap();
        let bx = row_bytes(q, n);
        let mut x = vec![0u8; bx * nx];
        (f.quantize.unwrap())(&w, &mut x, n, None);
        let scalar = kernels_for_tier(q, Tier::Scalar).unwrap();
        let simd = kernels_for_tier(q, Tier::Avx2).unwrap();
        let by = row_bytes(scalar.act, n);
        let mut y = vec![0u8; by * 8];
        for iy in 0..8 {
            let a: Vec<f32> = (0..n).map(|i| w[((iy % nx) * n + (i * 13) % n) % (n * nx)] + iy as f32).collect();
            (scalar.quantize_act)(&a, &mut y[iy * by..(iy + 1) * by]);
        }
        for ny in [1, 4, 8] {
            let mut o1 = vec![0f32; nx * ny];
            let mut o2 = vec![0f32; nx * ny];
            (simd.gemm[ny - 1])(n, &x, bx, nx, &y, by, ny, &mut o1, nx);
            (scalar.gemm[ny - 1])(n, &x, bx, nx, &y, by, ny, &mut o2, nx);
            for i in 0..nx * ny {
                assert_eq!(o1[i].to_bits(), o2[i].to_bits(), "{} ny={ny} {i}: {} vs {}", q.name(), o1[i], o2[i]);
            }
        }
    }
}

/// The twins of the legacy and float kernels compute the dot product of the dequantized operands: within
/// 1e-5 of Σ|x·y| of an f64 sum, for random rows, raw random weight bytes and tails (n % 128 ≠ 0, n % 8 = 4).
#[test]
fn twins_match_dequantized_dot() {
    let mut r = Rng(4242);
    for q in
        [QType::Q8_0, QType::Q4_0, QType::Q4_1, QType::Q5_0, QType::Q5_1, QType::Q6_0, QType::IQ4_NL, QType::F32, QType::F16, QType::BF16]
    {
        let ns: &[usize] = if is_legacy(q) { &[32, 96, 160, 4096, 4160] } else { &[8, 12, 36, 260, 4096] };
        for (k, &n) in ns.iter().enumerate() {
            let (mut x, _a, y, bx, by) = data(q, n, 2, 0x5151 + k as u64);
            if is_legacy(q) {
                // extremes: raw random level bytes in the second weight row (scales and mins kept finite)
                let qb = q.traits().type_size;
                let first = if matches!(q, QType::Q4_1 | QType::Q5_1) { 4 } else { 2 };
                for b in 0..n / 32 {
                    for j in first..qb {
                        let v = r.next() as u8;
                        x[bx + b * qb + j] = if q == QType::Q8_0 && v == 0x80 { 0x81 } else { v };
                    }
                }
            }
            let s = kernels_for_tier(q, Tier::Scalar).unwrap();
            let (fx, fy) = (lookup(q).unwrap(), act_format(s.act).unwrap());
            let mut o = vec![0f32; 2 * 8];
            (s.gemm[7])(n, &x, bx, 2, &y, by, 8, &mut o, 2);
            let scale = abs_dot(q, s.act, n, &x, bx, 2, &y, by, 8);
            for iy in 0..8 {
                let mut dy = vec![0f32; n];
                (fy.dequantize)(&y[iy * by..(iy + 1) * by], &mut dy, n);
                for ix in 0..2 {
                    let mut dx = vec![0f32; n];
                    (fx.dequantize)(&x[ix * bx..(ix + 1) * bx], &mut dx, n);
                    let want: f64 = (0..n).map(|i| dx[i] as f64 * dy[i] as f64).sum();
                    let got = o[iy * 2 + ix] as f64;
                    let tol = 1e-5 * scale[iy * 2 + ix] as f64 + 1e-30;
                    assert!((got - want).abs() <= tol, "{} n={n} ({ix},{iy}): {got} vs {want} (tol {tol})", q.name());
                }
            }
        }
    }
}

#[test]
fn simd_activation_quantizers_are_bit_identical() {
    if !have_avx2() {
        return;
    }
    let mut r = Rng(12345);
    use ikl_core::cpu::kernels::act as a;
    type Q = fn(&[f32], &mut [u8]);
    let q8_0_ref: Q = |x, y| (lookup(QType::Q8_0).unwrap().quantize.unwrap())(x, y, x.len(), None);
    let q8_1_ref: Q = |x, y| (lookup(QType::Q8_1).unwrap().quantize.unwrap())(x, y, x.len(), None);
    for act in [QType::Q8_0, QType::Q8_1, QType::Q8_K, QType::Q8_2_X4, QType::F16, QType::BF16, QType::F32] {
        // the scalar and AVX2 quantizers of `act` (from a weight type pairing with it, or directly)
        let pair = |w: QType| {
            let (s, v) = (kernels_for_tier(w, Tier::Scalar).unwrap(), kernels_for_tier(w, Tier::Avx2).unwrap());
            assert_eq!(s.act, act);
            (s.quantize_act, v.quantize_act)
        };
        let (sq, vq): (Q, Q) = match act {
            QType::Q8_0 => (q8_0_ref, a::quantize_q8_0),
            QType::Q8_1 => (q8_1_ref, a::quantize_q8_1),
            QType::Q8_K => pair(QType::Q2_K),
            QType::Q8_2_X4 => pair(QType::Q8_0),
            QType::F32 => pair(QType::F16),
            QType::F16 => ((|x, y| (lookup(QType::F16).unwrap().quantize.unwrap())(x, y, x.len(), None)) as Q, a::quantize_f16),
            _ => ((|x, y| (lookup(QType::BF16).unwrap().quantize.unwrap())(x, y, x.len(), None)) as Q, a::quantize_bf16),
        };
        for n in [256usize, 512, 4096] {
            let mut rows: Vec<Vec<f32>> = vec![r.vec(n)];
            // ties: amax 127 → d = 1, then exact halves (roundf vs half-to-even) in both signs
            rows.push((0..n).map(|i| if i % 32 == 0 { 127.0 } else { (i % 64) as f32 - 31.5 }).collect());
            rows.push((0..n).map(|i| if i % 256 == 5 { -127.0 } else { ((i % 50) as f32 - 25.0) * 0.5 }).collect());
            rows.push(vec![0.0; n]);
            // equal magnitudes of both signs: the first of largest magnitude decides Q8_K's sign
            rows.push(
                (0..n)
                    .map(|i| {
                        if i % 3 == 0 {
                            -2.0
                        } else if i % 3 == 1 {
                            2.0
                        } else {
                            0.25
                        }
                    })
                    .collect(),
            );
            rows.push((0..n).map(|i| (i as f32 * 1e-3).sin() * 1e-6).collect());
            rows.push((0..n).map(|i| if i % 2 == 0 { 65504.0 * 1.5 } else { 1e-8 }).collect());
            let bytes = row_bytes(act, n);
            for (k, row) in rows.iter().enumerate() {
                let mut a = vec![0u8; bytes];
                let mut b = vec![0u8; bytes];
                sq(row, &mut a);
                vq(row, &mut b);
                assert!(a == b, "{} n={n} row {k}: first diff at byte {:?}", act.name(), a.iter().zip(&b).position(|(x, y)| x != y));
            }
        }
    }
}

#[test]
fn every_type_with_vec_dot_has_a_table_entry() {
    for &q in ikl_core::quant::ALL {
        let Some(f) = lookup(q) else { continue };
        if f.vec_dot.is_none() || lookup(f.vec_dot_type).and_then(|a| a.quantize).is_none() {
            continue;
        }
        let k = kernels_for_tier(q, Tier::Scalar).unwrap_or_else(|| panic!("{} has no scalar kernels", q.name()));
        let ik_act = match q {
            QType::Q8_0 | QType::Q4_0 | QType::Q4_1 | QType::Q5_0 | QType::Q5_1 | QType::Q6_0 | QType::IQ4_NL => QType::Q8_2_X4,
            // ik's AVX2 K-quant kernels (cpu/kernels/kquants_q82.rs, tests/cpu_kernels_kq82.rs)
            QType::Q4_K | QType::Q5_K | QType::Q6_K => QType::Q8_2_X4,
            QType::F32 | QType::F16 | QType::BF16 => QType::F32,
            _ => f.vec_dot_type,
        };
        assert_eq!(k.act, ik_act);
        let k = kernels(q).unwrap();
        assert!(k.tier <= tier());
    }
}

/// Runs the test binary again with `IKL_CPU_TIER=scalar`: the table must then hold the scalar fallbacks and
/// produce the same results as `kernels_for_tier(q, Scalar)`.
#[test]
fn forced_scalar_tier() {
    if std::env::var("IKL_CPU_TIER").is_ok() {
        return; // the child run below
    }
    let exe = std::env::current_exe().unwrap();
    let st = std::process::Command::new(exe)
        .args(["--exact", "forced_scalar_tier_child", "--nocapture"])
        .env("IKL_CPU_TIER", "scalar")
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn forced_scalar_tier_child() {
    if std::env::var("IKL_CPU_TIER").ok().as_deref() != Some("scalar") {
        return;
    }
    assert_eq!(tier(), Tier::Scalar);
    for &q in SIMD_TYPES {
        let k = kernels(q).unwrap();
        assert_eq!(k.tier, Tier::Scalar, "{}", q.name());
        let s = kernels_for_tier(q, Tier::Scalar).unwrap();
        let n = 512;
        let (x, a, y, bx, by) = data(q, n, 5, 77);
        for ny in [1, 3, 8] {
            let mut o1 = vec![0f32; 5 * ny];
            let mut o2 = vec![0f32; 5 * ny];
            (k.gemm[ny - 1])(n, &x, bx, 5, &y, by, ny, &mut o1, 5);
            (s.gemm[ny - 1])(n, &x, bx, 5, &y, by, ny, &mut o2, 5);
            assert_eq!(o1, o2);
        }
        let mut b1 = vec![0u8; by];
        let mut b2 = vec![0u8; by];
        (k.quantize_act)(&a[..n], &mut b1);
        (s.quantize_act)(&a[..n], &mut b2);
        assert_eq!(b1, b2);
    }
}
