//! CUDA backend parity (STYLE §1.11 `backend_parity`): every `mmv_<type>` kernel against the CPU scalar
//! reference (`Format::vec_dot` through the scalar kernel table), for single-token and batched activations,
//! with an NMSE bound; then whole models: the llama-tiny fixture (F16, and quantized to Q8_0/Q4_0) with every
//! weight on CUDA0 must give the CPU's perplexity and greedy top tokens.
//! Without a GPU (or without dist/ikl_kernels.fatbin) each test prints why it is SKIPPED and passes; with
//! IKL_REQUIRE_CUDA=1 (`make test-gpu`) a skip is a failure.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use ikl_core::context::{Context, ContextParams};
use ikl_core::cpu::ops::{self, QMatrix};
use ikl_core::cpu::pool::ThreadPool;
use ikl_core::cpu::tier::Tier;
use ikl_core::cuda::{self, Device, Placement};
use ikl_core::model::Model;
use ikl_core::quant::formats::lookup;
use ikl_core::quant::QType;

/// `true` when a GPU is usable; otherwise prints why this test is skipped (or fails under IKL_REQUIRE_CUDA=1).
fn gpu_or_skip(test: &str) -> bool {
    let why = match cuda::devices() {
        Ok(d) if d.is_empty() => "no CUDA device".to_string(),
        Ok(_) => match cuda::device::gpu(0) {
            Ok(_) => return true,
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    assert!(!cuda::require_cuda(), "{test}: IKL_REQUIRE_CUDA=1 but CUDA is unusable: {why}");
    // Straight to the process's stderr (not eprintln!, which libtest captures for passing tests): the skip is loud.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test} (no usable GPU; `make test-gpu` requires one): {why}");
    false
}

/// Deterministic values in [-1, 1) with a few larger outliers (xorshift).
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let v = (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            if i % 97 == 0 {
                v * 4.0
            } else {
                v
            }
        })
        .collect()
}

fn nmse(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|&y| (y as f64).powi(2)).sum();
    num / den.max(1e-30)
}

const TYPES: &[QType] = &[
    QType::F32,
    QType::F16,
    QType::BF16,
    QType::Q8_0,
    QType::Q4_0,
    QType::Q4_1,
    QType::Q5_0,
    QType::Q5_1,
    QType::Q6_0,
    QType::IQ4_NL,
    QType::Q4_K,
    QType::Q6_K,
    QType::IQ4_XS,
];

