//! DeepSeek2 MoE routing and execution choices (spec/models.md §3.6, §3.7, §7.1, §7.2):
//! * group-limited routing (`-ger`, DeepSeek-V3 semantics) against a brute-force implementation;
//! * smart expert reduction (`-ser Kmin,t`) selection semantics, and its effect on a model: `Kmin = n_used`
//!   is bit-identical to off, dropping experts moves the log-probabilities further the more it drops;
//! * fused (`-fmoe`, default) and unfused (`-no-fmoe`, the reference's op sequence) experts agree;
//! * the whole block (router, selection, weights, experts, shared expert) against a dense f64 evaluation;
//! * `-ger` on the `ds-tiny` fixture with group keys added changes routing; without keys it is a no-op;
//!   group keys that do not fit the experts are refused at context creation, only when `-ger` asks for them.

use std::path::PathBuf;
use std::sync::Arc;

use ikl_core::context::{Context, ContextParams, FlashAttn};
use ikl_core::fixtures::{write_model_with, FixtureOptions};
use ikl_core::gguf::Value;
use ikl_core::model::blocks::moe::{select, DROPPED};
use ikl_core::model::{Model, Net};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `ds-tiny` F16 (8 experts, 2 used, softmax gating) with extra metadata, generated once per build.
fn fixture(tag: &str, extra: &[(String, Value)]) -> String {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ds-tiny-moe-{tag}-f16.gguf"));
    if !path.exists() {
        let o = FixtureOptions { vocab_dir: root().join("node_modules/@lenml"), ..FixtureOptions::default() };
        write_model_with("ds-tiny", &o, extra, path.to_str().unwrap()).unwrap();
    }
    path.to_str().unwrap().to_string()
}

fn groups_kv(n_group: u32, used: u32) -> Vec<(String, Value)> {
    vec![
        ("deepseek2.expert_group_count".to_string(), Value::U32(n_group)),
        ("deepseek2.expert_group_used_count".to_string(), Value::U32(used)),
    ]
}

/// Deterministic scores in (0, 1) (xorshift), distinct with overwhelming probability.
fn scores(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 + 0.5) / (1u64 << 24) as f32
        })
        .collect()
}

/// All `r`-subsets of `0..n`.
fn combinations(n: usize, r: usize) -> Vec<Vec<usize>> {
    if r == 0 {
        return vec![vec![]];
    }
    if n < r {
        return vec![];
    }
    let mut out = combinations(n - 1, r);
    for mut c in combinations(n - 1, r - 1) {
        c.push(n - 1);
        out.push(c);
    }
    out
}

/// Brute force: the group subset of size `used` with the largest total group score (group score = sum of the
/// group's two best scores), then a full sort of the experts in those groups.
fn brute_force(score: &[f32], n_group: usize, used: usize, k: usize) -> Vec<usize> {
    let per = score.len() / n_group;
    let gs: Vec<f32> = (0..n_group)
        .map(|g| {
            let mut v = score[g * per..(g + 1) * per].to_vec();
            v.sort_by(|a, b| b.partial_cmp(a).unwrap());
            v.iter().take(2).sum()
        })
        .collect();
    let best = combinations(n_group, used)
        .into_iter()
        .max_by(|a, b| {
            let (sa, sb): (f32, f32) = (a.iter().map(|&g| gs[g]).sum(), b.iter().map(|&g| gs[g]).sum());
            sa.partial_cmp(&sb).unwrap()
        })
        .unwrap();
    let mut cand: Vec<usize> = (0..score.len()).filter(|e| best.contains(&(e / per))).collect();
    cand.sort_by(|&a, &b| score[b].partial_cmp(&score[a]).unwrap().then(a.cmp(&b)));
    cand.truncate(k);
    cand
}

