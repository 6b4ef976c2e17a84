//! Absorbed MLA attention (`-mla 1|2|3`, spec/models.md §4) over the latent cache (kv/mla.rs):
//! * `ds-tiny-27l` F16 perplexities in every mode × `-fa` against ik_llama.cpp 8337e4cd (`llama-perplexity -c 128
//!   -b 128 -t 2 -mla M -fa F`, fixtures/golden/ds-tiny-27l-ppl.json);
//! * the `ds-tiny` matrix: modes 0–3 × FA on/off × `-ctk` f16/q8_0 give perplexities within 0.2 % of mode 0 /
//!   f16 / no FA (1 % for q8_0) and identical greedy tokens across the f16 variants; `-amb` changes nothing
//!   (bit-identical, at a size where it splits); the split `attn_k_b`/`attn_v_b` form gives the `attn_kv_b` form's perplexity;
//! * printed cache sizes equal the §4.7 formulas.
//!
//! Heavy parts run fewer chunks in debug builds.

use std::path::PathBuf;
use std::sync::Arc;

use ikl_core::context::{Context, ContextParams, FlashAttn};
use ikl_core::fixtures::{write_model, FixtureOptions, MlaForm};
use ikl_core::kv::mla::layer_bytes_per_token;
use ikl_core::model::deepseek2::Weights;
use ikl_core::model::{Model, Net};
use ikl_core::quant::QType;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An F16 fixture, generated once per build into the target's tmp dir.
fn fixture(name: &str, form: MlaForm) -> String {
    let tag = if matches!(form, MlaForm::Split) { "split" } else { "kvb" };
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

#[derive(Clone, Copy, Debug)]
struct Cfg {
    mla: u8,
    fa: bool,
    ctk: QType,
    amb: usize,
    fmoe: bool,
}

impl Cfg {
    fn new(mla: u8, fa: bool, ctk: QType, amb: usize) -> Cfg {
        Cfg { mla, fa, ctk, amb, fmoe: true }
    }
}

fn params(c: Cfg, n_ctx: usize, n_ubatch: usize) -> ContextParams {
    ContextParams {
        n_ctx,
        n_batch: n_ctx,
        n_ubatch,
        threads: 2,
        flash_attn: if c.fa { FlashAttn::On } else { FlashAttn::Off },
        type_k: c.ctk,
        type_v: if c.fa { c.ctk } else { QType::F16 },
        mla: c.mla,
        amb: c.amb,
        fused_moe: c.fmoe,
        ..ContextParams::default()
    }
}

/// ik perplexity over the golden tokens: chunks of n_ctx with BOS first, second half scored; running PPL.
fn perplexity(model: &Arc<Model>, c: Cfg, n_ctx: usize, n_ubatch: usize, n_chunk: usize) -> Vec<f64> {
    let g = golden();
    let tokens: Vec<u32> = g["tokens"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let mut ctx = Context::new(model.clone(), params(c, n_ctx, n_ubatch)).unwrap();
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
        ctx.kv_clear();
        ctx.score(&toks, &pos, &seq, &targets, &mut out).unwrap();
        for j in first..n_ctx - 1 {
            nll -= out[j];
            count += 1;
        }
        ppl.push((nll / count as f64).exp());
    }
    ppl
}

/// Greedy continuation of a prompt, token by token.
fn greedy(model: &Arc<Model>, c: Cfg, n_gen: usize) -> Vec<u32> {
    let mut ctx = Context::new(model.clone(), params(c, 64, 32)).unwrap();
    let prompt: Vec<u32> = (0..12u32).map(|i| 1 + (i * 7919) % 31999).collect();
    let pos: Vec<i32> = (0..prompt.len() as i32).collect();
    let mut logits = ctx.decode(&prompt, &pos, &vec![0; prompt.len()], &[prompt.len() as i32 - 1]).unwrap().to_vec();
    let mut out = Vec::new();
    for i in 0..n_gen {
        let t = logits.iter().enumerate().fold((0, f32::MIN), |b, (j, &x)| if x > b.1 { (j, x) } else { b }).0 as u32;
        out.push(t);
        logits = ctx.decode(&[t], &[(prompt.len() + i) as i32], &[0], &[0]).unwrap().to_vec();
    }
    out
}

fn release() -> bool {
    !cfg!(debug_assertions)
}

/// Our modes on ds-tiny-27l against the reference's numbers (final running PPL over 6 chunks, 1 in debug
/// builds). Modes 2 and 3 take the same paths here (FA off: absorbed non-FA; FA on at -b 128: materialised), as
/// in the reference (its mla2/mla3 numbers are identical), so mode 2 is checked through mode 3. FA off: 0.3 %
/// against the same mode. FA on: mode 1 (absorbed FA) 0.3 % against the reference's FA-off number and 0.6 %
/// against its mode 1 FA-on one (measured 0.34 % on chunk 1 since the f32-activation F16 kernels); mode 3
/// (materialised) 0.3 % against the reference's FA-off numbers and 0.6 % against its FA-on ones — the reference
/// has no iqk FA kernel for this fixture's head sizes (d_k 96, d_v 64) and falls back to ggml's generic kernel
/// with f16 V accumulation, which moves its own FA-on perplexity by up to 0.3 % (see deepseek2_forward.rs).
/// (mode, FA, [(reference key, tolerance)]).
type Check = (u8, bool, &'static [(&'static str, f64)]);

