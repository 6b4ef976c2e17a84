//! File → file quantization driven by an explicit per-tensor type plan (STYLE §2 rule 6: the policy — which
//! tensor gets which type, ftype recipes like Q4_K_M — lives in TypeScript; Rust receives the plan and
//! validates it). Each tensor is dequantized to f32 row by row and re-encoded with the format's scalar
//! `quantize` (the same algorithms as the reference's `quantize_*` without/with imatrix), in parallel over
//! row chunks; the output is streamed tensor by tensor through `GgufWriter::write_file` (temp + rename).
//!
//! Mirrors ik_llama.cpp @ 8337e4cd `src/llama-quantize.cpp` `llama_model_quantize_internal` for the mechanism
//! (metadata copied, `general.file_type` and `general.quantization_version` set, tensors in source order).
//! Not here: the ftype → per-tensor type rules and `--dry-run` (src/engine/recipes.ts), imatrix file parsing
//! (imatrix.rs), split output.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::cpu::pool::{SyncPtr, ThreadPool};
use crate::error::{Error, Result};
use crate::gguf::{GgufModel, GgufWriter, TensorInfo, Value, WriteTensor};
use crate::quant::formats::lookup;
use crate::quant::QType;

/// What `quantize_model` did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub n_tensors: usize,
    /// Tensors whose type changed.
    pub n_converted: usize,
    pub src_bytes: u64,
    pub dst_bytes: u64,
    /// `general.file_type` written (llama_ftype).
    pub ftype: u32,
    pub seconds: f64,
}

/// Rows per task (why: whole interleave groups of every registered type — at most 16 — and enough work per
/// task to amortise the dequantize buffer).
const ROWS_PER_TASK: usize = 32;

/// llama_ftype of a file whose dominant weight type is `q` (ik `llama.h` enum; K types map to the `_M`
/// recipe name the reference writes for `Q4_K` etc.). Unknown: `LLAMA_FTYPE_GUESSED` (1024).
pub fn ftype_of(q: QType) -> u32 {
    use QType::*;
    match q {
        F32 => 0,
        F16 => 1,
        Q4_0 => 2,
        Q4_1 => 3,
        Q8_0 => 7,
        Q5_0 => 8,
        Q5_1 => 9,
        Q2_K => 10,
        Q3_K => 12,
        Q4_K => 15,
        Q5_K => 17,
        Q6_K => 18,
        IQ2_XXS => 19,
        IQ2_XS => 20,
        IQ3_XXS => 23,
        IQ1_S => 24,
        IQ4_NL => 25,
        IQ3_S => 26,
        IQ2_S => 28,
        IQ4_XS => 30,
        IQ1_M => 31,
        BF16 => 32,
        _ => 1024,
    }
}

/// Quantize `src` into `dst`: tensor `t` gets type `plan(t)` (its own type = copied unchanged). `imatrix`
/// maps tensor names to per-column importances (`ne0` values, or `ne0 × ne2` for stacked experts).
/// `general.file_type` is derived from the dominant new type (the user-facing command passes its recipe id).
pub fn quantize_model(
    src: &str,
    dst: &str,
    plan: &dyn Fn(&TensorInfo) -> QType,
    threads: usize,
    imatrix: Option<&HashMap<String, Vec<f32>>>,
) -> Result<Summary> {
    let g = GgufModel::open(src)?;
    let types: Vec<QType> = g.tensors.iter().map(plan).collect();
    let mut by_type: HashMap<QType, u64> = HashMap::new();
    for (t, &q) in g.tensors.iter().zip(&types) {
        if q != t.qtype {
            *by_type.entry(q).or_default() += t.n_elements();
        }
    }
    let ftype = match by_type.into_iter().max_by_key(|&(q, n)| (n, q)) {
        Some((q, _)) => ftype_of(q),
        None => g.get("general.file_type").and_then(|v| v.as_i64()).unwrap_or(1024) as u32,
    };
    let empty = HashMap::new();
    let job = Job { src, dst, types: &types, threads, ftype, kv: &[], imatrix: imatrix.unwrap_or(&empty), progress: None, cancel: None };
    run(&job)
}

/// Live counters of a running job, read by another thread (the N-API progress poll).
#[derive(Debug, Default)]
pub struct Progress {
    /// Tensors written.
    pub tensors: AtomicUsize,
    /// Source elements processed (copied or converted), for a smooth bar inside large tensors.
    pub elements: AtomicU64,
    /// Bytes written to the output (tensor data).
    pub out_bytes: AtomicU64,
}

