//! DeepSeek2 YaRN (spec/models.md §1.3, §3.4) against ik_llama.cpp 8337e4cd: the `ds-tiny-27l` fixture with
//! YaRN keys added (factor 40, original context 4096, `yarn_log_multiplier` 0.1, as DeepSeek-V3) so that the
//! rope frequencies mix interpolation and extrapolation, the rope attention factor cancels YaRN's magnitude
//! term and the softmax scale carries `mscale²`. Goldens: `fixtures/golden/ds-tiny-27l-yarn-ppl.json`
//! (`llama-perplexity -c 128 -b 128 -t 2 -mla 0 -fa off|on` on `fixtures/text/declaration.txt`).
//! Also checks the derived constants and that the same weights without YaRN give different numbers.

use std::path::PathBuf;
use std::sync::Arc;

use ikl_core::context::{Context, ContextParams, FlashAttn};
use ikl_core::fixtures::{write_model_with, FixtureOptions};
use ikl_core::gguf::Value;
use ikl_core::model::{Model, Net};
use serde_json::Value as Json;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yarn_kv() -> Vec<(String, Value)> {
    vec![
        ("deepseek2.rope.scaling.type".into(), Value::str("yarn")),
        ("deepseek2.rope.scaling.factor".into(), Value::F32(40.0)),
        ("deepseek2.rope.scaling.original_context_length".into(), Value::U32(4096)),
        ("deepseek2.rope.scaling.yarn_log_multiplier".into(), Value::F32(0.1)),
    ]
}

/// `ds-tiny-27l` F16 with the YaRN keys, generated once per build.
fn fixture() -> String {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ds-tiny-27l-yarn-f16.gguf");
    if !path.exists() {
        let o = FixtureOptions { vocab_dir: root().join("node_modules/@lenml"), ..FixtureOptions::default() };
        write_model_with("ds-tiny-27l", &o, &yarn_kv(), path.to_str().unwrap()).unwrap();
    }
    path.to_str().unwrap().to_string()
}

fn json(name: &str) -> Json {
    serde_json::from_str(&std::fs::read_to_string(root().join("fixtures/golden").join(name)).unwrap()).unwrap()
}

/// ik perplexity over the first `n_chunk` chunks of 128 tokens (BOS first, second half scored).
fn perplexity(model: &Arc<Model>, fa: bool, n_chunk: usize) -> Vec<f64> {
    let tokens: Vec<u32> = json("ds-tiny-27l-ppl.json")["tokens"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let n_ctx = 128;
    let flash_attn = if fa { FlashAttn::On } else { FlashAttn::Off };
    let p = ContextParams { n_ctx, n_batch: n_ctx, n_ubatch: n_ctx, threads: 2, flash_attn, ..ContextParams::default() };
    let mut c = Context::new(model.clone(), p).unwrap();
    let pos: Vec<i32> = (0..n_ctx as i32).collect();
    let (mut nll, mut count, mut out, mut ppl) = (0.0f64, 0usize, vec![0.0f64; n_ctx], Vec::new());
    for ch in 0..n_chunk {
        let mut toks = tokens[ch * n_ctx..(ch + 1) * n_ctx].to_vec();
        let targets: Vec<i32> = (0..n_ctx).map(|j| if j >= n_ctx / 2 && j + 1 < n_ctx { toks[j + 1] as i32 } else { -1 }).collect();
        toks[0] = 1;
        c.kv_clear();
        c.score(&toks, &pos, &vec![0; n_ctx], &targets, &mut out).unwrap();
        for &lp in &out[n_ctx / 2..n_ctx - 1] {
            nll -= lp;
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
        3
    }
}

#[test]
fn yarn_constants() {
    let m = Model::open(&fixture()).unwrap();
    let Net::Deepseek2(d) = &m.net else { panic!("expected deepseek2") };
    let hp = &d.hp;
    assert_eq!((hp.rope_scaling.as_str(), hp.n_ctx_orig), ("yarn", 4096));
    assert!((hp.rope_freq_scale - 1.0 / 40.0).abs() < 1e-9);
    // mscale = 1 + 0.1·ln 40; kq_scale = mscale² / sqrt(d_k = 96); rope attention factor 1 / (1 + 0.1·ln 40)
    let mscale = 1.0 + 0.1 * 40f64.ln();
    assert!((hp.kq_scale() as f64 - mscale * mscale / 96f64.sqrt()).abs() < 1e-6);
    let r = hp.rope();
    assert!((r.attn_factor as f64 - 1.0 / mscale).abs() < 1e-6 && r.ext_factor == 1.0);
}

/// Per-chunk running PPL within 0.3 % of the reference's (FA off: same accumulation order as ours; FA on: the
/// reference's generic ggml FA kernel for these head sizes, see deepseek2_forward.rs, hence 1 %).
#[test]
fn yarn_ppl_matches_reference() {
    let m = Arc::new(Model::open(&fixture()).unwrap());
    let g = json("ds-tiny-27l-yarn-ppl.json");
    for (fa, key, tol) in [(false, "ppl_mla0_fa_off", 3e-3), (true, "ppl_mla0_fa_on", 1e-2)] {
        let ours = perplexity(&m, fa, n_chunks());
        let want: Vec<f64> = g[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        for (ch, (&p, &w)) in ours.iter().zip(&want).enumerate() {
            eprintln!("{key} chunk {}: ppl {p:.4} reference {w:.4} (rel diff {:.2e})", ch + 1, (p / w - 1.0).abs());
            assert!((p / w - 1.0).abs() < tol, "{key} chunk {} ppl {p} vs reference {w}", ch + 1);
        }
    }
    // the YaRN keys matter: without them the same weights give other numbers (first chunk)
    let plain = json("ds-tiny-27l-ppl.json")["ppl_mla0_fa_off"][0].as_f64().unwrap();
    let ours = perplexity(&m, false, 1)[0];
    assert!((ours / plain - 1.0).abs() > 1e-2, "YaRN changed nothing: {ours} vs {plain}");
}
