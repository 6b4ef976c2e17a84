//! GGUF files: one parser and one writer shared by model loading, quantize and `gguf-dump`.
//!
//! `GgufFile` is one memory-mapped file; `GgufModel` is a whole model, which may be split over several files
//! (`<prefix>-00001-of-0000N.gguf`, spec/gguf.md §10): opening the first part opens all, metadata comes from
//! the first part, and tensors carry the index of the file that holds their data.

pub mod read;
pub mod value;
pub mod write;

pub use read::{GgufHeader, TensorInfo};
pub use value::{Array, Value, ValueType};
pub use write::{GgufWriter, WriteTensor};

use crate::error::{Error, Result};

/// One memory-mapped GGUF file.
pub struct GgufFile {
    pub path: String,
    pub header: GgufHeader,
    map: memmap2::Mmap,
}

impl GgufFile {
    pub fn open(path: &str) -> Result<GgufFile> {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = f.metadata().map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::Invalid { what: format!("{path}: is a directory, not a GGUF file") });
        }
        if meta.len() < 24 {
            return Err(Error::gguf(path, 0, format!("file is too small to be GGUF ({} bytes)", meta.len())));
        }
        // SAFETY: the mapping is read-only and private to this process; model files are not expected to be
        // modified while mapped (the same contract as ik_llama.cpp's mmap loading). All reads through it are
        // bounds-checked against the mapped length.
        let map = unsafe { memmap2::MmapOptions::new().map(&f) }.map_err(|e| Error::io(path, e))?;
        let header = GgufHeader::parse(&map, path)?;
        Ok(GgufFile { path: path.to_string(), header, map })
    }

    /// Raw bytes of the whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Data bytes of tensor `t` (whose `file` must be this file); bounds were checked at parse time.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let start = (self.header.data_offset + t.offset) as usize;
        &self.map[start..start + t.nbytes as usize]
    }
}

/// A model: one file, or all parts of a split model.
pub struct GgufModel {
    pub files: Vec<GgufFile>,
    /// All tensors of all parts, in part order then info order; `TensorInfo::file` indexes `files`.
    pub tensors: Vec<TensorInfo>,
}

impl GgufModel {
    pub fn open(path: &str) -> Result<GgufModel> {
        let first = GgufFile::open(path)?;
        let count = split_u16(&first, "split.count")?.unwrap_or(1);
        if count <= 1 {
            let tensors = first.header.tensors.clone();
            return Ok(GgufModel { files: vec![first], tensors });
        }
        let no = split_u16(&first, "split.no")?.unwrap_or(0);
        if no != 0 {
            return Err(Error::Invalid {
                what: format!("{path} is part {} of {count} of a split model; open the first part (-00001-of-{count:05}.gguf)", no + 1),
            });
        }
        let suffix = format!("-00001-of-{count:05}.gguf");
        let prefix = path.strip_suffix(&suffix).ok_or_else(|| Error::Invalid {
            what: format!("{path}: split model (split.count = {count}) but the file name does not end in '{suffix}'"),
        })?;
        let mut files = vec![first];
        for i in 1..count {
            let p = format!("{prefix}-{:05}-of-{count:05}.gguf", i + 1);
            if !std::path::Path::new(&p).exists() {
                return Err(Error::Invalid { what: format!("split model part {} of {count} is missing: {p}", i + 1) });
            }
            let f = GgufFile::open(&p)?;
            let n = split_u16(&f, "split.no")?;
            if n != Some(i) {
                return Err(Error::gguf(&p, 0, format!("split.no is {n:?}, expected {i}")));
            }
            files.push(f);
        }
        let mut tensors = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (fi, f) in files.iter().enumerate() {
            for t in &f.header.tensors {
                if !seen.insert(t.name.clone()) {
                    return Err(Error::gguf(&f.path, 0, format!("tensor '{}' appears in more than one split part", t.name)));
                }
                tensors.push(TensorInfo { file: fi, ..t.clone() });
            }
        }
        if let Some(v) = files[0].header.get("split.tensors.count") {
            let want = v.as_i64().unwrap_or(-1);
            if want != tensors.len() as i64 {
                return Err(Error::gguf(path, 0, format!("split.tensors.count is {want} but the parts hold {} tensors", tensors.len())));
            }
        }
        Ok(GgufModel { files, tensors })
    }

    /// Metadata of the model (the first part's).
    pub fn header(&self) -> &GgufHeader {
        &self.files[0].header
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.header().get(key)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        self.files[t.file].tensor_data(t)
    }

    /// Total bytes of all parts.
    pub fn file_size(&self) -> u64 {
        self.files.iter().map(|f| f.header.file_size).sum()
    }
}

