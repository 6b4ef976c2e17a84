//! imatrix files (legacy .dat and GGUF) and the quantize job: importance weights reach the quantizer, progress
//! counters, cancellation leaves no output, plan validation happens before anything is written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use ikl_core::gguf::{GgufModel, GgufWriter, Value, WriteTensor};
use ikl_core::imatrix::{parse_dat, read, to_dat};
use ikl_core::quant::formats::lookup;
use ikl_core::quant::QType;
use ikl_core::quantize::{run, Job, Progress};
use ikl_core::Error;

fn tmp(name: &str) -> String {
    let d = std::env::temp_dir().join(format!("ikl-quantize-imatrix-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name).to_string_lossy().into_owned()
}

fn le_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn dat(entries: &[(&str, i32, &[f32])], trailer: Option<(i32, &str)>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(entries.len() as i32).to_le_bytes());
    for (name, ncall, v) in entries {
        b.extend_from_slice(&(name.len() as i32).to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(&ncall.to_le_bytes());
        b.extend_from_slice(&(v.len() as i32).to_le_bytes());
        b.extend_from_slice(&le_f32(v));
    }
    if let Some((chunks, ds)) = trailer {
        b.extend_from_slice(&chunks.to_le_bytes());
        b.extend_from_slice(&(ds.len() as i32).to_le_bytes());
        b.extend_from_slice(ds.as_bytes());
    }
    b
}

#[test]
fn legacy_dat_divides_by_ncall_and_reads_the_trailer() {
    let b = dat(&[("a.weight", 4, &[4.0, 8.0]), ("b.weight", 0, &[3.0])], Some((12, "wiki")));
    let m = parse_dat(&b, "x.dat").unwrap();
    assert_eq!(m.entries["a.weight"], vec![1.0, 2.0]);
    assert_eq!(m.entries["b.weight"], vec![3.0], "ncall 0 keeps the sums, as load_imatrix does");
    assert_eq!(m.order, vec!["a.weight", "b.weight"]);
    assert_eq!((m.chunks, m.dataset.as_deref(), m.format), (12, Some("wiki"), "dat"));
    let m = parse_dat(&dat(&[("a", 1, &[1.0])], None), "x.dat").unwrap();
    assert_eq!((m.chunks, m.dataset.as_deref()), (0, None));
    // to_dat → parse_dat round trip
    let again = parse_dat(&to_dat(&m), "y.dat").unwrap();
    assert_eq!(again.entries, m.entries);
}

#[test]
fn legacy_dat_errors_name_the_problem() {
    let b = dat(&[("a.weight", 1, &[1.0, 2.0])], None);
    let e = parse_dat(&b[..b.len() - 3], "t.dat").unwrap_err().to_string();
    assert!(e.contains("t.dat") && e.contains("truncated"), "{e}");
    let e = parse_dat(&0i32.to_le_bytes(), "e.dat").unwrap_err().to_string();
    assert!(e.contains("no data"), "{e}");
    let e = parse_dat(&dat(&[("a", 1, &[])], None), "z.dat").unwrap_err().to_string();
    assert!(e.contains("0 values"), "{e}");
    let p = tmp("nan.dat");
    std::fs::write(&p, dat(&[("a", 1, &[1.0, f32::NAN])], None)).unwrap();
    let e = read(&p).unwrap_err().to_string();
    assert!(e.contains("non-finite"), "{e}");
    assert!(matches!(read(&tmp("missing.dat")), Err(Error::Io { .. })));
}

#[test]
fn gguf_imatrix_is_sums_over_counts_per_matrix() {
    let p = tmp("im.gguf");
    let mut w = GgufWriter::new();
    w.set("general.type", Value::str("imatrix"));
    w.set("imatrix.chunk_count", Value::U32(5));
    w.set("imatrix.datasets", Value::Array(ikl_core::gguf::Array::Str(vec![b"calib.txt".to_vec()])));
    w.add_tensor(WriteTensor::new("blk.0.ffn_up_exps.weight.in_sum2", QType::F32, &[2, 2]));
    w.add_tensor(WriteTensor::new("blk.0.ffn_up_exps.weight.counts", QType::F32, &[1, 2]));
    let data = [le_f32(&[2.0, 4.0, 9.0, 9.0]), le_f32(&[2.0, 0.0])];
    w.write_file(&p, |i, out| out.write_all(&data[i]).map_err(|e| Error::io("im.gguf", e))).unwrap();
    let m = read(&p).unwrap();
    assert_eq!(m.format, "gguf");
    assert_eq!(m.entries["blk.0.ffn_up_exps.weight"], vec![1.0, 2.0, 1.0, 1.0], "a matrix without input gets 1");
    assert_eq!((m.chunks, m.dataset.as_deref()), (5, Some("calib.txt")));
}

/// A one-tensor F32 model: 256 columns × `rows` rows of deterministic values with a few large outliers.
fn model(path: &str, rows: u64) -> Vec<f32> {
    let n = 256 * rows as usize;
    let v: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * if i % 97 == 0 { 8.0 } else { 1.0 }).collect();
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::str("llama"));
    w.add_tensor(WriteTensor::new("blk.0.ffn_up.weight", QType::F32, &[256, rows]));
    let bytes = le_f32(&v);
    w.write_file(path, |_, out| out.write_all(&bytes).map_err(|e| Error::io("m.gguf", e))).unwrap();
    v
}