#[test]
fn mmv_kernels_match_cpu_scalar_reference() {
    if !gpu_or_skip("mmv_kernels_match_cpu_scalar_reference") {
        return;
    }
    let pool = ThreadPool::new(2);
    // (row length, weight rows, activation rows): decode (1), odd small batches, > MMV_NY, > MMV_ROWS tails
    let shapes = [(512usize, 67usize, 1usize), (1024, 33, 3), (256, 130, 8), (768, 45, 13), (2048, 9, 40)];
    let mut failures = Vec::new();
    for &q in TYPES {
        let f = lookup(q).unwrap();
        for (si, &(k, rows, ny)) in shapes.iter().enumerate() {
            let w32 = data(k * rows, 17 + si as u64);
            let rb = q.row_size(k as u64).unwrap() as usize;
            let mut wq = vec![0u8; rb * rows];
            (f.quantize.unwrap())(&w32, &mut wq, k, None);
            let wq: &'static [u8] = Box::leak(wq.into_boxed_slice());
            let m = QMatrix::new(wq, q, k, rows).unwrap();
            let scalar = m.with_tier(Tier::Scalar).unwrap();
            let x = data(k * ny, 1000 + si as u64);
            let mut xq = vec![0u8; ny * m.act_row_bytes];
            let xq = ops::quantize_act(&pool, &scalar, &x, ny, &mut xq).to_vec();
            let mut want = vec![0.0f32; ny * rows];
            ops::matmul_q(&pool, &scalar, &xq, ny, &mut want);
            let mut mg = m;
            let buf = cuda::upload(0, &mut mg).unwrap();
            assert!(buf.is_some(), "no CUDA kernel {} in the fatbin", cuda::kernel_name(&m));
            let mut got = vec![f32::NAN; ny * rows];
            ops::matmul_q(&pool, &mg, &xq, ny, &mut got);
            let bad = got.iter().filter(|v| !v.is_finite()).count();
            let e = nmse(&got, &want);
            eprintln!("mmv {:>7} k={k:>4} rows={rows:>3} ny={ny:>2}: nmse {e:.2e}", q.name());
            // Bound: the GPU sums the same products in another order (~1e-13). Q4_1/Q5_1 pair with q8_1, whose
            // stored block sum d·Σq (f16) the CPU uses for the min term where the GPU sums the exact values: ~4e-7.
            let bound = if matches!(q, QType::Q4_1 | QType::Q5_1) { 2e-6 } else { 1e-9 };
            if bad > 0 || e.is_nan() || e >= bound {
                failures.push(format!(
                    "{} k={k} rows={rows} ny={ny}: nmse {e:.2e}, {bad} non-finite; got {:?} want {:?}",
                    q.name(),
                    &got[..4],
                    &want[..4]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases fail:\n{}", failures.len(), TYPES.len() * shapes.len(), failures.join("\n"));
}

/// Scratch files of these tests, resolved at run time (the binary also runs on the GPU machine).
fn tmp_dir() -> PathBuf {
    let d = std::env::temp_dir().join("ikl-cuda-tests");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The llama-tiny F16 fixture: IKL_CUDA_MODEL (the GPU machine has no vocab packages), else generated once.
fn llama_tiny() -> String {
    if let Ok(p) = std::env::var("IKL_CUDA_MODEL") {
        return p;
    }
    let path = tmp_dir().join("cuda-llama-tiny-f16.gguf");
    if !path.exists() {
        use ikl_core::fixtures::{write_model, FixtureOptions, FixtureType};
        let o = FixtureOptions { ftype: FixtureType::F16, vocab_dir: root().join("node_modules/@lenml"), ..FixtureOptions::default() };
        write_model("llama-tiny", &o, path.to_str().unwrap()).unwrap();
    }
    path.to_str().unwrap().to_string()
}

fn quantized(src: &str, q: QType) -> String {
    let dst = tmp_dir().join(format!("cuda-llama-tiny-{}.gguf", q.name()));
    if !dst.exists() {
        let pure = move |t: &ikl_core::gguf::TensorInfo| if t.n_dims >= 2 { q } else { t.qtype };
        let tmp = dst.with_extension("gguf.tmp");
        ikl_core::quantize::quantize_model(src, tmp.to_str().unwrap(), &pure, 2, None).unwrap();
        std::fs::rename(&tmp, &dst).unwrap();
    }
    dst.to_str().unwrap().to_string()
}

/// Every tensor of `path` except token_embd (the reference keeps the input layer on the CPU) on CUDA0.
fn full_offload(path: &str) -> Placement {
    let g = ikl_core::gguf::GgufModel::open(path).unwrap();
    let by_name = g.tensors.iter().filter(|t| t.name != "token_embd.weight").map(|t| (t.name.clone(), Device::Cuda(0))).collect();
    Placement { by_name }
}

/// Perplexity over the golden token stream (2 chunks of 128) and the greedy argmax at every scored position.
fn ppl(model: &Arc<Model>) -> (f64, Vec<usize>) {
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("fixtures/golden/llama-tiny-ppl.json")).unwrap()).unwrap();
    let tokens: Vec<u32> = g["tokens"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let n_ctx = 128;
    let p = ContextParams { n_ctx, n_batch: n_ctx, n_ubatch: n_ctx, threads: 2, ..ContextParams::default() };
    let mut c = Context::new(model.clone(), p).unwrap();
    let pos: Vec<i32> = (0..n_ctx as i32).collect();
    let seq = vec![0i32; n_ctx];
    let (mut nll, mut count, mut argmax) = (0.0f64, 0usize, Vec::new());
    let mut out = vec![0.0f64; n_ctx];
    for ch in 0..2 {
        let mut toks = tokens[ch * n_ctx..(ch + 1) * n_ctx].to_vec();
        toks[0] = 1;
        let targets: Vec<i32> = (0..n_ctx).map(|j| if j >= n_ctx / 2 && j + 1 < n_ctx { toks[j + 1] as i32 } else { -1 }).collect();
        c.kv_clear();
        c.score(&toks, &pos, &seq, &targets, &mut out).unwrap();
        for j in n_ctx / 2..n_ctx - 1 {
            nll -= out[j];
            count += 1;
        }
        c.kv_clear();
        let rows: Vec<i32> = (n_ctx as i32 / 2..n_ctx as i32).collect();
        let nv = c.n_vocab();
        let logits = c.decode(&toks, &pos, &seq, &rows).unwrap();
        for r in logits.chunks_exact(nv) {
            argmax.push(r.iter().enumerate().fold(0, |b, (i, &v)| if v > r[b] { i } else { b }));
        }
    }
    ((nll / count as f64).exp(), argmax)
}

#[test]
fn llama_tiny_full_offload_matches_cpu() {
    if !gpu_or_skip("llama_tiny_full_offload_matches_cpu") {
        return;
    }
    let f16 = llama_tiny();
    // Tolerances: F16 activations are f32 on both sides (only summation order differs). For Q8_0/Q4_0 the GPU
    // reproduces the scalar reference (nmse ~1e-14 above) while the CPU run uses its SIMD tier, whose q8 activation
    // rounding differs slightly; on this random-weight model (PPL ~1.6e6, near-flat logits) that moves PPL by
    // ~1e-3, so the bound is the 0.3 % (spec: full offload within 0.3 % of CPU-only).
    let cases = [("F16", f16.clone(), 1e-4), ("Q8_0", quantized(&f16, QType::Q8_0), 3e-3), ("Q4_0", quantized(&f16, QType::Q4_0), 3e-3)];
    for (name, path, tol) in cases {
        let cpu = Arc::new(Model::open(&path).unwrap());
        let gpu = Arc::new(Model::open_placed(&path, &Default::default(), &full_offload(&path)).unwrap());
        assert!(gpu.gpu.kept_on_cpu.is_empty(), "{name}: kept on CPU: {:?}", gpu.gpu.kept_on_cpu);
        let on_gpu = gpu.gpu.bytes.first().copied().unwrap_or(0);
        let (p_cpu, a_cpu) = ppl(&cpu);
        let (p_gpu, a_gpu) = ppl(&gpu);
        let rel = (p_gpu / p_cpu - 1.0).abs();
        let same = a_cpu.iter().zip(&a_gpu).filter(|(a, b)| a == b).count();
        eprintln!(
            "llama-tiny {name}: {on_gpu} weight bytes on CUDA0; PPL cpu {p_cpu:.6} cuda {p_gpu:.6} (rel {rel:.2e}); greedy top-1 same at {same}/{}",
            a_cpu.len()
        );
        assert!(rel < tol, "{name}: PPL {p_gpu} vs CPU {p_cpu}");
        let min_same = if name == "F16" { a_cpu.len() } else { a_cpu.len() * 95 / 100 };
        assert!(same >= min_same, "{name}: greedy tokens differ at {} positions", a_cpu.len() - same);
    }
}

#[test]
fn placement_on_missing_device_is_a_clear_error() {
    // Works with and without a GPU: CUDA99 never exists, and without a driver the driver's reason is given.
    let path = llama_tiny();
    let mut plan = Placement::default();
    plan.by_name.insert("output.weight".into(), Device::Cuda(99));
    let e = Model::open_placed(&path, &Default::default(), &plan).err().expect("CUDA99 cannot exist");
    let msg = e.to_string();
    eprintln!("CUDA99 placement: {msg}");
    assert_eq!(e.code(), if cuda::devices().is_ok_and(|d| !d.is_empty()) { "IKL_E_INVALID" } else { "IKL_E_CUDA" }, "{msg}");
    assert!(!msg.contains('\n'));
}

/// DeepSeek2 (MLA weights, MoE with shared experts; every expert slice uploaded) fully offloaded: the logits of
/// a 24-token prompt match the CPU's. IKL_CUDA_DS_MODEL names the ds-tiny F16 file on the GPU machine.
#[test]
fn ds_tiny_full_offload_matches_cpu() {
    if !gpu_or_skip("ds_tiny_full_offload_matches_cpu") {
        return;
    }
    let path = std::env::var("IKL_CUDA_DS_MODEL").unwrap_or_else(|_| {
        let p = tmp_dir().join("cuda-ds-tiny-f16.gguf");
        if !p.exists() {
            use ikl_core::fixtures::{write_model, FixtureOptions, FixtureType};
            let o = FixtureOptions { ftype: FixtureType::F16, vocab_dir: root().join("node_modules/@lenml"), ..FixtureOptions::default() };
            write_model("ds-tiny", &o, p.to_str().unwrap()).unwrap();
        }
        p.to_str().unwrap().to_string()
    });
    let logits = |m: Model| {
        let m = Arc::new(m);
        let p = ContextParams { n_ctx: 64, n_batch: 64, n_ubatch: 64, threads: 2, ..ContextParams::default() };
        let mut c = Context::new(m, p).unwrap();
        let toks: Vec<u32> = (0..24u32).map(|i| 100 + (i * 7919) % 20000).collect();
        let pos: Vec<i32> = (0..24).collect();
        c.decode(&toks, &pos, &[0; 24], &[20, 23]).unwrap().to_vec()
    };
    let want = logits(Model::open(&path).unwrap());
    let gpu = Model::open_placed(&path, &Default::default(), &full_offload(&path)).unwrap();
    let on_gpu = gpu.gpu.bytes.first().copied().unwrap_or(0);
    let got = logits(gpu);
    let e = nmse(&got, &want);
    eprintln!("ds-tiny F16: {on_gpu} weight bytes on CUDA0; logits nmse vs CPU {e:.2e}");
    assert!(e < 1e-8, "ds-tiny logits nmse {e}");
}