fn split_u16(f: &GgufFile, key: &str) -> Result<Option<u16>> {
    match f.header.get(key) {
        None => Ok(None),
        Some(Value::U16(v)) => Ok(Some(*v)),
        // Tolerate other integer widths written by third-party tools.
        Some(v) => match v.as_i64().and_then(|x| u16::try_from(x).ok()) {
            Some(x) => Ok(Some(x)),
            None => Err(Error::gguf(&f.path, 0, format!("{key} has an invalid value"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::QType;

    fn sample() -> GgufWriter {
        let mut w = GgufWriter::new();
        w.set("general.architecture", Value::str("llama"));
        w.set("general.alignment", Value::U32(64));
        w.set("a.u8", Value::U8(7));
        w.set("a.i8", Value::I8(-7));
        w.set("a.u16", Value::U16(65535));
        w.set("a.i16", Value::I16(-3));
        w.set("a.u32", Value::U32(123456));
        w.set("a.i32", Value::I32(-123456));
        w.set("a.f32", Value::F32(1.5));
        w.set("a.bool", Value::bool(true));
        w.set("a.u64", Value::U64(u64::MAX));
        w.set("a.i64", Value::I64(i64::MIN));
        w.set("a.f64", Value::F64(-2.25));
        w.set("a.empty", Value::Array(Array::I32(vec![])));
        w.set("a.strs", Value::Array(Array::Str(vec![b"x".to_vec(), vec![], "\u{2581}t".as_bytes().to_vec()])));
        w.set("a.nested", Value::Array(Array::Array(vec![Array::U8(vec![1, 2]), Array::F64(vec![0.5])])));
        w.add_tensor(WriteTensor::new("t.f32", QType::F32, &[3, 2]));
        w.add_tensor(WriteTensor::new("t.q4_0", QType::Q4_0, &[64, 2, 1, 1]));
        w.add_tensor(WriteTensor::new("t.iq4_ks", QType::IQ4_KS, &[256, 4]));
        w
    }

    fn write_mem(w: &GgufWriter) -> Vec<u8> {
        let mut out = Vec::new();
        let layout = w.layout().unwrap();
        w.write_to(&mut out, |i, o| {
            let n = layout[i].1 as usize;
            o.write_all(&(0..n).map(|k| (k * 31 + i) as u8).collect::<Vec<_>>()).map_err(|e| Error::io("mem", e))
        })
        .unwrap();
        out
    }

    #[test]
    fn write_read_round_trip_is_byte_identical() {
        let w = sample();
        let bytes = write_mem(&w);
        let h = GgufHeader::parse(&bytes, "mem").unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.alignment, 64);
        assert_eq!(h.data_offset % 64, 0);
        assert_eq!(h.kv, w.kv);
        assert_eq!(h.tensors.len(), 3);
        assert_eq!(h.tensors[1].nbytes, 2 * 18 * 2);
        assert_eq!(h.tensors[2].nbytes, 4 * (136 + 4));
        // Re-write from what we read.
        let mut w2 = GgufWriter { version: h.version, kv: h.kv.clone(), tensors: vec![] };
        for t in &h.tensors {
            w2.add_tensor(WriteTensor { name: t.name.clone(), ne: t.ne, n_dims: Some(t.n_dims), qtype: t.qtype });
        }
        let mut out = Vec::new();
        w2.write_to(&mut out, |i, o| {
            let t = &h.tensors[i];
            let s = (h.data_offset + t.offset) as usize;
            o.write_all(&bytes[s..s + t.nbytes as usize]).map_err(|e| Error::io("mem", e))
        })
        .unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn truncations_fail_cleanly() {
        let bytes = write_mem(&sample());
        let h = GgufHeader::parse(&bytes, "mem").unwrap();
        let last = h.tensors.last().unwrap();
        // Only the trailing padding of the last tensor may be missing.
        let data_end = (h.data_offset + last.offset + last.nbytes) as usize;
        assert!(GgufHeader::parse(&bytes[..data_end], "mem").is_ok());
        for n in 0..data_end {
            assert!(GgufHeader::parse(&bytes[..n], "mem").is_err(), "prefix {n} parsed");
        }
    }

    #[test]
    fn rejects_bad_headers() {
        let good = write_mem(&sample());
        let mut b = good.clone();
        b[4] = 1;
        assert!(GgufHeader::parse(&b, "m").unwrap_err().to_string().contains("version 1"));
        let mut b = good.clone();
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(GgufHeader::parse(&b, "m").unwrap_err().to_string().contains("metadata count"));
        let mut b = good.clone();
        b[0] = b'X';
        assert!(GgufHeader::parse(&b, "m").unwrap_err().to_string().contains("not a GGUF"));
    }
}
