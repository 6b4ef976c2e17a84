//! pp/tg timing of a model like ik's `llama-bench` (`-p 512 -n 128 -r 5 -t 2`): one warmup, then per
//! repetition a cleared KV cache and either one prompt of `-p` random tokens (batch 2048, ubatch 512, logits of
//! the last row only) or `-n` single-token decodes from position 0. Prints t/s mean ± sd per test, in
//! llama-bench's markdown columns, plus the CPU tier.
//!
//! usage: bench_model -m FILE [-p 512] [-n 128] [-r 5] [-t 2] [-ub 512]

use std::sync::Arc;
use std::time::Instant;

use ikl_core::context::{Context, ContextParams};
use ikl_core::model::Model;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str, d: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).map_or(d.to_string(), |s| s.clone());
    let num = |k: &str, d: &str| get(k, d).parse::<usize>().unwrap_or_else(|e| panic!("{k}: {e}"));
    let path = get("-m", "");
    let (n_p, n_g, reps, threads, nub) = (num("-p", "512"), num("-n", "128"), num("-r", "5"), num("-t", "2"), num("-ub", "512"));
    let model = Arc::new(Model::open(&path).unwrap_or_else(|e| panic!("{path}: {e}")));
    let p = ContextParams { n_ctx: n_p.max(n_g) + 16, n_batch: 2048, n_ubatch: nub, n_outputs: 1, threads, ..ContextParams::default() };
    let mut c = Context::new(model.clone(), p).unwrap();
    let nv = model.n_vocab() as u32;
    let mut rng = 0x2545f4914f6cdd1du64;
    let mut tok = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % nv as u64) as u32
    };
    let prompt = |c: &mut Context, n: usize, tok: &mut dyn FnMut() -> u32| {
        let t: Vec<u32> = (0..n).map(|_| tok()).collect();
        let pos: Vec<i32> = (0..n as i32).collect();
        for b0 in (0..n).step_by(2048) {
            let b1 = (b0 + 2048).min(n);
            c.decode(&t[b0..b1], &pos[b0..b1], &vec![0; b1 - b0], &[(b1 - b0 - 1) as i32]).unwrap();
        }
    };
    let gen = |c: &mut Context, n: usize, tok: &mut dyn FnMut() -> u32| {
        for i in 0..n {
            c.decode(&[tok()], &[i as i32], &[0], &[0]).unwrap();
        }
    };
    println!("tier: {} | threads: {threads} | file: {path}", ikl_core::cpu::tier::tier().name());
    println!("| test | t/s | runs (t/s) |\n| --- | ---: | --- |");
    // llama-bench warmup: a short prompt and one generated token.
    prompt(&mut c, n_p.clamp(1, 32), &mut tok);
    c.kv_clear();
    gen(&mut c, 1, &mut tok);
    for (name, n, is_pp) in [(format!("pp{n_p}"), n_p, true), (format!("tg{n_g}"), n_g, false)] {
        if n == 0 {
            continue;
        }
        let mut ts = Vec::new();
        for _ in 0..reps {
            c.kv_clear();
            let t0 = Instant::now();
            if is_pp {
                prompt(&mut c, n, &mut tok);
            } else {
                gen(&mut c, n, &mut tok);
            }
            ts.push(n as f64 / t0.elapsed().as_secs_f64());
        }
        let mean = ts.iter().sum::<f64>() / ts.len() as f64;
        let sd = (ts.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (ts.len().max(2) - 1) as f64).sqrt();
        let runs: Vec<String> = ts.iter().map(|t| format!("{t:.2}")).collect();
        println!("| {name} | {mean:.2} ± {sd:.2} | {} |", runs.join(" "));
    }
}
