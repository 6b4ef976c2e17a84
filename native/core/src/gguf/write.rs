//! GGUF writer (spec/gguf.md §8): header, metadata and tensor infos, then tensor data streamed tensor by
//! tensor (models far larger than RAM can be written), each padded to the alignment. Files are written to a
//! temporary name in the same directory and renamed when complete, so an interrupted write never leaves a
//! truncated file under the final name.
//!
//! Layout follows ik_llama.cpp `gguf_write_to_buf` / gguf-py `GGUFWriter` @ 8337e4cd: tensors back to back in
//! info order, `offset[i+1] = offset[i] + PAD(nbytes[i], ALIGNMENT)`.

use std::io::Write;

use super::read::{pad, DEFAULT_ALIGNMENT, MAX_NAME_BYTES};
use super::value::{Array, Value};
use crate::error::{Error, Result};
use crate::quant::QType;

/// A tensor to be written: its info; the data comes from the callback given to `write`.
#[derive(Clone, Debug)]
pub struct WriteTensor {
    pub name: String,
    pub ne: [u64; 4],
    /// Dimensions to record; `None` = `ggml_n_dims` (last dim > 1, at least 1).
    pub n_dims: Option<u32>,
    pub qtype: QType,
}

impl WriteTensor {
    pub fn new(name: &str, qtype: QType, shape: &[u64]) -> WriteTensor {
        let mut ne = [1u64; 4];
        ne[..shape.len()].copy_from_slice(shape);
        WriteTensor { name: name.to_string(), ne, n_dims: None, qtype }
    }

    pub fn nbytes(&self) -> Result<u64> {
        self.qtype.tensor_bytes(&self.ne).ok_or_else(|| Error::Invalid {
            what: format!("tensor '{}': shape {:?} does not fit type {}", self.name, self.ne, self.qtype.name()),
        })
    }

    fn dims(&self) -> u32 {
        self.n_dims.unwrap_or_else(|| (self.ne.iter().rposition(|&d| d > 1).unwrap_or(0) + 1) as u32)
    }
}

#[derive(Clone, Debug, Default)]
pub struct GgufWriter {
    pub version: u32,
    pub kv: Vec<(String, Value)>,
    pub tensors: Vec<WriteTensor>,
}

impl GgufWriter {
    pub fn new() -> GgufWriter {
        GgufWriter { version: 3, kv: Vec::new(), tensors: Vec::new() }
    }

    /// Set a key, replacing an existing record in place (keys stay unique).
    pub fn set(&mut self, key: &str, v: Value) {
        match self.kv.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.kv.push((key.to_string(), v)),
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.kv.retain(|(k, _)| k != key);
    }

    pub fn add_tensor(&mut self, t: WriteTensor) {
        self.tensors.push(t);
    }

    pub fn alignment(&self) -> Result<u64> {
        match self.kv.iter().find(|(k, _)| k == "general.alignment") {
            None => Ok(DEFAULT_ALIGNMENT),
            Some((_, Value::U32(a))) if *a > 0 && a.is_power_of_two() => Ok(*a as u64),
            Some(_) => Err(Error::Invalid { what: "general.alignment must be a UINT32 power of two".into() }),
        }
    }

