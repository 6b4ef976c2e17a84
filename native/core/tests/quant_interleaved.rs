//! Row-interleaved (`_R4/_R8/_R16`), Q8_KV, ternary (BN) and trellis (KT) types against the reference library
//! (ik_llama.cpp @ 8337e4cd libggml via tests/data/gen_interleaved_ref.py): our dequantization of the
//! reference's bytes must be bit-exact (FNV of the f32 output), our quantizer's bytes are compared with the
//! reference's (fraction reported; exact where the base quantizer is), and repack/unpack must be inverse
//! permutations on arbitrary bytes.

use ikl_core::quant::formats::{lookup, repack_rows, unpack_rows};
use ikl_core::quant::QType;

fn xorshift(seed: u32) -> impl FnMut() -> u32 {
    let mut s = seed;
    move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s >> 8
    }
}

/// Same generator as gen_interleaved_ref.py `gen_x` (every step exact in f32).
fn gen_x(nrows: usize, ne0: usize, seed: u32) -> Vec<f32> {
    let mut u = xorshift(seed);
    let mut x: Vec<f32> = (0..nrows * ne0)
        .map(|_| {
            let v = u() as i64 + u() as i64 + u() as i64 + u() as i64 - (1 << 25);
            v as f32 * (2f32).powi(-23)
        })
        .collect();
    for r in 0..nrows {
        for j in (0..ne0).step_by(97) {
            x[r * ne0 + j] *= 8.0;
        }
    }
    x[..32].fill(0.0);
    if nrows > 2 {
        for v in &mut x[2 * ne0..3 * ne0] {
            *v *= (2f32).powi(-10);
        }
    }
    x
}

fn gen_im(ne0: usize, seed: u32) -> Vec<f32> {
    let mut u = xorshift(seed);
    (0..ne0).map(|_| (u() | 0x10_0000) as f32 * (2f32).powi(-24)).collect()
}

