//! Per-type format modules: scalar reference dequantize / quantize / vec_dot for each tensor type.
//!
//! `lookup(qtype)` resolves a type to its `Format` (a table of plain function pointers, filled once; the hot
//! path never matches on type). The scalar functions here are the spec that SIMD and CUDA kernels are tested
//! against (STYLE §2 rule 3); they are never removed when a fast path exists.
//!
//! Conventions for every function pointer:
//! * "rows" are whole rows of `ne0` elements; for row-interleaved types (`_R4/_R8/_R16`) `src`/`dst` hold whole
//!   groups of `interleave` rows and the function handles the interleaving.
//! * Encoded rows include the per-row metadata (`TypeTraits::row_meta`) at their start.

use crate::quant::QType;

mod table_basic;
mod table_interleaved;
mod table_iq;
mod table_iqk;

// --- basic formats (begin)
mod common;
mod float;
mod iq4;
mod kquants_hi;
mod kquants_lo;
mod legacy;
mod q1_0;
mod q8;
mod search;
mod values;
// --- basic formats (end)

// --- i-quant formats (begin)
mod grids;
mod iq1_m;
mod iq1_r4;
mod iq1_s;
mod iq2_s;
mod iq2_xs;
mod iq2_xxs;
mod iq3_s;
mod iq3_xxs;
mod iq_lattice;
// --- i-quant formats (end)

// --- interleaved/kt/bn formats (begin)
mod bitnet;
mod interleave;
mod interleave_iqk;
mod kt;
mod kt_quant;
mod kt_search;
mod q8_kv;
pub use legacy::{unpack_q5_0, unpack_q5_1};
pub use q8::unpack_q6_0;
pub use table_interleaved::{repack_rows, unpack_rows};
// --- interleaved/kt/bn formats (end)

// --- iqk formats (begin)
mod iqk_common;
mod iqk_k;
mod iqk_k_lo;
mod iqk_ks;
mod iqk_ks_lo;
mod iqk_kss;
// --- iqk formats (end)

/// Dequantize whole rows: `src` = k encoded rows (k a multiple of the interleave), `dst` = k·ne0 floats.
pub type DequantizeFn = fn(src: &[u8], dst: &mut [f32], ne0: usize);
/// Quantize whole rows: `src` = k·ne0 floats, `dst` = k encoded rows. `imatrix` (length ne0) weights the
/// error of each column when given (importance matrix); types that require one fall back to a uniform
/// weighting when it is `None`.
pub type QuantizeFn = fn(src: &[f32], dst: &mut [u8], ne0: usize, imatrix: Option<&[f32]>);
/// Dot product of one encoded weight row (`x`) with one activation row (`y`, encoded in `vec_dot_type`) of
/// `n` elements.
pub type VecDotFn = fn(n: usize, x: &[u8], y: &[u8]) -> f32;

/// The scalar reference of one type.
#[derive(Clone, Copy)]
pub struct Format {
    pub qtype: QType,
    pub dequantize: DequantizeFn,
    pub quantize: Option<QuantizeFn>,
    /// The activation type the dot product pairs this type with (ik `vec_dot_type`).
    pub vec_dot_type: QType,
    pub vec_dot: Option<VecDotFn>,
}

/// The format of `q`, or `None` when the engine does not implement it (yet).
pub fn lookup(q: QType) -> Option<&'static Format> {
    table_basic::lookup(q).or_else(|| table_iq::lookup(q)).or_else(|| table_iqk::lookup(q)).or_else(|| table_interleaved::lookup(q))
}