#[test]
fn ds_tiny_27l_modes_match_reference() {
    let m = Arc::new(Model::open(&fixture("ds-tiny-27l", MlaForm::KvB)).unwrap());
    let n = if release() { 6 } else { 1 };
    let g = golden();
    let want = |key: &str| g[key].as_array().unwrap()[n - 1].as_f64().unwrap();
    let checks: [Check; 4] = [
        (1, false, &[("ppl_mla1_fa_off", 3e-3)]),
        (1, true, &[("ppl_mla1_fa_off", 3e-3), ("ppl_mla1_fa_on", 6e-3)]),
        (3, false, &[("ppl_mla3_fa_off", 3e-3), ("ppl_mla2_fa_off", 3e-3)]),
        (3, true, &[("ppl_mla3_fa_off", 3e-3), ("ppl_mla3_fa_on", 6e-3), ("ppl_mla2_fa_on", 6e-3)]),
    ];
    for (mla, fa, refs) in checks {
        let ours = perplexity(&m, Cfg::new(mla, fa, QType::F16, 0), 128, 128, n);
        for (ch, p) in ours.iter().enumerate() {
            eprintln!("mla {mla} fa {fa} chunk {}: ppl {p:.4}", ch + 1);
        }
        for &(key, tol) in refs {
            // Chunk 1 alone scores 63 tokens: there the reference's own variants spread 0.4 % (mla0 vs mla1,
            // FA off), so the unoptimised-profile run (1 chunk) doubles the bounds.
            let tol = if n == 1 { 2.0 * tol } else { tol };
            let (p, w) = (ours[n - 1], want(key));
            eprintln!("mla {mla} fa {fa}: {p:.4} vs reference {key} {w:.4} (rel {:.2e}, tol {tol})", (p / w - 1.0).abs());
            assert!((p / w - 1.0).abs() < tol, "mla {mla} fa {fa}: {p} vs {key} {w}");
        }
    }
}

/// Issue #4's matrix on one model: every mode × FA × cache type × fused/unfused MoE × `-amb` 0/`amb` against mode 0 /
/// f16 / no FA / fused: perplexity within 0.2 % (`q8_tol` for q8_0 caches), greedy tokens identical for the f16
/// variants.
fn mode_matrix(m: &Arc<Model>, n_ctx: usize, n_chunk: usize, amb: usize, q8_tol: f64) {
    let base_cfg = Cfg::new(0, false, QType::F16, 0);
    let base = perplexity(m, base_cfg, n_ctx, n_ctx, n_chunk);
    let base_tokens = greedy(m, base_cfg, 8);
    for mla in 0..=3u8 {
        for fa in [false, true] {
            for ctk in [QType::F16, QType::Q8_0] {
                for (fmoe, amb) in [(true, 0), (false, 0), (true, amb)] {
                    let c = Cfg { mla, fa, ctk, amb, fmoe };
                    let p = perplexity(m, c, n_ctx, n_ctx, n_chunk);
                    let tol = if ctk == QType::F16 { 2e-3 } else { q8_tol };
                    let d = (p[n_chunk - 1] / base[n_chunk - 1] - 1.0).abs();
                    eprintln!("{c:?}: ppl {:.4} vs base {:.4} (rel {d:.2e})", p[n_chunk - 1], base[n_chunk - 1]);
                    assert!(d < tol, "{c:?}: {} vs {}", p[n_chunk - 1], base[n_chunk - 1]);
                    if ctk == QType::F16 {
                        assert_eq!(greedy(m, c, 8), base_tokens, "{c:?} greedy tokens");
                    }
                }
            }
        }
    }
}

