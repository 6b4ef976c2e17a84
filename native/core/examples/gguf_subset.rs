//! Copy a GGUF keeping only some tensors and keys (bytes of kept tensors unchanged): used to cut small test
//! fixtures out of files produced by other tools (e.g. the reference's quantizer).
//!
//! Usage: gguf_subset IN OUT [--drop-tensor NAME]... [--drop-key-prefix PREFIX]...

use ikl_core::gguf::{GgufModel, GgufWriter, WriteTensor};

fn main() {
    if let Err(e) = run() {
        eprintln!("gguf_subset: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: gguf_subset IN OUT [--drop-tensor NAME]... [--drop-key-prefix PREFIX]...".into());
    }
    let (mut drop_t, mut drop_k) = (Vec::new(), Vec::new());
    let mut it = args[2..].iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--drop-tensor" => drop_t.push(v.clone()),
            "--drop-key-prefix" => drop_k.push(v.clone()),
            _ => return Err(format!("unknown option {a}")),
        }
    }
    let m = GgufModel::open(&args[0]).map_err(|e| e.to_string())?;
    let mut w = GgufWriter::new();
    w.kv = m.header().kv.iter().filter(|(k, _)| !drop_k.iter().any(|p| k.starts_with(p.as_str()))).cloned().collect();
    let kept: Vec<_> = m.tensors.iter().filter(|t| !drop_t.contains(&t.name)).collect();
    for t in &kept {
        w.add_tensor(WriteTensor { name: t.name.clone(), ne: t.ne, n_dims: Some(t.n_dims), qtype: t.qtype });
    }
    w.write_file(&args[1], |i, out| out.write_all(m.tensor_data(kept[i])).map_err(|e| ikl_core::Error::io(&args[1], e)))
        .map_err(|e| e.to_string())
}
