//! Thin CLI over `ikl_core::quantize::quantize_model` for tests and benches (the user-facing command is
//! `ikl quantize` in TypeScript, which owns the ftype recipes).
//!
//! usage: quantize_model SRC DST TYPE [-t N] [--types-from FILE] [--compare REF]
//!   TYPE          every tensor of ≥ 2 dims whose name ends in `weight` gets TYPE (ik `--pure`)
//!   --types-from  per-tensor types copied from FILE instead (e.g. the reference's Q4_K_M choices)
//!   --compare     print per-tensor quantize→dequantize RMSE of DST and REF against SRC, and their ratio

use ikl_core::gguf::GgufModel;
use ikl_core::quant::QType;
use ikl_core::quantize::{quantize_model, tensor_rmse};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pos = Vec::new();
    let (mut threads, mut types_from, mut compare) = (2usize, None, None);
    let mut i = 0;
    while i < args.len() {
        let val = || args.get(i + 1).cloned().ok_or(format!("{} needs a value", args[i]));
        match args[i].as_str() {
            "-t" | "--threads" => threads = val()?.parse().map_err(|e| format!("-t: {e}"))?,
            "--types-from" => types_from = Some(val()?),
            "--compare" => compare = Some(val()?),
            a => {
                pos.push(a.to_string());
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    let [src, dst, ty] = &pos[..] else {
        return Err("usage: quantize_model SRC DST TYPE [-t N] [--types-from FILE] [--compare REF]".into());
    };
    let q = QType::from_name(ty).ok_or(format!("unknown type {ty}"))?;
    let from = match &types_from {
        Some(p) => Some(GgufModel::open(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let plan = |t: &ikl_core::gguf::TensorInfo| match &from {
        Some(f) => f.tensor(&t.name).map_or(t.qtype, |r| r.qtype),
        None if t.n_dims >= 2 && t.name.ends_with("weight") => q,
        None => t.qtype,
    };
    let s = quantize_model(src, dst, &plan, threads, None).map_err(|e| e.to_string())?;
    eprintln!(
        "{dst}: {} of {} tensors converted, {:.2} MB -> {:.2} MB, ftype {}, {:.2} s",
        s.n_converted,
        s.n_tensors,
        s.src_bytes as f64 / 1e6,
        s.dst_bytes as f64 / 1e6,
        s.ftype,
        s.seconds
    );
    if let Some(r) = compare {
        let open = |p: &str| GgufModel::open(p).map_err(|e| e.to_string());
        let (o, ours, theirs) = (open(src)?, open(dst)?, open(&r)?);
        let a = tensor_rmse(&o, &ours).map_err(|e| e.to_string())?;
        let b = tensor_rmse(&o, &theirs).map_err(|e| e.to_string())?;
        let mut worst = 0.0f64;
        println!("tensor\trmse_ours\trmse_ref\tratio");
        for ((n, x), (_, y)) in a.iter().zip(&b) {
            let ratio = if *y > 0.0 { x / y } else { 1.0 };
            worst = worst.max(ratio);
            println!("{n}\t{x:.6e}\t{y:.6e}\t{ratio:.4}");
        }
        println!("max ratio\t{worst:.4}");
    }
    Ok(())
}