/// The matrix on the 4-layer ds-tiny (`-amb 1`: at -c 128 it leaves the heads whole; `amb_changes_nothing`
/// covers a size where it splits them).
#[test]
fn ds_tiny_matrix() {
    let m = Arc::new(Model::open(&fixture("ds-tiny", MlaForm::KvB)).unwrap());
    mode_matrix(&m, 128, 1, 1, 1e-2);
}

/// Opt-in (`IKL_MODELS_DIR` holding `ds-mini-f16.gguf` / `ds-mini-128h-f16.gguf`, e.g. `.cache/models`): the same
/// matrix on the larger fixtures, 2 chunks of 128, `-amb 1` (which splits their heads at this size). q8_0 caches
/// within 4 %: on these random-weight models (PPL ≈ 9e6, a nearly flat distribution) the reference's own q8_0
/// cache moves its perplexity by 1.5–2.8 % (ds-mini, `-c 128 --chunks 2` on declaration.txt: mla 0 fa off +2.8 %,
/// mla 1 fa off −1.9 %, mla 3 fa on +1.5 % against its f16 cache), so 1 % is not a property any implementation has
/// here. Measured with `ikl perplexity` on the same text: ours vs the reference's q8_0 numbers +0.6 % (mla 0),
/// −2.9 % (mla 1 fa off: its K·Q over the q8_0 latent goes through the large-batch Q8_0_R8 path), −0.02 % (mla 3
/// fa on, measured while the materialised K/V rows were still q8_0; they are f32 now).
#[test]
fn ds_mini_matrix() {
    let Some(dir) = std::env::var_os("IKL_MODELS_DIR") else {
        eprintln!("skipped: set IKL_MODELS_DIR (a folder with ds-mini-f16.gguf, ds-mini-128h-f16.gguf)");
        return;
    };
    for name in ["ds-mini", "ds-mini-128h"] {
        let path = PathBuf::from(&dir).join(format!("{name}-f16.gguf"));
        if !path.exists() {
            eprintln!("{name}: {} not found, skipped", path.display());
            continue;
        }
        eprintln!("== {name}");
        let m = Arc::new(Model::open(path.to_str().unwrap()).unwrap());
        mode_matrix(&m, 128, 2, 1, 4e-2);
    }
}

/// Logits of every position of one 128-token chunk (the golden tokens, BOS first) under `c` with `n_ubatch`.
fn chunk_logits(model: &Arc<Model>, c: Cfg, n_ubatch: usize) -> (Vec<f32>, usize) {
    let g = golden();
    let n = 128;
    let mut toks: Vec<u32> = g["tokens"].as_array().unwrap()[..n].iter().map(|v| v.as_u64().unwrap() as u32).collect();
    toks[0] = 1;
    let mut ctx = Context::new(model.clone(), params(c, n, n_ubatch)).unwrap();
    let pos: Vec<i32> = (0..n as i32).collect();
    let l = ctx.decode(&toks, &pos, &vec![0; n], &pos).unwrap().to_vec();
    let nv = l.len() / n;
    (l, nv)
}

/// Issue #4 regression: the materialised prompt path (modes 2/3, FA, ubatch ≥ 128) expands the cached latents
/// to K/V rows in f32, so it computes the absorbed attention over the same latents up to summation order. With
/// K/V rows rounded to the cache type (f16) a second time it drifted (ds-tiny: largest per-position KLD against
/// the absorbed path 2.0e-7 instead of 3.8e-9; ds-mini: median KLD vs mode 0 1.3e-3 instead of 3.8e-7).
#[test]
fn materialised_path_matches_absorbed() {
    let m = Arc::new(Model::open(&fixture("ds-tiny", MlaForm::KvB)).unwrap());
    let (a, nv) = chunk_logits(&m, Cfg::new(3, true, QType::F16, 0), 64); // absorbed FA
    let (b, _) = chunk_logits(&m, Cfg::new(3, true, QType::F16, 0), 128); // materialised
    let lsm = |x: &[f32]| {
        let mx = x.iter().fold(f32::MIN, |m, &v| m.max(v)) as f64;
        let s: f64 = x.iter().map(|&v| (v as f64 - mx).exp()).sum();
        x.iter().map(|&v| v as f64 - mx - s.ln()).collect::<Vec<f64>>()
    };
    let mut worst = 0.0f64;
    for (x, y) in a.chunks(nv).zip(b.chunks(nv)) {
        let (p, q) = (lsm(x), lsm(y));
        worst = worst.max(p.iter().zip(&q).map(|(lp, lq)| lp.exp() * (lp - lq)).sum::<f64>());
    }
    eprintln!("largest per-position KLD, materialised vs absorbed: {worst:.3e}");
    assert!(worst < 2e-8, "materialised path drifts from the absorbed one: KLD {worst:.3e}");
}

