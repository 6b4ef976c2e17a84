//! Q4_K / Q5_K / Q6_K against Q8_2_X4 activations (`cpu/kernels/kquants_q82.rs`, ik's AVX2 pairing):
//! the table pairs them with Q8_2_X4 at every tier, the AVX2 kernels equal their scalar twins bit for bit for
//! ny = 1..8 (quantized rows and raw random blocks: every level / scale / min bit pattern), and the twins
//! compute the dot product of the dequantized operands within 1e-5 of Σ|x·y|.

use ikl_core::cpu::kernels::act::act_format;
use ikl_core::cpu::table::{kernels_for_tier, Kernels};
use ikl_core::cpu::tier::Tier;
use ikl_core::quant::convert::f32_to_f16;
use ikl_core::quant::formats::lookup;
use ikl_core::quant::QType;

const TYPES: [QType; 3] = [QType::Q4_K, QType::Q5_K, QType::Q6_K];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Roughly normal with occasional outliers.
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

fn row_bytes(q: QType, n: usize) -> usize {
    q.row_size(n as u64).unwrap() as usize
}

fn have_avx2() -> bool {
    kernels_for_tier(QType::Q4_K, Tier::Avx2).unwrap().tier == Tier::Avx2
}

/// Byte offsets of the f16 scales of a block: (d, dmin) — Q6_K has only d.
fn scale_offsets(q: QType) -> &'static [usize] {
    match q {
        QType::Q6_K => &[208],
        _ => &[0, 2],
    }
}

/// nx weight rows (quantized, or raw random bytes with finite f16 scales) and 8 activation rows.
fn data(q: QType, n: usize, nx: usize, raw: bool, seed: u64) -> (Vec<u8>, Vec<u8>, usize, usize) {
    let mut r = Rng(seed | 1);
    let bx = row_bytes(q, n);
    let mut x = vec![0u8; bx * nx];
    if raw {
        let tb = q.traits().type_size;
        x.iter_mut().for_each(|b| *b = r.next() as u8);
        for blk in x.chunks_exact_mut(tb) {
            for &o in scale_offsets(q) {
                let v = ((r.next() % 2000) as f32 - 1000.0) * 1e-5;
                blk[o..o + 2].copy_from_slice(&f32_to_f16(v).to_le_bytes());
            }
        }
    } else {
        (lookup(q).unwrap().quantize.unwrap())(&r.vec(n * nx), &mut x, n, None);
    }
    let ks = kernels_for_tier(q, Tier::Scalar).unwrap();
    let by = row_bytes(ks.act, n);
    let mut y = vec![0u8; by * 8];
    for iy in 0..8 {
        let a = r.vec(n);
        (ks.quantize_act)(&a, &mut y[iy * by..(iy + 1) * by]);
    }
    (x, y, bx, by)
}

fn run(k: &Kernels, n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, ldo: usize) -> Vec<f32> {
    let mut o = vec![f32::NAN; ldo * ny];
    (k.gemm[ny - 1])(n, x, bx, nx, y, by, ny, &mut o, ldo);
    o
}

#[test]
fn pairs_with_q8_2_x4_at_every_tier() {
    for q in TYPES {
        for t in [Tier::Scalar, Tier::Avx2] {
            assert_eq!(kernels_for_tier(q, t).unwrap().act, QType::Q8_2_X4, "{} at {}", q.name(), t.name());
        }
        // the -rtr interleaved variants follow their base
        let r = match q {
            QType::Q4_K => QType::Q4_K_R4,
            QType::Q5_K => QType::Q5_K_R4,
            _ => QType::Q6_K_R4,
        };
        assert_eq!(kernels_for_tier(r, Tier::Scalar).unwrap().act, QType::Q8_2_X4);
    }
}

#[test]
fn avx2_equals_twin_bit_for_bit() {
    if !have_avx2() {
        eprintln!("no AVX2 on this CPU: SIMD kernels not tested");
        return;
    }
    for (i, q) in TYPES.into_iter().enumerate() {
        let simd = kernels_for_tier(q, Tier::Avx2).unwrap();
        let twin = kernels_for_tier(q, Tier::Scalar).unwrap();
        assert_eq!(simd.tier, Tier::Avx2);
        for (j, &(n, nx, raw)) in
            [(256, 1, false), (512, 7, false), (1024, 13, false), (4096, 9, false), (768, 5, true), (2048, 3, true)].iter().enumerate()
        {
            let (x, y, bx, by) = data(q, n, nx, raw, 0x0DD5 + (31 * i + j) as u64);
            for ny in 1..=8 {
                let ldo = nx + 2;
                let a = run(&simd, n, &x, bx, nx, &y, by, ny, ldo);
                let b = run(&twin, n, &x, bx, nx, &y, by, ny, ldo);
                for iy in 0..ny {
                    for ix in 0..nx {
                        let (u, v) = (a[iy * ldo + ix], b[iy * ldo + ix]);
                        assert_eq!(u.to_bits(), v.to_bits(), "{} n={n} nx={nx} ny={ny} raw={raw} ({ix},{iy}): {u} vs {v}", q.name());
                    }
                    assert!(a[iy * ldo + nx..(iy + 1) * ldo].iter().all(|v| v.is_nan()), "padding columns written");
                }
            }
        }
    }
}

