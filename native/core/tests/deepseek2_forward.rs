//! Forward pass of the `deepseek2` architecture (MLA mode 0: standard attention, MoE with shared experts) on
//! the `ds-tiny-27l` fixture, checked against ik_llama.cpp (8337e4cd) perplexities in
//! `fixtures/golden/ds-tiny-27l-ppl.json` (`llama-perplexity -c 128 -b 128 -t 2 -mla 0 -fa off|on` on
//! `fixtures/text/declaration.txt`). Also: the split `attn_k_b`/`attn_v_b` form of the same weights gives the
//! same perplexity, the 4-layer `ds-tiny` (which the reference cannot load: it treats only 26/27-layer files as
//! V2-Lite) loads and runs, batch/ubatch/token-by-token agreement, hparams.
//! Heavy: run with `--release` (debug builds check one chunk only).

use std::path::PathBuf;
use std::sync::Arc;

use ikl_core::context::{Context, ContextParams, FlashAttn};
use ikl_core::fixtures::{write_model, FixtureOptions, MlaForm};
use ikl_core::model::{Model, Net};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An F16 fixture, generated once per build into the target's tmp dir.
fn fixture(name: &str, form: MlaForm) -> String {
    let tag = match form {
        MlaForm::KvB => "kvb",
        MlaForm::Split => "split",
        MlaForm::Both => "both",
    };
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{tag}-f16.gguf"));
    if !path.exists() {
        let o = FixtureOptions { mla_form: form, vocab_dir: root().join("node_modules/@lenml"), ..FixtureOptions::default() };
        write_model(name, &o, path.to_str().unwrap()).unwrap();
    }
    path.to_str().unwrap().to_string()
}

fn golden() -> Value {
    let s = std::fs::read_to_string(root().join("fixtures/golden/ds-tiny-27l-ppl.json")).unwrap();
    serde_json::from_str(&s).unwrap()
}

fn ctx(model: &Arc<Model>, n_ctx: usize, n_batch: usize, n_ubatch: usize, fa: bool) -> Context {
    let flash_attn = if fa { FlashAttn::On } else { FlashAttn::Off };
    let p = ContextParams { n_ctx, n_batch, n_ubatch, threads: 2, flash_attn, ..ContextParams::default() };
    Context::new(model.clone(), p).unwrap()
}

/// ik perplexity: chunks of n_ctx tokens with BOS as first token, positions 0.., score the second half.
/// Returns the running perplexity after each chunk.
fn perplexity(model: &Arc<Model>, fa: bool, n_ubatch: usize, n_chunk: usize) -> Vec<f64> {
    let g = golden();
    let n_ctx = g["n_ctx"].as_u64().unwrap() as usize;
    let tokens: Vec<u32> = g["tokens"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let mut c = ctx(model, n_ctx, n_ctx, n_ubatch, fa);
    let first = n_ctx / 2;
    let (mut nll, mut count) = (0.0f64, 0usize);
    let mut out = vec![0.0f64; n_ctx];
    let pos: Vec<i32> = (0..n_ctx as i32).collect();
    let seq = vec![0i32; n_ctx];
    let mut ppl = Vec::new();
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
        ppl.push((nll / count as f64).exp());
    }
    ppl
}

fn n_chunks() -> usize {
    if cfg!(debug_assertions) {
        1
    } else {
        6
    }
}