#[test]
fn grouped_selection_matches_brute_force() {
    // (experts, groups, groups used, k): V3 is (256, 8, 4, 8)
    let shapes = [(8, 4, 2, 2), (16, 4, 2, 4), (32, 8, 4, 8), (256, 8, 4, 8), (12, 3, 1, 3), (64, 8, 3, 6), (20, 5, 4, 7)];
    for &(ne, ng, used, k) in &shapes {
        let mut gscore = vec![0.0f32; ng];
        let mut sel = vec![0usize; k];
        for seed in 1..200u64 {
            let s = scores(seed * 7919 + ne as u64, ne);
            select(&s, Some((ng, used)), None, &mut gscore, &mut sel);
            assert_eq!(sel, brute_force(&s, ng, used, k), "experts {ne} groups {ng}/{used} k {k} seed {seed}");
            // no groups: plain top-k over all experts
            select(&s, None, None, &mut gscore, &mut sel);
            assert_eq!(sel, brute_force(&s, 1, 1, k), "ungrouped, experts {ne} k {k} seed {seed}");
        }
    }
}

#[test]
fn ser_selection_semantics() {
    let (ne, k) = (32, 8);
    let mut g = vec![0.0f32; 1];
    let (mut plain, mut sel) = (vec![0usize; k], vec![0usize; k]);
    for seed in 1..100u64 {
        let s = scores(seed, ne);
        select(&s, None, None, &mut g, &mut plain);
        // Kmin ≥ k: nothing can be dropped
        select(&s, None, Some((k, 1.0)), &mut g, &mut sel);
        assert_eq!(sel, plain);
        // t = 1: exactly Kmin experts remain (the others score below the best)
        select(&s, None, Some((3, 1.0)), &mut g, &mut sel);
        assert_eq!(&sel[..3], &plain[..3]);
        assert!(sel[3..].iter().all(|&e| e == DROPPED));
        // t = 0.6: slot j ≥ Kmin dropped exactly when its score is below 0.6 × the best
        select(&s, None, Some((2, 0.6)), &mut g, &mut sel);
        for j in 0..k {
            let drop = j >= 2 && s[plain[j]] < 0.6 * s[plain[0]];
            assert_eq!(sel[j], if drop { DROPPED } else { plain[j] }, "seed {seed} slot {j}");
        }
    }
}

fn params(fused: bool, ser: (i32, f32), grouped: bool) -> ContextParams {
    ContextParams {
        n_ctx: 128,
        n_batch: 128,
        n_ubatch: 128,
        threads: 2,
        flash_attn: FlashAttn::Off,
        fused_moe: fused,
        ser,
        grouped_experts: grouped,
        ..ContextParams::default()
    }
}

/// Per-position log-probabilities of the next token over 128 tokens of `fixtures/golden` text.
fn logprobs(model: &Arc<Model>, p: ContextParams) -> Vec<f64> {
    let s = std::fs::read_to_string(root().join("fixtures/golden/ds-tiny-27l-ppl.json")).unwrap();
    let g: serde_json::Value = serde_json::from_str(&s).unwrap();
    let toks: Vec<u32> = g["tokens"].as_array().unwrap().iter().take(128).map(|v| v.as_u64().unwrap() as u32).collect();
    let n = toks.len();
    let targets: Vec<i32> = (0..n).map(|j| if j + 1 < n { toks[j + 1] as i32 } else { -1 }).collect();
    let pos: Vec<i32> = (0..n as i32).collect();
    let mut c = Context::new(model.clone(), p).unwrap();
    let mut out = vec![0.0f64; n];
    c.score(&toks, &pos, &vec![0; n], &targets, &mut out).unwrap();
    out.truncate(n - 1);
    out
}

fn mean_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64
}

#[test]
fn fused_and_unfused_agree_and_ser_moves_results() {
    let model = Arc::new(Model::open(&fixture("plain", &[])).unwrap());
    let Net::Deepseek2(d) = &model.net else { panic!("expected deepseek2") };
    let k = d.hp.n_expert_used as i32;
    assert_eq!((d.hp.n_expert, k), (8, 2));
    let base = logprobs(&model, params(true, (-1, 0.0), false));
    let unfused = logprobs(&model, params(false, (-1, 0.0), false));
    let diff = base.iter().zip(&unfused).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    eprintln!("fused vs unfused: max |Δ log p| {diff:.2e}");
    assert!(diff < 1e-5, "fused and unfused MoE differ by {diff}");
    // Kmin = n_used: nothing can be dropped → identical
    assert_eq!(logprobs(&model, params(true, (k, 0.9), false)), base);
    // more dropping (higher t) → further from the full-k results
    let mut last = 0.0;
    for t in [0.3f32, 0.6, 1.0] {
        for fused in [true, false] {
            let lp = logprobs(&model, params(fused, (1, t), false));
            let dev = mean_abs_diff(&lp, &base);
            eprintln!("-ser 1,{t} fused {fused}: mean |Δ log p| vs full top-{k} {dev:.4}");
            assert!(dev > last, "-ser 1,{t}: deviation {dev} not above {last}");
            if !fused {
                last = dev;
            }
        }
    }
}