/// `-amb` only regroups heads: bit-identical results for the absorbed non-FA path (mode 1 no FA, mode 2 with
/// FA at small batches) and the materialised path (modes 2/3, FA, ubatch ≥ 128), at a size where it splits.
#[test]
fn amb_changes_nothing() {
    let m = Arc::new(Model::open(&fixture("ds-tiny", MlaForm::KvB)).unwrap());
    let n_ctx = 512; // the smallest size at which amb 1 splits the materialised heads of ds-tiny
    for (mla, fa) in [(1u8, false), (2, true), (3, true), (3, false)] {
        let a = perplexity(&m, Cfg::new(mla, fa, QType::F16, 0), n_ctx, n_ctx, 1);
        let b = perplexity(&m, Cfg::new(mla, fa, QType::F16, 1), n_ctx, n_ctx, 1);
        eprintln!("mla {mla} fa {fa}: amb 0 {:.6} amb 1 {:.6}", a[0], b[0]);
        assert_eq!(a, b, "mla {mla} fa {fa}");
        let ctx = Context::new(m.clone(), params(Cfg::new(mla, fa, QType::F16, 1), n_ctx, n_ctx)).unwrap();
        if mla == 1 || !fa {
            assert!(ctx.kv.head_chunk < ctx.kv.n_head, "amb 1 must split the heads at n_ctx {n_ctx}");
        } else {
            assert!(ctx.kv.mat.as_ref().unwrap().heads < ctx.kv.n_head, "amb 1 must split the materialised heads");
        }
    }
}

/// The split-tensor file (wk_b/wv_b from the file, attn_kv_b rebuilt) and the attn_kv_b file (wk_b/wv_b
/// derived) give the same perplexity in the absorbed modes (F16: both derivations are exact).
#[test]
fn split_form_matches_kv_b_form() {
    let a = Arc::new(Model::open(&fixture("ds-tiny", MlaForm::KvB)).unwrap());
    let b = Arc::new(Model::open(&fixture("ds-tiny", MlaForm::Split)).unwrap());
    for (mla, fa) in [(1u8, false), (1, true), (3, true)] {
        let c = Cfg::new(mla, fa, QType::F16, 0);
        let (x, y) = (perplexity(&a, c, 128, 128, 1)[0], perplexity(&b, c, 128, 128, 1)[0]);
        eprintln!("mla {mla} fa {fa}: kv_b form {x:.6} split form {y:.6}");
        assert!((x / y - 1.0).abs() < 1e-6, "{x} vs {y}");
    }
}

/// Cache bytes per token and the creation line follow §4.7 for every mode and type on a real context.
#[test]
fn cache_sizes_follow_formulas() {
    let m = Arc::new(Model::open(&fixture("ds-tiny", MlaForm::KvB)).unwrap());
    let Net::Deepseek2(d) = &m.net else { panic!("expected deepseek2") };
    let hp = &d.hp;
    let g = Weights::mla_geom(hp);
    for mla in 0..=3u8 {
        for fa in [false, true] {
            for ctk in [QType::F16, QType::BF16, QType::Q8_0] {
                let c = Cfg::new(mla, fa, ctk, 0);
                let ctx = match Context::new(m.clone(), params(c, 256, 64)) {
                    Ok(x) => x,
                    Err(e) => panic!("{c:?}: {e}"),
                };
                let want = if mla == 0 {
                    let k = ctk.row_size(hp.head_dim_k as u64).unwrap() as usize;
                    let v = if fa { ctk.row_size(hp.head_dim_v as u64).unwrap() as usize } else { hp.head_dim_v * 2 };
                    hp.n_layer * hp.n_head * (k + v)
                } else {
                    hp.n_layer * layer_bytes_per_token(&g, mla, fa, ctk, if fa { ctk } else { QType::F16 }).unwrap()
                };
                assert_eq!(ctx.kv.bytes_per_token(), want, "{c:?}");
                let line = ctx.kv_size_line();
                let mib = (want * 256) as f64 / 1048576.0;
                assert!(line.starts_with("llama_init_from_model: KV self size  =") && line.contains(&format!("{mib:7.2} MiB")), "{line}");
                if mla > 0 {
                    assert!(line.contains(&format!("c^KV ({})", ctk.name())), "{c:?}: {line}");
                }
            }
        }
    }
}
