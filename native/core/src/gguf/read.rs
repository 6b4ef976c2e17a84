//! GGUF reader (spec/gguf.md §3–§7, §10): parses header, metadata and tensor infos from a byte slice and
//! memory-maps the data section. Every length and count read from the file is checked against the bytes
//! that remain *before* anything is allocated, so corrupt or hostile files fail with `Error::Gguf` and never
//! allocate absurd amounts, read out of bounds, recurse without limit or panic.
//!
//! Mirrors ik_llama.cpp `ggml/src/ggml.c` `gguf_init_from_file` @ 8337e4cd, plus the checks its model loader
//! applies (data within file bounds) and the split-file rules of `llama-model-loader.cpp`.

use super::value::{Array, Value, ValueType};
use crate::error::{Error, Result};
use crate::quant::QType;

pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The reference keeps tensor names in a 64-byte buffer including the NUL.
pub const MAX_NAME_BYTES: usize = 63;
/// Nested arrays deeper than this are rejected (no key used by any engine nests at all).
const MAX_NESTING: u32 = 8;

/// One tensor-info record, with its data range resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions as stored (1..=4).
    pub n_dims: u32,
    /// `ne[0..4]`, missing trailing dims set to 1.
    pub ne: [u64; 4],
    pub qtype: QType,
    /// Offset relative to the data section of its file, as stored.
    pub offset: u64,
    /// Bytes of data (spec/gguf.md §6.4).
    pub nbytes: u64,
    /// Index of the file (split part) holding the data.
    pub file: usize,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.ne.iter().product()
    }
}

/// Parsed header, metadata and tensor table of one GGUF file (no data access).
#[derive(Clone, Debug)]
pub struct GgufHeader {
    pub version: u32,
    pub kv: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
    pub file_size: u64,
}

impl GgufHeader {
    /// First record with this key (the reference's lookup semantics).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kv.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Parse a complete file image. `path` is only used in error messages.
    pub fn parse(bytes: &[u8], path: &str) -> Result<GgufHeader> {
        let mut r = Reader { b: bytes, pos: 0, path };
        let magic = r.take(4)?;
        if magic != GGUF_MAGIC {
            return Err(Error::gguf(path, 0, format!("not a GGUF file (magic {:02x?})", magic)));
        }
        let version = r.u32()?;
        match version {
            2 | 3 => {}
            1 => return Err(Error::gguf(path, 4, "GGUF version 1 is no longer supported")),
            v if v & 0xFFFF == 0 && v != 0 => {
                return Err(Error::gguf(path, 4, "big-endian GGUF files are not supported"));
            }
            v => return Err(Error::gguf(path, 4, format!("unsupported GGUF version {v}"))),
        }
        let n_tensors = r.u64()?;
        let n_kv = r.u64()?;
        // Each KV record needs at least 8 (key len) + 4 (type) + 1 bytes, each tensor info at least 8+4+8+4+8.
        if n_kv > r.remaining() / 13 {
            return Err(Error::gguf(path, 16, format!("metadata count {n_kv} exceeds the file size")));
        }
        if n_tensors > r.remaining() / 32 {
            return Err(Error::gguf(path, 8, format!("tensor count {n_tensors} exceeds the file size")));
        }

        let mut kv = Vec::with_capacity(n_kv as usize);
        for _ in 0..n_kv {
            let key_at = r.pos as u64;
            let key = r.string()?;
            let key = String::from_utf8(key).map_err(|_| Error::gguf(path, key_at, "metadata key is not valid UTF-8"))?;
            let type_at = r.pos as u64;
            let t = r.u32()?;
            let vt = ValueType::from_u32(t).ok_or_else(|| Error::gguf(path, type_at, format!("key '{key}' has unknown value type {t}")))?;
            let v = r.value(vt, 0)?;
            kv.push((key, v));
        }

        let mut alignment = DEFAULT_ALIGNMENT;
        if let Some((_, v)) = kv.iter().find(|(k, _)| k == "general.alignment") {
            match v {
                Value::U32(a) if *a > 0 && a.is_power_of_two() => alignment = *a as u64,
                Value::U32(a) => return Err(Error::gguf(path, 0, format!("general.alignment {a} is not a power of two"))),
                other => {
                    return Err(Error::gguf(path, 0, format!("general.alignment must be UINT32, found {}", other.value_type().name())))
                }
            }
        }

        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors as usize);
        let mut names = std::collections::HashSet::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let at = r.pos as u64;
            let name = r.string()?;
            let name = String::from_utf8(name).map_err(|_| Error::gguf(path, at, "tensor name is not valid UTF-8"))?;
            if name.len() > MAX_NAME_BYTES {
                return Err(Error::gguf(path, at, format!("tensor name '{name}' is longer than {MAX_NAME_BYTES} bytes")));
            }
            let n_dims = r.u32()?;
            if n_dims > 4 {
                return Err(Error::gguf(path, at, format!("tensor '{name}' has {n_dims} dimensions (max 4)")));
            }
            let mut ne = [1u64; 4];
            for d in ne.iter_mut().take(n_dims as usize) {
                *d = r.u64()?;
                if *d == 0 || *d > i64::MAX as u64 {
                    return Err(Error::gguf(path, at, format!("tensor '{name}' has an invalid dimension {}", *d)));
                }
            }
            let n_el = ne.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d).filter(|&x| x <= i64::MAX as u64));
            if n_el.is_none() {
                return Err(Error::gguf(path, at, format!("tensor '{name}' element count overflows")));
            }
            let type_at = r.pos as u64;
            let tid = r.u32()?;
            let qtype =
                QType::from_id(tid).ok_or_else(|| Error::gguf(path, type_at, format!("tensor '{name}' has unknown type id {tid}")))?;
            let tr = qtype.traits();
            if ne[0] % tr.block as u64 != 0 {
                return Err(Error::gguf(
                    path,
                    at,
                    format!("tensor '{name}': row length {} is not a multiple of the {} block size {}", ne[0], tr.name, tr.block),
                ));
            }
            if tr.interleave > 1 && ne[1] % tr.interleave as u64 != 0 {
                return Err(Error::gguf(
                    path,
                    at,
                    format!("tensor '{name}': {} rows are not a multiple of {} required by {}", ne[1], tr.interleave, tr.name),
                ));
            }
            let offset = r.u64()?;
            if offset % alignment != 0 {
                return Err(Error::gguf(path, at, format!("tensor '{name}' offset {offset} is not aligned to {alignment}")));
            }
            let nbytes = qtype.tensor_bytes(&ne).ok_or_else(|| Error::gguf(path, at, format!("tensor '{name}' byte size overflows")))?;
            if !names.insert(name.clone()) {
                return Err(Error::gguf(path, at, format!("duplicate tensor name '{name}'")));
            }
            tensors.push(TensorInfo { name, n_dims, ne, qtype, offset, nbytes, file: 0 });
        }

        let file_size = bytes.len() as u64;
        let data_offset = pad(r.pos as u64, alignment);
        for t in &tensors {
            let end = data_offset.checked_add(t.offset).and_then(|x| x.checked_add(t.nbytes));
            match end {
                Some(e) if e <= file_size => {}
                _ => {
                    return Err(Error::gguf(
                        path,
                        data_offset,
                        format!(
                        "tensor '{}' data (offset {}, {} bytes) is not within the file bounds ({} bytes); the file is truncated or corrupt",
                        t.name, t.offset, t.nbytes, file_size
                    ),
                    ))
                }
            }
        }
        Ok(GgufHeader { version, kv, tensors, alignment, data_offset, file_size })
    }
}

