//! Quantizer quality against ik_llama.cpp @ 8337e4cd for every weight type (fixtures/golden/quant-rmse.json,
//! produced by test/tools/quant_quality_ref.py from libggml.so on four 16×1024 slices of fixture-model F16
//! tensors, native/core/tests/data/quant_quality_input.bin):
//! * our quantize → dequantize error ≤ 1.02 × the reference's, per tensor, without an imatrix (RMSE) and with
//!   one (imatrix-weighted RMSE);
//! * the simple types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q6_0, IQ4_NL, MXFP4) produce the reference's bytes;
//! * our dequantization of reference-quantized blocks of every type is bit-exact (tests/data/quant_ref_blocks.bin);
//! * every weight type has a dequantizer and a quantizer.
//!
//! `IKL_UPDATE_QUANT_QUALITY=1` also times our quantizers (single thread) and rewrites docs/quant-quality.md and
//! the `ours` fields of the JSON.

use ikl_core::quant::formats::lookup;
use ikl_core::quant::{QType, Role, ALL};
use serde_json::Value;
use std::path::PathBuf;

/// Types whose reference quantizer is fully specified (spec/quants.md §13): ours must give identical bytes.
const SIMPLE: &[QType] = &[QType::Q4_0, QType::Q4_1, QType::Q5_0, QType::Q5_1, QType::Q8_0, QType::Q6_0, QType::IQ4_NL, QType::MXFP4];
/// ARM-only layouts the x86 reference build cannot dequantize (no table entry, no format here).
const ARM_ONLY: &[QType] = &[QType::Q4_0_4_4, QType::Q4_0_4_8, QType::Q4_0_8_8];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> Vec<u8> {
    let p = root().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn u32_at(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize
}

struct Input {
    ne0: usize,
    x: Vec<Vec<f32>>,
    im: Vec<Vec<f32>>,
}

fn input() -> Input {
    let b = read("native/core/tests/data/quant_quality_input.bin");
    assert_eq!(&b[..4], b"IKQQ");
    let (n, nrows, ne0) = (u32_at(&b, 8), u32_at(&b, 12), u32_at(&b, 16));
    let (mut off, mut x, mut im) = (20, Vec::new(), Vec::new());
    for _ in 0..n {
        let h = |i: usize| ikl_core::quant::convert::f16_to_f32(u16::from_le_bytes([b[off + 2 * i], b[off + 2 * i + 1]]));
        x.push((0..nrows * ne0).map(h).collect());
        off += 2 * nrows * ne0;
        im.push(b[off..off + 4 * ne0].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect());
        off += 4 * ne0;
    }
    assert_eq!(off, b.len());
    Input { ne0, x, im }
}

fn golden() -> Value {
    serde_json::from_slice(&read("fixtures/golden/quant-rmse.json")).expect("quant-rmse.json")
}

fn quantize(q: QType, x: &[f32], ne0: usize, im: Option<&[f32]>) -> Vec<u8> {
    let f = lookup(q).unwrap_or_else(|| panic!("{} not registered", q.name()));
    let quant = f.quantize.unwrap_or_else(|| panic!("{}: no quantizer", q.name()));
    let mut out = vec![0u8; x.len() / ne0 * q.row_size(ne0 as u64).expect("row size") as usize];
    quant(x, &mut out, ne0, im);
    out
}

fn dequantize(q: QType, enc: &[u8], ne0: usize) -> Vec<f32> {
    let f = lookup(q).expect("registered");
    let mut y = vec![0f32; enc.len() / q.row_size(ne0 as u64).expect("row size") as usize * ne0];
    (f.dequantize)(enc, &mut y, ne0);
    y
}

/// RMSE, or with an imatrix the column-weighted RMSE `sqrt(Σ w·e² / Σ w)` (as the generator computes it).
fn error(x: &[f32], y: &[f32], im: Option<&[f32]>) -> f64 {
    let (mut s, mut sw) = (0f64, 0f64);
    for (i, (a, b)) in x.iter().zip(y).enumerate() {
        let w = im.map_or(1.0, |m| m[i % m.len()] as f64);
        s += w * ((*a as f64) - (*b as f64)).powi(2);
        sw += w;
    }
    (s / sw).sqrt()
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| (h ^ c as u64).wrapping_mul(0x100_0000_01b3))
}

