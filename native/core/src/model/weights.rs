//! Binding GGUF tensors to the engine: lookup with clear errors, shape checks, 1-D tensors dequantized to f32,
//! 2-D weights bound to their kernel-table entry. Shared by every architecture (model/<arch>.rs).

use crate::cpu::ops::QMatrix;
use crate::error::{Error, Result};
use crate::gguf::{GgufModel, TensorInfo};
use crate::quant::formats::lookup;
use crate::quant::QType;

pub(crate) fn find<'a>(g: &'a GgufModel, name: &str) -> Result<&'a TensorInfo> {
    g.tensor(name).ok_or_else(|| Error::Invalid { what: format!("missing tensor {name}") })
}

/// `t` must have exactly the dims `want` (trailing dims 1).
pub(crate) fn check_shape(t: &TensorInfo, want: &[u64]) -> Result<()> {
    let mut ne = [1u64; 4];
    ne[..want.len()].copy_from_slice(want);
    if t.ne != ne {
        return Err(Error::Shape {
            op: format!("tensor {}", t.name),
            expected: format!("{want:?}"),
            got: format!("{:?}", &t.ne[..t.n_dims as usize]),
        });
    }
    Ok(())
}

/// A 1-D tensor dequantized to f32 (norm weights, rope_freqs, biases).
pub(crate) fn vector(g: &GgufModel, name: &str, n: usize) -> Result<Vec<f32>> {
    let t = find(g, name)?;
    check_shape(t, &[n as u64])?;
    let f = lookup(t.qtype).ok_or_else(|| Error::Unsupported { what: format!("tensor {name} of type {}", t.qtype.name()) })?;
    let mut v = vec![0.0; n];
    (f.dequantize)(g.tensor_data(t), &mut v, n);
    Ok(v)
}

/// Bind `ne1` rows of `ne0` elements of type `q` at `data` (the model mmap or a buffer the weights own).
pub(crate) fn bind(name: &str, data: &[u8], q: QType, ne0: usize, ne1: usize) -> Result<QMatrix> {
    let unsupported = |why: &str| Error::Unsupported { what: format!("tensor {name} of type {}: {why}", q.name()) };
    let rb = q.row_size(ne0 as u64).ok_or_else(|| unsupported("row size not a whole number of blocks"))? as usize;
    if data.len() < rb * ne1 {
        return Err(Error::Invalid { what: format!("tensor {name}: {} bytes of data, need {}", data.len(), rb * ne1) });
    }
    // SAFETY: `data` points into the model's mmap (owned by `Model` next to these weights, dropped after
    // them) or into a heap buffer the weights own (never resized or dropped before the QMatrix values).
    let data: &'static [u8] = unsafe { std::mem::transmute::<&[u8], &'static [u8]>(&data[..rb * ne1]) };
    // Kernel table entry (quantize_act + gemm per NY), resolved once here (STYLE §2 rule 4).
    let m = QMatrix::new(data, q, ne0, ne1).ok_or_else(|| unsupported("no CPU kernels (dot product or activation quantizer)"))?;
    // Upload to a GPU when the placement in force (Model::open_placed) puts this tensor there.
    let m = crate::cuda::place(name, m)?;
    // -rtr: a CPU weight is repacked into its row-interleaved form when a repacking scope is in force.
    super::repack::apply(name, m)
}

/// A 2-D weight `[ne0 = in, ne1 = out]` from the mmap, bound to its kernels.
pub(crate) fn matrix(g: &GgufModel, name: &str, ne0: usize, ne1: usize) -> Result<QMatrix> {
    let t = find(g, name)?;
    check_shape(t, &[ne0 as u64, ne1 as u64])?;
    bind(name, g.tensor_data(t), t.qtype, ne0, ne1)
}