pub fn pad(x: u64, n: u64) -> u64 {
    x.div_ceil(n) * n
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    path: &'a str,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> u64 {
        (self.b.len() - self.pos) as u64
    }

    fn eof(&self, what: &str, need: u64) -> Error {
        Error::gguf(
            self.path,
            self.pos as u64,
            format!("unexpected end of file reading {what} (need {need} bytes, {} left)", self.remaining()),
        )
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n as u64 > self.remaining() {
            return Err(self.eof("data", n as u64));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }

    fn string(&mut self) -> Result<Vec<u8>> {
        let at = self.pos as u64;
        let n = self.u64()?;
        if n > self.remaining() {
            return Err(Error::gguf(self.path, at, format!("string length {n} exceeds the file size")));
        }
        Ok(self.take(n as usize)?.to_vec())
    }

    fn value(&mut self, vt: ValueType, depth: u32) -> Result<Value> {
        Ok(match vt {
            ValueType::U8 => Value::U8(self.arr::<1>()?[0]),
            ValueType::I8 => Value::I8(self.arr::<1>()?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.arr()?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.arr()?)),
            ValueType::U32 => Value::U32(self.u32()?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.arr()?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.arr()?)),
            ValueType::Bool => Value::Bool(self.arr::<1>()?[0]),
            ValueType::Str => Value::Str(self.string()?),
            ValueType::U64 => Value::U64(self.u64()?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.arr()?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.arr()?)),
            ValueType::Array => Value::Array(self.array(depth)?),
        })
    }

    fn array(&mut self, depth: u32) -> Result<Array> {
        let at = self.pos as u64;
        if depth >= MAX_NESTING {
            return Err(Error::gguf(self.path, at, format!("arrays nested deeper than {MAX_NESTING}")));
        }
        let t = self.u32()?;
        let et = ValueType::from_u32(t).ok_or_else(|| Error::gguf(self.path, at, format!("array of unknown type {t}")))?;
        let n = self.u64()?;
        // Minimum encoded size per element: scalars their size, strings 8 (length), nested arrays 12.
        let min = et.scalar_size().unwrap_or(if et == ValueType::Str { 8 } else { 12 }) as u64;
        if n > self.remaining() / min {
            return Err(Error::gguf(self.path, at, format!("array length {n} exceeds the file size")));
        }
        let n = n as usize;
        macro_rules! scalars {
            ($v:ident, $t:ty) => {{
                let raw = self.take(n * std::mem::size_of::<$t>())?;
                Array::$v(
                    raw.chunks_exact(std::mem::size_of::<$t>()).map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or_default())).collect(),
                )
            }};
        }
        Ok(match et {
            ValueType::U8 => Array::U8(self.take(n)?.to_vec()),
            ValueType::I8 => Array::I8(self.take(n)?.iter().map(|&x| x as i8).collect()),
            ValueType::Bool => Array::Bool(self.take(n)?.to_vec()),
            ValueType::U16 => scalars!(U16, u16),
            ValueType::I16 => scalars!(I16, i16),
            ValueType::U32 => scalars!(U32, u32),
            ValueType::I32 => scalars!(I32, i32),
            ValueType::F32 => scalars!(F32, f32),
            ValueType::U64 => scalars!(U64, u64),
            ValueType::I64 => scalars!(I64, i64),
            ValueType::F64 => scalars!(F64, f64),
            ValueType::Str => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.string()?);
                }
                Array::Str(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.array(depth + 1)?);
                }
                Array::Array(v)
            }
        })
    }
}