fn weight_types() -> impl Iterator<Item = QType> {
    ALL.iter().copied().filter(|q| q.traits().role == Role::Weight && !ARM_ONLY.contains(q))
}

#[test]
fn every_weight_type_has_a_quantizer() {
    let missing: Vec<&str> = weight_types().filter(|&q| !matches!(lookup(q), Some(f) if f.quantize.is_some())).map(|q| q.name()).collect();
    assert!(missing.is_empty(), "weight types without dequantizer or quantizer: {missing:?}");
}

/// Our errors per tensor × [no imatrix, imatrix], and whether our bytes equal the reference's.
fn ours(q: QType, inp: &Input, ref_fnv: &[Vec<String>]) -> (Vec<[f64; 2]>, Vec<[bool; 2]>) {
    let (mut errs, mut same) = (Vec::new(), Vec::new());
    for (k, (x, im)) in inp.x.iter().zip(&inp.im).enumerate() {
        let mut e = [0f64; 2];
        let mut s = [false; 2];
        for (m, imx) in [None, Some(&im[..])].into_iter().enumerate() {
            let enc = quantize(q, x, inp.ne0, imx);
            e[m] = error(x, &dequantize(q, &enc, inp.ne0), imx);
            s[m] = format!("{:016x}", fnv(&enc)) == ref_fnv[k][m];
        }
        errs.push(e);
        same.push(s);
    }
    (errs, same)
}

/// Reference errors per tensor × mode; `None` where the reference refuses (no imatrix for a type that needs one).
fn ref_errs(t: &Value) -> Vec<[Option<f64>; 2]> {
    t["err"].as_array().expect("err").iter().map(|p| [p[0].as_f64(), p[1].as_f64()]).collect()
}

/// FNV-1a of the reference's bytes per tensor × mode (empty strings where it has none).
fn ref_fnvs(t: &Value) -> Vec<Vec<String>> {
    let none = || vec![String::new(); 2];
    match t["fnv"].as_array() {
        Some(a) => {
            a.iter().map(|p| p.as_array().map_or_else(none, |v| v.iter().map(|s| s.as_str().unwrap_or("").to_string()).collect())).collect()
        }
        None => vec![none(); t["err"].as_array().map_or(0, |a| a.len())],
    }
}