fn fnv(y: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in y {
        for b in v.to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

struct Golden {
    q: QType,
    ne0: usize,
    nrows: usize,
    im: bool,
    bytes: Vec<u8>,
    deq_fnv: u64,
    rmse: f32,
}

fn load(name: &str) -> Option<Golden> {
    let p = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let b = std::fs::read(p).ok()?;
    let u = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize;
    assert_eq!(&b[..4], b"IKIL");
    let n = u(24);
    let t = 28 + n;
    Some(Golden {
        q: QType::from_id(u(8) as u32).expect("type id"),
        ne0: u(12),
        nrows: u(16),
        im: u(20) & 1 != 0,
        bytes: b[28..t].to_vec(),
        deq_fnv: u64::from_le_bytes(b[t..t + 8].try_into().expect("fnv")),
        rmse: f32::from_le_bytes(b[t + 8..t + 12].try_into().expect("rmse")),
    })
}

const NAMES: &[&str] = &[
    "q4_0_r8",
    "q8_0_r8",
    "q5_0_r4",
    "q6_0_r4",
    "iq4_nl_r4",
    "iq4_xs_r8",
    "q2_k_r4",
    "q3_k_r4",
    "q4_k_r4",
    "q5_k_r4",
    "q6_k_r4",
    "iq2_xxs_r4",
    "iq2_xs_r4",
    "iq2_s_r4",
    "iq3_xxs_r4",
    "iq3_s_r4",
    "iq2_k_r4",
    "iq3_k_r4",
    "iq4_k_r4",
    "iq5_k_r4",
    "iq4_ks_r4",
    "iq5_ks_r4",
    "q8_k_r8",
    "q8_kv",
    "q8_kv_r8",
    "iq1_bn",
    "iq2_bn",
    "iq2_bn_r4",
    "iq1_s_r4",
    "iq1_m_r4",
    "iq1_kt",
    "iq2_kt",
    "iq3_kt",
    "iq4_kt",
];

/// Types whose quantizer must reproduce the reference bytes exactly (both imatrix modes). The others differ in
/// a few blocks because their *base* quantizers (quant/formats/legacy.rs, kquants_*, iq3_s, iqk_*) are not yet
/// bit-exact with ik on these inputs; their RMSE is still held to ≤ 1.02× the reference's.
fn must_match_bytes(q: QType) -> bool {
    use QType::*;
    matches!(
        q,
        Q8_0_R8
            | IQ4_NL_R4
            | IQ4_XS_R8
            | Q3_K_R4
            | Q4_K_R4
            | Q6_K_R4
            | IQ2_XXS_R4
            | IQ2_XS_R4
            | IQ2_S_R4
            | IQ3_XXS_R4
            | IQ2_K_R4
            | IQ3_K_R4
            | IQ4_K_R4
            | Q8_KV
            | Q8_KV_R8
            | Q8_K_R8
            | IQ1_BN
            | IQ2_BN
            | IQ2_BN_R4
            | IQ1_S_R4
            | IQ1_M_R4
    )
}

#[test]
fn reference_goldens() {
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for name in NAMES {
        for sfx in ["", "_im"] {
            let Some(g) = load(&format!("il_{name}{sfx}.bin")) else { continue };
            let Some(f) = lookup(g.q) else {
                report.push(format!("{:<11}{sfx:<3} not registered (base missing or not implemented)", g.q.name()));
                continue;
            };
            let n = g.nrows * g.ne0;
            let mut y = vec![0f32; n];
            (f.dequantize)(&g.bytes, &mut y, g.ne0);
            let deq_ok = fnv(&y) == g.deq_fnv;
            if !deq_ok {
                failures.push(format!("{} dequantize not bit-exact", g.q.name()));
            }
            let mut line = format!("{:<11}{sfx:<3} dequant {}", g.q.name(), if deq_ok { "exact" } else { "DIFF" });
            if let Some(quant) = f.quantize {
                let x = gen_x(g.nrows, g.ne0, 0x123_4567 + g.q.id());
                let im = gen_im(g.ne0, 0x765_4321 + g.q.id());
                let mut out = vec![0u8; g.bytes.len()];
                quant(&x, &mut out, g.ne0, if g.im { Some(&im) } else { None });
                let same = out.iter().zip(&g.bytes).filter(|(a, b)| a == b).count();
                let frac = same as f64 / out.len() as f64;
                (f.dequantize)(&out, &mut y, g.ne0);
                let rmse = (x.iter().zip(&y).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / n as f64).sqrt();
                line += &format!("  quant bytes {:.4}  rmse {rmse:.5} (ref {:.5})", frac, g.rmse);
                if must_match_bytes(g.q) && same != out.len() {
                    failures.push(format!("{} quantize bytes differ ({frac:.4})", g.q.name()));
                }
                if rmse > 1.02 * g.rmse as f64 + 1e-7 {
                    failures.push(format!("{} rmse {rmse} > 1.02 × ref {}", g.q.name(), g.rmse));
                }
            }
            report.push(line);
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn repack_unpack_are_inverse() {
    let mut rnd = xorshift(99);
    let mut tested = 0;
    for &q in ikl_core::quant::ALL {
        let il = q.traits().interleave;
        if il <= 1 || matches!(q, QType::Q8_K_R8 | QType::Q8_K_R16 | QType::Q8_KV_R8) {
            continue;
        }
        let ne0 = 512;
        let Some(rs) = q.base_type().row_size(ne0 as u64) else { continue };
        let len = 2 * il * rs as usize;
        let base: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        let mut packed = vec![0u8; len];
        if repack_rows(q, &base, &mut packed, ne0).is_err() {
            continue; // no repacker (IQ1_S_R4 / IQ1_M_R4 have no base; Q4_0_4_x are ARM-only)
        }
        let mut back = vec![0u8; len];
        unpack_rows(q, &packed, &mut back, ne0).expect("unpack");
        assert_eq!(back, base, "{}: unpack∘repack", q.name());
        let il_bytes: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        unpack_rows(q, &il_bytes, &mut back, ne0).expect("unpack");
        repack_rows(q, &back, &mut packed, ne0).expect("repack");
        assert_eq!(packed, il_bytes, "{}: repack∘unpack", q.name());
        tested += 1;
    }
    assert!(tested >= 25, "only {tested} types round-tripped");
}

#[test]
fn repack_rows_rejects_bad_sizes() {
    let buf = vec![0u8; 18 * 8];
    let mut out = vec![0u8; 18 * 8];
    assert!(repack_rows(QType::Q4_0_R8, &buf, &mut out, 32).is_ok());
    assert!(repack_rows(QType::Q4_0_R8, &buf[..18 * 4], &mut out[..18 * 4], 32).is_err());
    assert!(repack_rows(QType::Q4_0_R8, &buf, &mut out, 31).is_err());
    assert!(repack_rows(QType::Q4_0, &buf, &mut out, 32).is_err());
    assert!(repack_rows(QType::Q4_0_R8, &buf, &mut out[..10], 32).is_err());
}

#[test]
fn q8_k_r8_repack_matches_quantize() {
    // Q8_K_R8 from Q8_K rows (run-time repack) equals direct quantization when the f32 scale is f16-exact.
    let (ne0, q8k) = (256, QType::Q8_K);
    let x: Vec<f32> = (0..8 * ne0).map(|i| ((i * 37 % 255) as f32 - 127.0) * 0.5).collect();
    let base = lookup(q8k).expect("q8_K");
    let mut rows = vec![0u8; 8 * 296];
    (base.quantize.expect("q8_K quantize"))(&x, &mut rows, ne0, None);
    let mut a = vec![0u8; 8 * 258];
    repack_rows(QType::Q8_K_R8, &rows, &mut a, ne0).expect("repack");
    let mut y = vec![0f32; 8 * ne0];
    (lookup(QType::Q8_K_R8).expect("q8_k_r8").dequantize)(&a, &mut y, ne0);
    assert_eq!(y, x);
}