#[test]
fn grouped_routing_on_a_model() {
    let plain = Arc::new(Model::open(&fixture("plain", &[])).unwrap());
    let base = logprobs(&plain, params(true, (-1, 0.0), false));
    // no group keys in the file: -ger is a no-op
    assert_eq!(logprobs(&plain, params(true, (-1, 0.0), true)), base);
    let grouped = Arc::new(Model::open(&fixture("g4u2", &groups_kv(4, 2))).unwrap());
    let Net::Deepseek2(d) = &grouped.net else { panic!("expected deepseek2") };
    assert_eq!((d.hp.n_expert_groups, d.hp.n_group_used), (4, 2));
    // keys present, -ger off (the default, as the reference): identical to the plain file
    assert_eq!(logprobs(&grouped, params(true, (-1, 0.0), false)), base);
    let on = logprobs(&grouped, params(true, (-1, 0.0), true));
    let on_unfused = logprobs(&grouped, params(false, (-1, 0.0), true));
    let dev = mean_abs_diff(&on, &base);
    eprintln!("-ger with 4 groups / 2 used: mean |Δ log p| vs ungrouped {dev:.4}");
    assert!(dev > 1e-4, "group limiting changed nothing");
    assert!(mean_abs_diff(&on, &on_unfused) < 1e-6);
    // 3 groups do not divide 8 experts: refused with -ger, loads and runs without it
    let bad = Arc::new(Model::open(&fixture("g3u1", &groups_kv(3, 1))).unwrap());
    let e = Context::new(bad.clone(), params(true, (-1, 0.0), true)).err().expect("-ger with 3 groups of 8 experts must be refused");
    assert!(e.to_string().contains("expert_group_count 3"), "{e}");
    assert_eq!(logprobs(&bad, params(true, (-1, 0.0), false)), base);
}

// ---------------------------------------------------------------------------------------------------------
// The whole block against a dense f64 evaluation (F32 weights, so only summation order differs).

mod block {
    use ikl_core::cpu::ops::QMatrix;
    use ikl_core::cpu::pool::ThreadPool;
    use ikl_core::model::blocks::moe::{select, Gating, Moe, MoeParams, MoeScratch, Routing, DROPPED};
    use ikl_core::quant::QType;

    use super::scores;

    /// An F32 matrix `[ne0, ne1]` (row-major rows of ne0) with deterministic values of scale `s`, kept alive for the test.
    fn mat(seed: u64, ne0: usize, ne1: usize, s: f32) -> (QMatrix, Vec<f32>) {
        let v: Vec<f32> = scores(seed, ne0 * ne1).iter().map(|x| (x - 0.5) * 2.0 * s).collect();
        let bytes: &'static [u8] = Box::leak(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>().into_boxed_slice());
        (QMatrix::new(bytes, QType::F32, ne0, ne1).unwrap(), v)
    }

    fn dot(w: &[f32], row: usize, x: &[f64]) -> f64 {
        w[row * x.len()..(row + 1) * x.len()].iter().zip(x).map(|(&a, &b)| a as f64 * b).sum()
    }

    fn swiglu(g: &[f32], u: &[f32], dn: &[f32], ff: usize, x: &[f64]) -> Vec<f64> {
        let h: Vec<f64> = (0..ff)
            .map(|r| {
                let a = dot(g, r, x);
                a / (1.0 + (-a).exp()) * dot(u, r, x)
            })
            .collect();
        (0..x.len()).map(|r| dot(dn, r, &h)).collect()
    }