#[test]
fn quantizer_error_within_1_02_of_reference() {
    let (inp, g) = (input(), golden());
    let types = g["types"].as_object().expect("types");
    let mut failures = Vec::new();
    let mut covered = 0;
    for q in weight_types() {
        let Some(t) = types.get(q.name()) else {
            failures.push(format!("{}: no reference numbers in quant-rmse.json", q.name()));
            continue;
        };
        covered += 1;
        let (errs, same) = ours(q, &inp, &ref_fnvs(t));
        for (k, (o, r)) in errs.iter().zip(ref_errs(t)).enumerate() {
            for m in 0..2 {
                let bad = match r[m] {
                    Some(r) => o[m] > 1.02 * r + 1e-12,
                    None => !o[m].is_finite(),
                };
                if bad {
                    failures.push(format!("{} tensor {k} imatrix={}: error {:.6e} > 1.02 × reference {:?}", q.name(), m == 1, o[m], r[m]));
                }
            }
            if SIMPLE.contains(&q) && !same[k].iter().all(|&s| s) {
                failures.push(format!("{} tensor {k}: bytes differ from the reference ({:?})", q.name(), same[k]));
            }
        }
    }
    assert!(covered > 60, "only {covered} types covered");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn dequantize_reference_blocks_bit_exact() {
    let b = read("native/core/tests/data/quant_ref_blocks.bin");
    assert_eq!(&b[..4], b"IKRB");
    let (n, mut off) = (u32_at(&b, 8), 12);
    let mut failures = Vec::new();
    for _ in 0..n {
        let q = QType::from_id(u32_at(&b, off) as u32).expect("type id");
        let (ne0, nbytes) = (u32_at(&b, off + 4), u32_at(&b, off + 12));
        let enc = &b[off + 16..off + 16 + nbytes];
        let want = u64::from_le_bytes(b[off + 16 + nbytes..off + 24 + nbytes].try_into().expect("fnv"));
        off += 24 + nbytes;
        // IQ6_K: ggml's to_float evaluates a cubic instead of the table the kernels use (spec §6.5); the table
        // form is checked against the polynomial with a tolerance in quant_iqk.rs.
        if q == QType::IQ6_K {
            continue;
        }
        let y = dequantize(q, enc, ne0);
        let got = fnv(&y.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
        if got != want {
            failures.push(q.name());
        }
    }
    assert_eq!(off, b.len());
    assert!(n > 60, "only {n} types");
    assert!(failures.is_empty(), "dequantization not bit-exact on reference blocks: {failures:?}");
}

/// Regenerate docs/quant-quality.md and the `ours` fields of the JSON (IKL_UPDATE_QUANT_QUALITY=1).
#[test]
fn update_table() {
    if std::env::var_os("IKL_UPDATE_QUANT_QUALITY").is_none() {
        return;
    }
    let (inp, mut g) = (input(), golden());
    let mut md = String::from(include_str!("data/quant_quality_head.md"));
    let names: Vec<String> = g["tensors"].as_array().expect("tensors").iter().map(|v| v.as_str().unwrap_or("").to_string()).collect();
    for (k, n) in names.iter().enumerate() {
        md += &format!("{}. `{n}`\n", k + 1);
    }
    md += "\n| type | bpw | ref RMSE (no imatrix) | ours/ref | ref wRMSE (imatrix) | ours/ref | same bytes | ref ms/MiB | ours ms/MiB |\n";
    md += "|---|---:|---|---|---|---|---:|---:|---:|\n";
    let types = g["types"].as_object_mut().expect("types");
    for q in weight_types() {
        let Some(t) = types.get_mut(q.name()) else { continue };
        let (re, rf) = (ref_errs(t), ref_fnvs(t));
        // warm-up (codebooks, grids), then time one pass
        quantize(q, &inp.x[0], inp.ne0, None);
        let t0 = std::time::Instant::now();
        let (errs, same) = ours(q, &inp, &rf);
        let mib = (2 * inp.x.len() * inp.x[0].len() * 4) as f64 / (1 << 20) as f64;
        // ours() also dequantizes; the quantizers dominate (dequantization is ~1 % of it)
        let ms = 1000.0 * t0.elapsed().as_secs_f64() / mib;
        let ratio = |m: usize| {
            let r = errs.iter().zip(&re).filter_map(|(o, r)| r[m].map(|r| if r > 0.0 { o[m] / r } else { 1.0 })).fold(0f64, f64::max);
            if re.iter().all(|r| r[m].is_none()) {
                "–".to_string()
            } else {
                format!("{r:.4}")
            }
        };
        let fmt_r =
            |m: usize| re.iter().map(|r| r[m].map_or("needs imatrix".to_string(), |v| format!("{v:.3e}"))).collect::<Vec<_>>().join(" ");
        let nsame = same.iter().flatten().filter(|&&s| s).count();
        let tr = q.traits();
        let bpw = 8.0 * (tr.type_size as f64 * 256.0 / tr.block as f64 + tr.row_meta as f64 * 256.0 / inp.ne0 as f64) / 256.0;
        md += &format!(
            "| {} | {bpw:.3} | {} | {} | {} | {} | {nsame}/{} | {} | {ms:.0} |\n",
            q.name(),
            fmt_r(0),
            ratio(0),
            fmt_r(1),
            ratio(1),
            2 * errs.len(),
            t["ms_per_mib"].as_f64().map_or_else(|| t["ref_failed"].as_str().unwrap_or("–").to_string(), |v| format!("{v:.0}"))
        );
        t["ours"] = serde_json::json!({ "err": errs, "same_bytes": same, "ms_per_mib": ms });
    }
    std::fs::write(root().join("docs/quant-quality.md"), md).expect("write docs/quant-quality.md");
    let mut s = serde_json::to_string_pretty(&g).expect("json");
    s.push('\n');
    std::fs::write(root().join("fixtures/golden/quant-rmse.json"), s).expect("write json");
}