/// One file → file job: the plan is explicit (TypeScript decides every type, STYLE §2 rule 6).
pub struct Job<'a> {
    pub src: &'a str,
    pub dst: &'a str,
    /// New type of each source tensor, in source order (its own type = copied unchanged).
    pub types: &'a [QType],
    pub threads: usize,
    /// `general.file_type` to record (the recipe's llama_ftype id).
    pub ftype: u32,
    /// Metadata set after the copy, before `general.file_type` (e.g. `quantize.imatrix.*`).
    pub kv: &'a [(String, Value)],
    /// Tensor name → importances (`ne0`, or `ne0 × ne2` for stacked experts).
    pub imatrix: &'a HashMap<String, Vec<f32>>,
    pub progress: Option<&'a Progress>,
    /// Checked between row chunks; when set the job stops with `Error::Cancelled` and leaves no output.
    pub cancel: Option<&'a AtomicBool>,
}

/// Run `job`: metadata copied (minus `split.*`) as llama_model_quantize_internal does, tensors in source
/// order, written through a temporary file renamed when complete.
pub fn run(job: &Job) -> Result<Summary> {
    let t0 = Instant::now();
    let g = GgufModel::open(job.src)?;
    if job.types.len() != g.tensors.len() {
        return Err(Error::Invalid {
            what: format!("plan has {} entries for {} tensors of {}", job.types.len(), g.tensors.len(), job.src),
        });
    }
    let mut w = GgufWriter::new();
    for (k, v) in &g.header().kv {
        if !k.starts_with("split.") {
            w.set(k, v.clone());
        }
    }
    w.set("general.quantization_version", Value::U32(2));
    for (k, v) in job.kv {
        w.set(k, v.clone());
    }
    w.set("general.file_type", Value::U32(job.ftype));
    for (t, &q) in g.tensors.iter().zip(job.types) {
        if q != t.qtype {
            check_target(t, q)?;
            if let Some(im) = job.imatrix.get(&t.name) {
                check_imatrix(t, im)?;
            }
        }
        w.add_tensor(WriteTensor { n_dims: Some(t.n_dims), ..WriteTensor::new(&t.name, q, &t.ne) });
    }
    let pool = ThreadPool::new(job.threads.max(1));
    let mut sum = Summary { n_tensors: g.tensors.len(), ftype: job.ftype, ..Summary::default() };
    let mut buf: Vec<u8> = Vec::new();
    let cancelled = || job.cancel.is_some_and(|c| c.load(Ordering::Relaxed));
    w.write_file(job.dst, |i, out| {
        let (t, q) = (&g.tensors[i], job.types[i]);
        let data = g.tensor_data(t);
        sum.src_bytes += data.len() as u64;
        let bytes = if q == t.qtype {
            if let Some(p) = job.progress {
                p.elements.fetch_add(t.n_elements(), Ordering::Relaxed);
            }
            data
        } else {
            sum.n_converted += 1;
            let im = job.imatrix.get(&t.name).map(|v| v.as_slice());
            convert(&pool, t, data, q, im, &mut buf, job)?;
            &buf[..]
        };
        if cancelled() {
            return Err(Error::Cancelled);
        }
        sum.dst_bytes += bytes.len() as u64;
        out.write_all(bytes).map_err(|e| Error::io(job.dst, e))?;
        if let Some(p) = job.progress {
            p.tensors.fetch_add(1, Ordering::Relaxed);
            p.out_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    })?;
    sum.seconds = t0.elapsed().as_secs_f64();
    Ok(sum)
}

fn check_imatrix(t: &TensorInfo, im: &[f32]) -> Result<()> {
    let ne0 = t.ne[0] as usize;
    if im.len() != ne0 && im.len() != ne0 * t.ne[2] as usize {
        return Err(Error::Invalid {
            what: format!("imatrix size {} is different from tensor size {} for {}", im.len(), ne0 * t.ne[2] as usize, t.name),
        });
    }
    Ok(())
}

/// Reject a plan entry the formats cannot produce, before anything is written.
fn check_target(t: &TensorInfo, q: QType) -> Result<()> {
    let unsupported = |why: &str| Error::Unsupported { what: format!("quantize {} ({}) to {}: {why}", t.name, t.qtype.name(), q.name()) };
    lookup(t.qtype).ok_or_else(|| unsupported("source type has no CPU format"))?;
    lookup(q).and_then(|f| f.quantize).ok_or_else(|| unsupported("target type has no quantizer"))?;
    q.row_size(t.ne[0]).ok_or_else(|| unsupported("row length is not a multiple of the block size"))?;
    let rows = t.ne[1] * t.ne[2] * t.ne[3];
    if rows % q.traits().interleave as u64 != 0 {
        return Err(unsupported("row count is not a multiple of the interleave"));
    }
    Ok(())
}

/// Dequantize `data` (tensor `t`) and re-encode it as `q` into `buf`, in parallel over row chunks.
fn convert(pool: &ThreadPool, t: &TensorInfo, data: &[u8], q: QType, imatrix: Option<&[f32]>, buf: &mut Vec<u8>, job: &Job) -> Result<()> {
    let ne0 = t.ne[0] as usize;
    let n_rows = (t.ne[1] * t.ne[2] * t.ne[3]) as usize;
    let rows_per_mat = t.ne[1] as usize;
    let (sf, df) = (lookup(t.qtype), lookup(q));
    let (Some(sf), Some(df)) = (sf, df) else { return check_target(t, q) };
    let Some(quant) = df.quantize else { return check_target(t, q) };
    let (srb, drb) = (t.qtype.row_size(ne0 as u64), q.row_size(ne0 as u64));
    let (Some(srb), Some(drb)) = (srb, drb) else { return check_target(t, q) };
    let (srb, drb) = (srb as usize, drb as usize);
    if let Some(im) = imatrix {
        check_imatrix(t, im)?;
    }
    buf.clear();
    buf.resize(n_rows * drb, 0);
    let step = ROWS_PER_TASK.max(q.traits().interleave).max(t.qtype.traits().interleave);
    let dst = SyncPtr::new(&mut buf[..]);
    pool.run(n_rows.div_ceil(step), |task| {
        if job.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return;
        }
        let r0 = task * step;
        let r1 = (r0 + step).min(n_rows);
        // One f32 buffer per task (not the forward pass: quantization allocates freely).
        let mut f = vec![0.0f32; (r1 - r0) * ne0];
        (sf.dequantize)(&data[r0 * srb..r1 * srb], &mut f, ne0);
        // SAFETY: task owns rows r0..r1 of the output buffer.
        let out = unsafe { dst.slice(r0 * drb, (r1 - r0) * drb) };
        // Quantize per expert slice when the imatrix is per expert (rows of one matrix share its importances).
        let mut r = r0;
        while r < r1 {
            let mat = r / rows_per_mat;
            let end = r1.min((mat + 1) * rows_per_mat);
            let im = imatrix.map(|v| if v.len() == ne0 { v } else { &v[mat * ne0..(mat + 1) * ne0] });
            quant(&f[(r - r0) * ne0..(end - r0) * ne0], &mut out[(r - r0) * drb..(end - r0) * drb], ne0, im);
            r = end;
        }
        if let Some(p) = job.progress {
            p.elements.fetch_add(((r1 - r0) * ne0) as u64, Ordering::Relaxed);
        }
    });
    Ok(())
}

/// Per-tensor root-mean-square error of `q` against `orig` after dequantizing both, for every tensor whose
/// type differs (name order of `q`). Used to compare quantizers on the same source (ours vs the reference's).
pub fn tensor_rmse(orig: &GgufModel, q: &GgufModel) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for t in &q.tensors {
        let Some(o) = orig.tensor(&t.name) else { continue };
        if o.qtype == t.qtype {
            continue;
        }
        let deq = |g: &GgufModel, t: &TensorInfo| -> Result<Vec<f32>> {
            let f = lookup(t.qtype).ok_or_else(|| Error::Unsupported { what: format!("dequantize {} ({})", t.name, t.qtype.name()) })?;
            let mut v = vec![0.0f32; t.n_elements() as usize];
            (f.dequantize)(g.tensor_data(t), &mut v, t.ne[0] as usize);
            Ok(v)
        };
        let (a, b) = (deq(orig, o)?, deq(q, t)?);
        let se: f64 = a.iter().zip(&b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum();
        out.push((t.name.clone(), (se / a.len().max(1) as f64).sqrt()));
    }
    Ok(out)
}