    /// Offsets (relative to the data section) and byte sizes of every tensor, as they will be written.
    pub fn layout(&self) -> Result<Vec<(u64, u64)>> {
        let align = self.alignment()?;
        let mut off = 0u64;
        let mut out = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let n = t.nbytes()?;
            out.push((off, n));
            off = off.checked_add(pad(n, align)).ok_or_else(|| Error::Invalid { what: "model too large".into() })?;
        }
        Ok(out)
    }

    /// Encode header, metadata and tensor infos, padded to the start of the data section.
    pub fn header_bytes(&self) -> Result<Vec<u8>> {
        let align = self.alignment()?;
        let mut names = std::collections::HashSet::new();
        for t in &self.tensors {
            if t.name.len() > MAX_NAME_BYTES {
                return Err(Error::Invalid { what: format!("tensor name '{}' is longer than {MAX_NAME_BYTES} bytes", t.name) });
            }
            if !names.insert(t.name.as_str()) {
                return Err(Error::Invalid { what: format!("duplicate tensor name '{}'", t.name) });
            }
        }
        let mut b = Vec::with_capacity(1 << 16);
        b.extend_from_slice(b"GGUF");
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        b.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for (k, v) in &self.kv {
            put_str(&mut b, k.as_bytes());
            b.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
            put_value(&mut b, v);
        }
        for (t, (off, _)) in self.tensors.iter().zip(self.layout()?) {
            put_str(&mut b, t.name.as_bytes());
            let nd = t.dims();
            b.extend_from_slice(&nd.to_le_bytes());
            for d in &t.ne[..nd as usize] {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&t.qtype.id().to_le_bytes());
            b.extend_from_slice(&off.to_le_bytes());
        }
        let end = pad(b.len() as u64, align) as usize;
        b.resize(end, 0);
        Ok(b)
    }

    /// Write everything to `out`. `data(i, w)` must write exactly the bytes of tensor `i`.
    pub fn write_to<W: Write>(&self, out: &mut W, mut data: impl FnMut(usize, &mut dyn Write) -> Result<()>) -> Result<()> {
        let align = self.alignment()?;
        let io = |e| Error::io("<output>", e);
        out.write_all(&self.header_bytes()?).map_err(io)?;
        let zeros = vec![0u8; align as usize];
        for (i, (_, n)) in self.layout()?.into_iter().enumerate() {
            let mut counted = Counting { inner: &mut *out, n: 0 };
            data(i, &mut counted)?;
            if counted.n != n {
                return Err(Error::Invalid {
                    what: format!("tensor '{}': wrote {} bytes, expected {}", self.tensors[i].name, counted.n, n),
                });
            }
            out.write_all(&zeros[..(pad(n, align) - n) as usize]).map_err(io)?;
        }
        Ok(())
    }

    /// Write to `path` through `path.tmp-<pid>-<n>` (unique per call, so concurrent writers of one path in one
    /// process cannot collide), renamed when complete.
    pub fn write_file(&self, path: &str, data: impl FnMut(usize, &mut dyn Write) -> Result<()>) -> Result<()> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = format!("{path}.tmp-{}-{n}", std::process::id());
        let res = (|| {
            let f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            self.write_to(&mut w, data)?;
            let f = w.into_inner().map_err(|e| Error::io(&tmp, e.into_error()))?;
            f.sync_all().map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res
    }
}

struct Counting<'a, W: Write> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn put_str(b: &mut Vec<u8>, s: &[u8]) {
    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
    b.extend_from_slice(s);
}

fn put_value(b: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => b.push(*x),
        Value::I8(x) => b.push(*x as u8),
        Value::U16(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => b.push(*x),
        Value::Str(s) => put_str(b, s),
        Value::U64(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => b.extend_from_slice(&x.to_le_bytes()),
        Value::Array(a) => put_array(b, a),
    }
}

fn put_array(b: &mut Vec<u8>, a: &Array) {
    b.extend_from_slice(&(a.elem_type() as u32).to_le_bytes());
    b.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! each {
        ($v:expr) => {
            for x in $v {
                b.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => b.extend_from_slice(v),
        Array::I8(v) => b.extend(v.iter().map(|&x| x as u8)),
        Array::Bool(v) => b.extend_from_slice(v),
        Array::U16(v) => each!(v),
        Array::I16(v) => each!(v),
        Array::U32(v) => each!(v),
        Array::I32(v) => each!(v),
        Array::F32(v) => each!(v),
        Array::U64(v) => each!(v),
        Array::I64(v) => each!(v),
        Array::F64(v) => each!(v),
        Array::Str(v) => {
            for s in v {
                put_str(b, s);
            }
        }
        Array::Array(v) => {
            for x in v {
                put_array(b, x);
            }
        }
    }
}
