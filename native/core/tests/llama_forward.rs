//! Forward pass of the `llama` architecture on the `llama-tiny` fixture, checked against ik_llama.cpp
//! (8337e4cd) numbers in `fixtures/golden/llama-tiny-ppl.json`: per-chunk perplexity (`llama-perplexity
//! -c 128 -b 128` on `fixtures/text/declaration.txt`, token ids taken from the reference's logits file) and
//! top-8 log-probabilities at three positions. Also: batch/ubatch/token-by-token agreement, errors, speed.
//! Heavy: run with `--release` (debug builds check one chunk only).

use std::path::PathBuf;
use std::sync::Arc;

use ikl_core::context::{Context, ContextParams};
use ikl_core::fixtures::{write_model, FixtureOptions, FixtureType};
use ikl_core::model::Model;
use ikl_core::quant::QType;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The llama-tiny fixture of type `t`, generated once per build into the target's tmp dir.
fn fixture(t: FixtureType) -> String {
    let name = if t == FixtureType::F32 { "llama-tiny-f32.gguf" } else { "llama-tiny-f16.gguf" };
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    if !path.exists() {
        let o = FixtureOptions { ftype: t, vocab_dir: root().join("node_modules/@lenml"), ..FixtureOptions::default() };
        write_model("llama-tiny", &o, path.to_str().unwrap()).unwrap();
    }
    path.to_str().unwrap().to_string()
}

fn golden() -> Value {
    let s = std::fs::read_to_string(root().join("fixtures/golden/llama-tiny-ppl.json")).unwrap();
    serde_json::from_str(&s).unwrap()
}

fn ctx(model: &Arc<Model>, n_ctx: usize, n_batch: usize, n_ubatch: usize) -> Context {
    let p = ContextParams { n_ctx, n_batch, n_ubatch, threads: 2, ..ContextParams::default() };
    Context::new(model.clone(), p).unwrap()
}

/// ik perplexity: chunk of n_ctx tokens with BOS (id 1) as first token, positions 0.., score the second half.
fn perplexity(t: FixtureType, key: &str, n_ubatch: usize) {
    let g = golden();
    let n_ctx = g["n_ctx"].as_u64().unwrap() as usize;
    let tokens: Vec<u32> = g["tokens"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let want: Vec<f64> = g[&format!("ppl_{key}")].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let tops = g[&format!("top_logprobs_{key}")].as_array().unwrap().clone();
    let model = Arc::new(Model::open(&fixture(t)).unwrap());
    let mut c = ctx(&model, n_ctx, n_ctx, n_ubatch);
    let n_chunk = want.len();
    let first = n_ctx / 2;
    let (mut nll, mut count) = (0.0f64, 0usize);
    let mut out = vec![0.0f64; n_ctx];
    let pos: Vec<i32> = (0..n_ctx as i32).collect();
    let seq = vec![0i32; n_ctx];
    let mut max_lp_diff = 0.0f64;
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
        let ppl = (nll / count as f64).exp();
        let rel = (ppl / want[ch] - 1.0).abs();
        eprintln!("{key} chunk {}: ppl {ppl:.4} reference {:.4} (rel diff {rel:.2e})", ch + 1, want[ch]);
        assert!(rel < 1e-3, "chunk {} ppl {ppl} vs reference {}", ch + 1, want[ch]);
        // top-8 log-probabilities at the golden positions of this chunk (decode the full row)
        for top in tops.iter().filter(|t| t["chunk"].as_u64() == Some(ch as u64)) {
            let p = top["pos"].as_u64().unwrap() as usize;
            c.kv_clear();
            let logits = c.decode(&toks[..=p], &pos[..=p], &seq[..=p], &[p as i32]).unwrap().to_vec();
            for e in top["top"].as_array().unwrap() {
                let (id, lp) = (e[0].as_u64().unwrap() as usize, e[1].as_f64().unwrap());
                let ours = ikl_core::cpu::ops::log_softmax_at(&logits, id);
                max_lp_diff = max_lp_diff.max((ours - lp).abs());
            }
        }
    }
    eprintln!("{key}: max |log p − reference| over golden top-8 entries: {max_lp_diff:.2e}");
    assert!(max_lp_diff < 5e-3, "top log-prob diff {max_lp_diff}");
}

#[test]
fn ppl_f32_matches_reference() {
    perplexity(FixtureType::F32, "f32", 128);
}

#[test]
fn ppl_f16_matches_reference() {
    perplexity(FixtureType::F16, "f16", 128);
}

