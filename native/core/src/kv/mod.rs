//! KV cache: per-layer K and V buffers allocated once at context creation (`store`) and the cell bookkeeping
//! (`cells`). Layout (spec/models.md §2.4, flash-attention form): per cell, `n_head_kv · head_dim` contiguous
//! elements, for both K and V. Element types f16 (default, the reference's) or f32. Quantized cache types
//! are not implemented yet (`Error::Unsupported`).

pub mod cells;

use crate::error::{Error, Result};
use crate::quant::convert::{f16_to_f32, f32_to_f16};
use crate::quant::QType;
pub use cells::Cells;

/// Storage of one cache tensor.
pub enum KvBuf {
    F16(Vec<u16>),
    F32(Vec<f32>),
}

impl KvBuf {
    fn alloc(t: QType, n: usize, what: &str) -> Result<KvBuf> {
        let oom = |bytes: usize| Error::OutOfMemory {
            what: format!("{what}: {bytes} bytes for the KV cache; lower --ctx-size or use a smaller cache type"),
        };
        Ok(match t {
            QType::F16 => {
                let mut v = Vec::new();
                v.try_reserve_exact(n).map_err(|_| oom(n * 2))?;
                v.resize(n, 0u16);
                KvBuf::F16(v)
            }
            QType::F32 => {
                let mut v = Vec::new();
                v.try_reserve_exact(n).map_err(|_| oom(n * 4))?;
                v.resize(n, 0f32);
                KvBuf::F32(v)
            }
            other => {
                return Err(Error::Unsupported { what: format!("KV cache type {} (supported: f16, f32)", other.name()) })
            }
        })
    }

    /// Write `src` at element offset `off`.
    #[inline]
    pub fn write(&mut self, off: usize, src: &[f32]) {
        match self {
            KvBuf::F16(v) => v[off..off + src.len()].iter_mut().zip(src).for_each(|(d, &s)| *d = f32_to_f16(s)),
            KvBuf::F32(v) => v[off..off + src.len()].copy_from_slice(src),
        }
    }

    /// Read `dst.len()` elements from element offset `off` as f32.
    #[inline]
    pub fn read(&self, off: usize, dst: &mut [f32]) {
        let n = dst.len();
        match self {
            KvBuf::F16(v) => dst.iter_mut().zip(&v[off..off + n]).for_each(|(d, &s)| *d = f16_to_f32(s)),
            KvBuf::F32(v) => dst.copy_from_slice(&v[off..off + n]),
        }
    }

    /// Dot product of `q` with the elements at `off` (f32 accumulate).
    #[inline]
    pub fn dot(&self, off: usize, q: &[f32]) -> f32 {
        match self {
            KvBuf::F16(v) => q.iter().zip(&v[off..off + q.len()]).map(|(&a, &b)| a * f16_to_f32(b)).sum(),
            KvBuf::F32(v) => q.iter().zip(&v[off..off + q.len()]).map(|(&a, &b)| a * b).sum(),
        }
    }

    /// `acc += w · row(off)`.
    #[inline]
    pub fn axpy(&self, off: usize, w: f32, acc: &mut [f32]) {
        let n = acc.len();
        match self {
            KvBuf::F16(v) => acc.iter_mut().zip(&v[off..off + n]).for_each(|(a, &b)| *a += w * f16_to_f32(b)),
            KvBuf::F32(v) => acc.iter_mut().zip(&v[off..off + n]).for_each(|(a, &b)| *a += w * b),
        }
    }
}

/// The cache of one context.
pub struct KvCache {
    pub k: Vec<KvBuf>,
    pub v: Vec<KvBuf>,
    /// Elements per cell of one layer's K (n_head_kv · head_dim_k) and V.
    pub n_embd_k: usize,
    pub n_embd_v: usize,
    pub type_k: QType,
    pub type_v: QType,
    pub cells: Cells,
}

impl KvCache {
    pub fn new(n_layer: usize, n_ctx: usize, n_embd_k: usize, n_embd_v: usize, type_k: QType, type_v: QType) -> Result<KvCache> {
        let mut k = Vec::with_capacity(n_layer);
        let mut v = Vec::with_capacity(n_layer);
        for il in 0..n_layer {
            k.push(KvBuf::alloc(type_k, n_ctx * n_embd_k, &format!("layer {il} K ({n_ctx} cells × {n_embd_k})"))?);
            v.push(KvBuf::alloc(type_v, n_ctx * n_embd_v, &format!("layer {il} V ({n_ctx} cells × {n_embd_v})"))?);
        }
        Ok(KvCache { k, v, n_embd_k, n_embd_v, type_k, type_v, cells: Cells::new(n_ctx) })
    }

    /// Bytes held by the K and V buffers.
    pub fn bytes(&self) -> usize {
        let per = |t: QType| if t == QType::F16 { 2 } else { 4 };
        self.cells.n_ctx() * self.k.len() * (self.n_embd_k * per(self.type_k) + self.n_embd_v * per(self.type_v))
    }
}
