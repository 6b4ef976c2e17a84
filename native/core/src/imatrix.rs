//! Importance-matrix files for `ikl quantize --imatrix`: per tensor, one mean squared activation per column
//! (`ne0` values; `ne0 × n_expert` for stacked expert tensors), which the quantizers use as error weights.
//!
//! Two formats, told apart by the first four bytes:
//! * legacy `.dat` (llama-imatrix; the only one ik_llama.cpp @ 8337e4cd `examples/quantize` reads, spec/cli.md
//!   §8.4): `i32 n; n × (i32 len, name, i32 ncall, i32 nval, f32 × nval)`, then optionally `i32 chunks, i32 len,
//!   dataset`. Values are divided by `ncall` when it is positive, as the reference's `load_imatrix` does.
//! * GGUF (mainline llama.cpp's newer imatrix files): tensors `<name>.in_sum2` (`ne0 × n_mat`) and
//!   `<name>.counts` (`n_mat`); the value is `in_sum2 / count` per matrix, 1 where a matrix saw no input
//!   (mainline `load_gguf_imatrix`); `imatrix.chunk_count` and `imatrix.datasets[0]` fill the trailer fields.
//!
//! Non-finite values are refused, like the reference ("imatrix contains non-finite value").

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::gguf::GgufModel;
use crate::quant::QType;

/// A loaded importance matrix.
#[derive(Clone, Debug, Default)]
pub struct Imatrix {
    pub entries: HashMap<String, Vec<f32>>,
    /// Entry names in file order.
    pub order: Vec<String>,
    /// Calibration chunks (`m_last_call`; 0 when the file does not say).
    pub chunks: i64,
    pub dataset: Option<String>,
    /// "dat" or "gguf".
    pub format: &'static str,
}

/// Read `path` in either format.
pub fn read(path: &str) -> Result<Imatrix> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let m = if bytes.starts_with(b"GGUF") { read_gguf(path)? } else { parse_dat(&bytes, path)? };
    for (name, v) in &m.entries {
        if let Some(x) = v.iter().find(|x| !x.is_finite()) {
            return Err(Error::Invalid { what: format!("imatrix {path}: entry {name} contains the non-finite value {x}") });
        }
    }
    Ok(m)
}

struct Cursor<'a> {
    b: &'a [u8],
    o: usize,
    path: &'a str,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let end = self.o.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(Error::Invalid { what: format!("imatrix {}: truncated while reading {what} at byte {}", self.path, self.o) });
        };
        let s = &self.b[self.o..end];
        self.o = end;
        Ok(s)
    }
    fn i32(&mut self, what: &str) -> Result<i32> {
        let s = self.take(4, what)?;
        Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// The legacy binary format (see the module doc).
pub fn parse_dat(bytes: &[u8], path: &str) -> Result<Imatrix> {
    let bad = |what: String| Error::Invalid { what: format!("imatrix {path}: {what}") };
    let mut c = Cursor { b: bytes, o: 0, path };
    let n = c.i32("the entry count")?;
    if n < 1 {
        return Err(bad("no data in file (entry count < 1)".into()));
    }
    let mut m = Imatrix { format: "dat", ..Imatrix::default() };
    for i in 0..n {
        let len = c.i32("a name length")?;
        if len < 0 {
            return Err(bad(format!("negative name length for entry {}", i + 1)));
        }
        let name = String::from_utf8_lossy(c.take(len as usize, "a name")?).into_owned();
        let ncall = c.i32("a call count")?;
        let nval = c.i32("a value count")?;
        if nval < 1 {
            return Err(bad(format!("entry {} ({name}) has {nval} values", i + 1)));
        }
        let raw = c.take(nval as usize * 4, "values")?;
        let mut v: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if ncall > 0 {
            v.iter_mut().for_each(|x| *x /= ncall as f32);
        }
        if m.entries.insert(name.clone(), v).is_none() {
            m.order.push(name);
        }
    }
    if c.o < bytes.len() {
        m.chunks = c.i32("the chunk count")? as i64;
        let len = c.i32("the dataset name length")?;
        if len > 0 {
            m.dataset = Some(String::from_utf8_lossy(c.take(len as usize, "the dataset name")?).into_owned());
        }
    }
    Ok(m)
}

fn read_gguf(path: &str) -> Result<Imatrix> {
    let g = GgufModel::open(path)?;
    let bad = |what: String| Error::Invalid { what: format!("imatrix {path}: {what}") };
    let mut m = Imatrix { format: "gguf", ..Imatrix::default() };
    m.chunks = g.get("imatrix.chunk_count").and_then(|v| v.as_i64()).unwrap_or(0);
    m.dataset = g.get("imatrix.datasets").and_then(|v| v.as_array()).and_then(|a| a.get(0)).and_then(|v| v.as_str().map(str::to_string));
    let f32s = |t: &crate::gguf::TensorInfo| -> Result<Vec<f32>> {
        if t.qtype != QType::F32 {
            return Err(bad(format!("tensor {} is {}, expected f32", t.name, t.qtype.name())));
        }
        Ok(g.tensor_data(t).chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    };
    for t in &g.tensors {
        let Some(name) = t.name.strip_suffix(".in_sum2") else { continue };
        let counts = g.tensor(&format!("{name}.counts")).ok_or_else(|| bad(format!("{name}.in_sum2 has no {name}.counts")))?;
        let (sums, counts) = (f32s(t)?, f32s(counts)?);
        let ne0 = t.ne[0] as usize;
        if ne0 == 0 || counts.len() * ne0 != sums.len() {
            return Err(bad(format!("{name}: {} sums for {} counts of {ne0} columns", sums.len(), counts.len())));
        }
        let v: Vec<f32> = sums.iter().enumerate().map(|(i, &s)| if counts[i / ne0] > 0.0 { s / counts[i / ne0] } else { 1.0 }).collect();
        if m.entries.insert(name.to_string(), v).is_none() {
            m.order.push(name.to_string());
        }
    }
    if m.entries.is_empty() {
        return Err(bad("a GGUF file without imatrix entries (no *.in_sum2 tensors)".into()));
    }
    Ok(m)
}

/// Serialize `m` in the legacy format (ncall 1 per entry), for tests and tools.
pub fn to_dat(m: &Imatrix) -> Vec<u8> {
    let mut out = Vec::new();
    let i32s = |out: &mut Vec<u8>, v: i32| out.extend_from_slice(&v.to_le_bytes());
    i32s(&mut out, m.order.len() as i32);
    for name in &m.order {
        let v = &m.entries[name];
        i32s(&mut out, name.len() as i32);
        out.extend_from_slice(name.as_bytes());
        i32s(&mut out, 1);
        i32s(&mut out, v.len() as i32);
        v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
    }
    i32s(&mut out, m.chunks as i32);
    let ds = m.dataset.as_deref().unwrap_or("");
    i32s(&mut out, ds.len() as i32);
    out.extend_from_slice(ds.as_bytes());
    out
}