    #[test]
    fn moe_block_matches_dense_evaluation() {
        let (d, ff, ne, k, n) = (32usize, 16usize, 8usize, 3usize, 5usize);
        let r = Routing { n_expert: ne, n_used: k, n_group: 4, n_group_used: 2, n_ff_exp: ff };
        let (gate_inp, wr) = mat(1, d, ne, 0.5);
        let experts: Vec<_> =
            (0..ne).map(|e| (mat(100 + e as u64, d, ff, 0.3), mat(200 + e as u64, d, ff, 0.3), mat(300 + e as u64, ff, d, 0.3))).collect();
        let sh = (mat(7, d, ff, 0.3), mat(8, d, ff, 0.3), mat(9, ff, d, 0.3));
        let bias: Vec<f32> = scores(11, ne).iter().map(|x| (x - 0.5) * 0.2).collect();
        for (gating, w_norm, w_scale) in [(Gating::Sigmoid, true, 2.5f32), (Gating::Softmax, false, 1.0)] {
            let m = Moe {
                gate_inp,
                probs_b: Some(bias.clone()),
                gate: experts.iter().map(|e| e.0 .0).collect(),
                up: experts.iter().map(|e| e.1 .0).collect(),
                down: experts.iter().map(|e| e.2 .0).collect(),
                sh_gate: sh.0 .0,
                sh_up: sh.1 .0,
                sh_down: sh.2 .0,
                routing: r,
                gating,
                w_norm,
                w_scale,
            };
            let x: Vec<f32> = scores(42, n * d).iter().map(|v| (v - 0.5) * 4.0).collect();
            for p in [
                MoeParams::default(),
                MoeParams { fused: false, ..MoeParams::default() },
                MoeParams { grouped: true, ser: (1, 0.7), ..MoeParams::default() },
                MoeParams { fused: false, grouped: true, ser: (2, 0.9) },
            ] {
                let pool = ThreadPool::new(2);
                let mut s = MoeScratch::new(n, d, &r, ff, d * 4, &mut 0).unwrap();
                s.configure(p, &mut 0).unwrap();
                let (mut actq, mut out) = (vec![0u8; n * d * 4], vec![0f32; n * d]);
                m.forward(&pool, &x, n, &mut s, &mut actq, &mut out);
                for i in 0..n {
                    let xi: Vec<f64> = x[i * d..(i + 1) * d].iter().map(|&v| v as f64).collect();
                    let logits: Vec<f64> = (0..ne).map(|e| dot(&wr, e, &xi)).collect();
                    let probs: Vec<f64> = match gating {
                        Gating::Sigmoid => logits.iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect(),
                        Gating::Softmax => {
                            let mx = logits.iter().cloned().fold(f64::MIN, f64::max);
                            let z: f64 = logits.iter().map(|l| (l - mx).exp()).sum();
                            logits.iter().map(|l| (l - mx).exp() / z).collect()
                        }
                    };
                    let sc: Vec<f32> = (0..ne).map(|e| (probs[e] + bias[e] as f64) as f32).collect();
                    let mut sel = vec![0usize; k];
                    let groups = p.grouped.then_some((4, 2));
                    let ser = (p.ser.0 > 0).then_some((p.ser.0 as usize, p.ser.1));
                    select(&sc, groups, ser, &mut [0.0; 4], &mut sel);
                    let mut w: Vec<f64> = sel.iter().map(|&e| if e == DROPPED { 0.0 } else { probs[e] }).collect();
                    if w_norm {
                        let t: f64 = w.iter().sum();
                        w.iter_mut().for_each(|v| *v /= t);
                    }
                    w.iter_mut().for_each(|v| *v *= w_scale as f64);
                    let mut want = swiglu(&sh.0 .1, &sh.1 .1, &sh.2 .1, ff, &xi);
                    for (j, &e) in sel.iter().enumerate() {
                        if e != DROPPED {
                            let y = swiglu(&experts[e].0 .1, &experts[e].1 .1, &experts[e].2 .1, ff, &xi);
                            want.iter_mut().zip(&y).for_each(|(a, b)| *a += w[j] * b);
                        }
                    }
                    let err = want.iter().zip(&out[i * d..(i + 1) * d]).map(|(a, &b)| (a - b as f64).abs()).fold(0.0, f64::max);
                    assert!(err < 1e-4, "{gating:?} {p:?} token {i}: max error {err}");
                }
            }
        }
    }
}