fn check_against(key: &str, ours: &[f64], tol: f64) {
    let g = golden();
    let want: Vec<f64> = g[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    for (ch, (&p, &w)) in ours.iter().zip(&want).enumerate() {
        eprintln!("{key} chunk {}: ppl {p:.4} reference {w:.4} (rel diff {:.2e})", ch + 1, (p / w - 1.0).abs());
    }
    for (ch, (&p, &w)) in ours.iter().zip(&want).enumerate() {
        assert!((p / w - 1.0).abs() < tol, "{key} chunk {} ppl {p} vs reference {w}", ch + 1);
    }
}

#[test]
fn hparams_of_fixtures() {
    let m = Model::open(&fixture("ds-tiny-27l", MlaForm::KvB)).unwrap();
    let Net::Deepseek2(d) = &m.net else { panic!("expected deepseek2") };
    let hp = &d.hp;
    assert_eq!((hp.n_layer, hp.n_head, hp.head_dim_k, hp.head_dim_v, hp.n_rot, hp.n_nope), (27, 8, 96, 64, 32, 64));
    assert_eq!((hp.q_lora_rank, hp.kv_lora_rank, hp.n_dense, hp.n_expert, hp.n_expert_used, hp.n_expert_shared), (0, 128, 1, 8, 2, 1));
    assert!((hp.kq_scale() - 1.0 / 96f32.sqrt()).abs() < 1e-7);
    assert_eq!(d.w.derived_bytes(), 0);
    let m = Model::open(&fixture("ds-tiny-27l", MlaForm::Split)).unwrap();
    let Net::Deepseek2(d) = &m.net else { panic!("expected deepseek2") };
    assert_eq!(d.w.derived_bytes(), 27 * 8 * (64 + 64) * 128 * 2, "attn_kv_b rebuilt from the split form");
}

#[test]
fn ppl_mla0_fa_off_matches_reference() {
    let m = Arc::new(Model::open(&fixture("ds-tiny-27l", MlaForm::KvB)).unwrap());
    check_against("ppl_mla0_fa_off", &perplexity(&m, false, 128, n_chunks()), 3e-3);
}

/// With FA on, the reference has no iqk flash-attention kernel for this fixture's head sizes (d_k 96, d_v 64;
/// iqk has 192/128 for real DeepSeek files) and falls back to ggml's generic FA kernel (f16 V accumulation),
/// which moves its own perplexity by up to 0.3 % against its FA-off run. Our FA path mirrors iqk (f32
/// accumulation). On this random 27-layer MoE model rounding differences flip near-tied expert choices, so
/// our own FA-on and FA-off runs also differ by up to 0.3 % per chunk: checked at 0.6 % against the
/// reference's FA-off numbers and 1 % against its FA-on numbers (final PPL: 0.30 % from both).
#[test]
fn ppl_mla0_fa_on_matches_reference() {
    let m = Arc::new(Model::open(&fixture("ds-tiny-27l", MlaForm::KvB)).unwrap());
    let ours = perplexity(&m, true, 128, n_chunks());
    check_against("ppl_mla0_fa_off", &ours, 6e-3);
    check_against("ppl_mla0_fa_on", &ours, 1e-2);
}

/// The split `attn_k_b`/`attn_v_b` file (attn_kv_b rebuilt at load, exact for F16) gives the same numbers.
#[test]
fn split_form_matches_kv_b_form() {
    let n = n_chunks().min(2);
    let a = perplexity(&Arc::new(Model::open(&fixture("ds-tiny-27l", MlaForm::KvB)).unwrap()), true, 128, n);
    let b = perplexity(&Arc::new(Model::open(&fixture("ds-tiny-27l", MlaForm::Split)).unwrap()), true, 128, n);
    for (x, y) in a.iter().zip(&b) {
        eprintln!("kv_b form {x:.4} split form {y:.4}");
        assert!((x / y - 1.0).abs() < 1e-6, "{x} vs {y}");
    }
}

/// The 4-layer ds-tiny loads and runs; a prompt decoded in one batch, in ubatches, and token by token gives
/// the same last-token logits; two sequences in one batch see only themselves.
#[test]
fn ds_tiny_batch_split_and_incremental_agree() {
    let model = Arc::new(Model::open(&fixture("ds-tiny", MlaForm::KvB)).unwrap());
    let toks: Vec<u32> = (0..20u32).map(|i| 1 + (i * 7919) % 31999).collect();
    let pos: Vec<i32> = (0..20).collect();
    let seq = vec![0i32; 20];
    for fa in [false, true] {
        let mut a = ctx(&model, 64, 32, 32, fa);
        let full = a.decode(&toks, &pos, &seq, &[19]).unwrap().to_vec();
        assert!(full.iter().all(|x| x.is_finite()));
        let mut b = ctx(&model, 64, 32, 7, fa);
        let split = b.decode(&toks, &pos, &seq, &[19]).unwrap().to_vec();
        let mut c = ctx(&model, 64, 32, 32, fa);
        let mut last = Vec::new();
        for i in 0..20 {
            last = c.decode(&toks[i..=i], &pos[i..=i], &seq[i..=i], &[0]).unwrap().to_vec();
        }
        let md = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        eprintln!("fa {fa}: max |Δlogit| full vs ubatch 7: {:.2e}, full vs incremental: {:.2e}", md(&full, &split), md(&full, &last));
        assert!(md(&full, &split) < 2e-3 && md(&full, &last) < 2e-3);
        let mut d = ctx(&model, 64, 64, 64, fa);
        let toks2: Vec<u32> = toks.iter().chain(toks.iter()).copied().collect();
        let pos2: Vec<i32> = pos.iter().chain(pos.iter()).copied().collect();
        let seq2: Vec<i32> = (0..40).map(|i: i32| i / 20).collect();
        let both = d.decode(&toks2, &pos2, &seq2, &[19, 39]).unwrap().to_vec();
        let nv = model.n_vocab();
        eprintln!("fa {fa}: two sequences vs alone: {:.2e} {:.2e}", md(&both[..nv], &full), md(&both[nv..], &full));
        // why 1e-2 with FA: the second sequence's cells span two FA tiles (different rounding than one tile),
        // and top-k expert routing of this random model turns rounding into small logit jumps
        let tol = if fa { 1e-2 } else { 2e-3 };
        assert!(md(&both[..nv], &full) < tol && md(&both[nv..], &full) < tol);
    }
}