#[test]
fn twin_matches_dequantized_dot() {
    for (i, q) in TYPES.into_iter().enumerate() {
        let twin = kernels_for_tier(q, Tier::Scalar).unwrap();
        let (fx, fy) = (lookup(q).unwrap(), act_format(QType::Q8_2_X4).unwrap());
        for (j, &(n, raw)) in [(256usize, false), (1280, false), (4096, false), (512, true), (1536, true)].iter().enumerate() {
            let nx = 3;
            let (x, y, bx, by) = data(q, n, nx, raw, 0xA11CE + (7 * i + j) as u64);
            let o = run(&twin, n, &x, bx, nx, &y, by, 8, nx);
            for iy in 0..8 {
                let mut dy = vec![0f32; n];
                (fy.dequantize)(&y[iy * by..(iy + 1) * by], &mut dy, n);
                for ix in 0..nx {
                    let mut dx = vec![0f32; n];
                    (fx.dequantize)(&x[ix * bx..(ix + 1) * bx], &mut dx, n);
                    let want: f64 = (0..n).map(|e| dx[e] as f64 * dy[e] as f64).sum();
                    let scale: f64 = (0..n).map(|e| (dx[e] as f64 * dy[e] as f64).abs()).sum();
                    let got = o[iy * nx + ix] as f64;
                    let tol = 1e-5 * scale + 1e-30;
                    assert!((got - want).abs() <= tol, "{} n={n} raw={raw} ({ix},{iy}): {got} vs {want} (tol {tol})", q.name());
                }
            }
        }
    }
}

/// Opt-in (`IKL_KQ82_REF_DIR=DIR`): the reference's own numbers. DIR holds, per case `{ggml type id}_{n}`,
/// 64 weight rows (`.a`, quantized by ik's `ggml_quantize_chunk`), 8 activation rows (`.x` f32 and `.b`, ik's
/// `quantize_row_q8_2_x4`) and ik's `iqk_mul_mat` result (`.c`, 8 × 64 f32), written through ctypes from
/// /work/ref/ik/build/ggml/src/libggml.so by test/tools/kq82_ref.py. Our Q8_2_X4 bytes and both
/// tiers' GEMM results must equal them bit for bit.
#[test]
fn equals_reference_iqk_mul_mat() {
    let Ok(dir) = std::env::var("IKL_KQ82_REF_DIR") else { return };
    let (nx, ny) = (64usize, 8usize);
    let mut cases = 0;
    for (id, q) in [(12, QType::Q4_K), (13, QType::Q5_K), (14, QType::Q6_K)] {
        for n in [256usize, 1024, 4096] {
            let base = format!("{dir}/{id}_{n}");
            let Ok(a) = std::fs::read(format!("{base}.a")) else { continue };
            let b = std::fs::read(format!("{base}.b")).unwrap();
            let f32s = |p: &str| -> Vec<f32> {
                std::fs::read(p).unwrap().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
            };
            let (c, xs) = (f32s(&format!("{base}.c")), f32s(&format!("{base}.x")));
            let (bx, by) = (row_bytes(q, n), row_bytes(QType::Q8_2_X4, n));
            let mut tiers = vec![Tier::Scalar];
            if have_avx2() {
                tiers.push(Tier::Avx2);
            }
            for t in tiers {
                let k = kernels_for_tier(q, t).unwrap();
                let mut y = vec![0u8; by * ny];
                for iy in 0..ny {
                    (k.quantize_act)(&xs[iy * n..(iy + 1) * n], &mut y[iy * by..(iy + 1) * by]);
                }
                assert!(y == b, "{} n={n} {}: Q8_2_X4 bytes differ from ik's", q.name(), t.name());
                let o = run(&k, n, &a, bx, nx, &b, by, ny, nx);
                let bad = (0..nx * ny).filter(|&i| o[i].to_bits() != c[i].to_bits()).count();
                assert!(bad == 0, "{} n={n} {}: {bad} of {} results differ (first: {} vs {})", q.name(), t.name(), nx * ny, o[0], c[0]);
            }
            cases += 1;
        }
    }
    assert!(cases > 0, "no reference cases in {dir}");
}