#[test]
fn ppl_f16_small_ubatch_matches_reference() {
    perplexity(FixtureType::F16, "f16", 48);
}

/// A prompt decoded in one batch, in ubatches, and token by token gives the same last-token logits.
#[test]
fn batch_split_and_incremental_agree() {
    let model = Arc::new(Model::open(&fixture(FixtureType::F32)).unwrap());
    let toks: Vec<u32> = (0..20u32).map(|i| 1 + (i * 7919) % 31999).collect();
    let pos: Vec<i32> = (0..20).collect();
    let seq = vec![0i32; 20];
    let mut a = ctx(&model, 64, 32, 32);
    let full = a.decode(&toks, &pos, &seq, &[19]).unwrap().to_vec();
    let mut b = ctx(&model, 64, 32, 7);
    let split = b.decode(&toks, &pos, &seq, &[19]).unwrap().to_vec();
    let mut c = ctx(&model, 64, 32, 32);
    let mut last = Vec::new();
    for i in 0..20 {
        last = c.decode(&toks[i..=i], &pos[i..=i], &seq[i..=i], &[0]).unwrap().to_vec();
    }
    let md = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    eprintln!("max |Δlogit| full vs ubatch 7: {:.2e}, full vs incremental: {:.2e}", md(&full, &split), md(&full, &last));
    assert!(md(&full, &split) < 1e-3 && md(&full, &last) < 1e-3);
    // two sequences in one batch see only themselves
    let mut d = ctx(&model, 64, 64, 64);
    let toks2: Vec<u32> = toks.iter().chain(toks.iter()).copied().collect();
    let pos2: Vec<i32> = pos.iter().chain(pos.iter()).copied().collect();
    let seq2: Vec<i32> = (0..40).map(|i: i32| i / 20).collect();
    let both = d.decode(&toks2, &pos2, &seq2, &[19, 39]).unwrap().to_vec();
    let nv = model.n_vocab();
    assert!(md(&both[..nv], &full) < 1e-3 && md(&both[nv..], &full) < 1e-3);
}

#[test]
fn errors_are_reported() {
    let model = Arc::new(Model::open(&fixture(FixtureType::F32)).unwrap());
    let mut c = ctx(&model, 8, 8, 8);
    let e = c.decode(&[1, 2, 3], &[0, 1], &[0, 0, 0], &[2]).unwrap_err();
    assert_eq!(e.code(), "IKL_E_INVALID");
    let e = c.decode(&[40000], &[0], &[0], &[0]).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    c.kv_clear();
    let p: Vec<i32> = (0..8).collect();
    c.decode(&[1; 8], &p, &[0; 8], &[]).unwrap();
    let e = c.decode(&[1], &[8], &[0], &[0]).unwrap_err();
    assert!(e.to_string().contains("KV cache full"), "{e}");
    let p = ContextParams { n_ctx: 8, type_k: QType::Q4_K, ..ContextParams::default() };
    let e = Context::new(model.clone(), p).err().unwrap();
    assert_eq!(e.code(), "IKL_E_UNSUPPORTED");
    let p = ContextParams { n_ctx: 1 << 40, ..ContextParams::default() };
    let e = Context::new(model, p).err().unwrap();
    assert_eq!(e.code(), "IKL_E_OOM", "{e}");
}

/// Prompt (128 tokens, one batch) and generation (one token per decode) speed at 2 threads.
#[test]
fn speed_pp128_tg() {
    for t in [FixtureType::F32, FixtureType::F16] {
        let model = Arc::new(Model::open(&fixture(t)).unwrap());
        let mut c = ctx(&model, 256, 128, 128);
        let toks: Vec<u32> = (0..128u32).map(|i| 1 + (i * 7919) % 31999).collect();
        let pos: Vec<i32> = (0..128).collect();
        let t0 = std::time::Instant::now();
        c.decode(&toks, &pos, &[0; 128], &[127]).unwrap();
        let pp = 128.0 / t0.elapsed().as_secs_f64();
        let n_gen = if cfg!(debug_assertions) { 4 } else { 32 };
        let t0 = std::time::Instant::now();
        for i in 0..n_gen {
            c.decode(&[toks[i]], &[128 + i as i32], &[0], &[0]).unwrap();
        }
        let tg = n_gen as f64 / t0.elapsed().as_secs_f64();
        eprintln!("{t:?}: pp128 {pp:.1} t/s, tg {tg:.1} t/s (2 threads)");
    }
}