fn weighted_err(orig: &[f32], path: &str, w: &[f32]) -> f64 {
    let g = GgufModel::open(path).unwrap();
    let t = &g.tensors[0];
    let mut d = vec![0.0f32; orig.len()];
    (lookup(t.qtype).unwrap().dequantize)(g.tensor_data(t), &mut d, 256);
    orig.iter().zip(&d).enumerate().map(|(i, (a, b))| w[i % 256] as f64 * ((a - b) as f64).powi(2)).sum()
}

#[test]
fn importance_weights_reach_the_quantizer() {
    let (src, plain, weighted) = (tmp("m.gguf"), tmp("plain.gguf"), tmp("weighted.gguf"));
    let orig = model(&src, 16);
    let imp: Vec<f32> = (0..256).map(|j| if j < 32 { 100.0 } else { 0.01 }).collect();
    let none = HashMap::new();
    let with: HashMap<String, Vec<f32>> = [("blk.0.ffn_up.weight".to_string(), imp.clone())].into();
    let progress = Progress::default();
    let mut job = Job {
        src: &src,
        dst: &plain,
        types: &[QType::IQ4_XS],
        threads: 2,
        ftype: 30,
        kv: &[],
        imatrix: &none,
        progress: Some(&progress),
        cancel: None,
    };
    let s = run(&job).unwrap();
    assert_eq!((s.n_tensors, s.n_converted, s.ftype), (1, 1, 30));
    assert_eq!(progress.tensors.load(Ordering::Relaxed), 1);
    assert_eq!(progress.elements.load(Ordering::Relaxed), orig.len() as u64);
    assert_eq!(progress.out_bytes.load(Ordering::Relaxed), s.dst_bytes);
    job.dst = &weighted;
    job.imatrix = &with;
    job.progress = None;
    run(&job).unwrap();
    assert_ne!(std::fs::read(&plain).unwrap(), std::fs::read(&weighted).unwrap());
    let (e_plain, e_weighted) = (weighted_err(&orig, &plain, &imp), weighted_err(&orig, &weighted, &imp));
    assert!(e_weighted < e_plain, "imatrix-weighted error {e_weighted} should beat {e_plain}");
    let g = GgufModel::open(&weighted).unwrap();
    assert_eq!(g.get("general.file_type").and_then(|v| v.as_i64()), Some(30));
    assert_eq!(g.get("general.quantization_version").and_then(|v| v.as_i64()), Some(2));
}

#[test]
fn bad_plans_and_cancellation_leave_no_file() {
    let src = tmp("c.gguf");
    model(&src, 16);
    let dst = tmp("c-out.gguf");
    let none = HashMap::new();
    let wrong: HashMap<String, Vec<f32>> = [("blk.0.ffn_up.weight".to_string(), vec![1.0; 100])].into();
    let base =
        Job { src: &src, dst: &dst, types: &[QType::Q4_0], threads: 1, ftype: 2, kv: &[], imatrix: &none, progress: None, cancel: None };
    let e = run(&Job { imatrix: &wrong, ..base }).unwrap_err().to_string();
    assert!(e.contains("imatrix size 100 is different from tensor size 256 for blk.0.ffn_up.weight"), "{e}");
    let e = run(&Job { types: &[], ..base }).unwrap_err().to_string();
    assert!(e.contains("plan has 0 entries for 1 tensors"), "{e}");
    let e = run(&Job { types: &[QType::Q4_0_4_4], ..base }).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e}");
    let cancel = AtomicBool::new(true);
    assert!(matches!(run(&Job { cancel: Some(&cancel), ..base }), Err(Error::Cancelled)));
    let dir = std::path::Path::new(&dst).parent().unwrap();
    let left: Vec<_> =
        std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(!left.iter().any(|n| n.starts_with("c-out.gguf")), "{left:?}");
    // metadata records are set in order: copied keys, quantization_version, the extra keys, file_type
    let kv = [("quantize.imatrix.file".to_string(), Value::str("x.dat")), ("quantize.imatrix.entries_count".to_string(), Value::I32(1))];
    run(&Job { kv: &kv, ..base }).unwrap();
    let g = GgufModel::open(&dst).unwrap();
    let keys: Vec<&str> = g.header().kv.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "general.architecture",
            "general.quantization_version",
            "quantize.imatrix.file",
            "quantize.imatrix.entries_count",
            "general.file_type"
        ]
    );
}
