//! Format table: trellis (KT), ternary (BN), Q8_KV and every row-interleaved `_R4/_R8/_R16` variant.
//!
//! `vec_dot_type` follows ik_llama.cpp's CPU pairing (ggml/src/ggml.c `type_traits_cpu` @ 8337e4cd). No group
//! dot products yet (`vec_dot: None`). Interleaved types whose base format is not (yet) registered resolve to
//! `None`, so the IQK `_R4` variants appear as soon as their base lands.

use super::interleave::{self as il, SPECS};
use super::{bitnet, iq1_r4, kt, q8_kv, Format};
use crate::quant::QType;
use crate::{Error, Result};

fn deq<const I: usize>(src: &[u8], dst: &mut [f32], ne0: usize) {
    let sp = &SPECS[I];
    if matches!(sp.q, QType::Q5_0_R4 | QType::Q6_0_R4) {
        return il::dequantize_q5_q6_r4(sp, src, dst, ne0);
    }
    match super::lookup(sp.base) {
        Some(b) => il::dequantize_with(sp, b, src, dst, ne0),
        // Unreachable: the type is only listed while its base is; NaN makes a contract breach visible.
        None => dst.fill(f32::NAN),
    }
}

fn quant<const I: usize>(src: &[f32], dst: &mut [u8], ne0: usize, im: Option<&[f32]>) {
    let sp = &SPECS[I];
    if let Some(b) = super::lookup(sp.base) {
        il::quantize_with(sp, b, src, dst, ne0, im);
    }
}

/// BF16_R16 from f32: ik converts by truncation (`repack_f32_bf16_r16`), not the rounding BF16 quantizer.
fn quant_bf16_r16(src: &[f32], dst: &mut [u8], ne0: usize, _im: Option<&[f32]>) {
    let mut tmp = vec![0u8; 16 * 2 * ne0];
    for (x, g) in src.chunks_exact(16 * ne0).zip(dst.chunks_exact_mut(32 * ne0)) {
        for (v, t) in x.iter().zip(tmp.chunks_exact_mut(2)) {
            t.copy_from_slice(&crate::quant::convert::f32_to_bf16_trunc(*v).to_le_bytes());
        }
        if let Some(sp) = il::spec(QType::BF16_R16) {
            il::repack_group(sp, ne0, &tmp, g);
        }
    }
}

macro_rules! ilf {
    ($i:literal, $q:ident, $vdt:ident) => {
        Format { qtype: QType::$q, dequantize: deq::<$i>, quantize: Some(quant::<$i>), vec_dot_type: QType::$vdt, vec_dot: None }
    };
}

/// Same order as `interleave::SPECS` (checked by `spec_order` below).
static IL: [Format; 25] = [
    ilf!(0, Q4_0_R8, Q8_2_X4),
    ilf!(1, Q8_0_R8, Q8_2_X4),
    ilf!(2, Q5_0_R4, Q8_2_X4),
    ilf!(3, Q6_0_R4, Q8_2_X4),
    ilf!(4, IQ4_NL_R4, Q8_2_X4),
    ilf!(5, MXFP4_R8, Q8_2_X4),
    ilf!(6, IQ4_XS_R8, Q8_K32),
    ilf!(7, Q2_K_R4, Q8_K),
    ilf!(8, Q3_K_R4, Q8_K),
    ilf!(9, Q4_K_R4, Q8_K32),
    ilf!(10, Q5_K_R4, Q8_K32),
    ilf!(11, Q6_K_R4, Q8_K),
    ilf!(12, IQ2_XXS_R4, Q8_K),
    ilf!(13, IQ2_XS_R4, Q8_K),
    ilf!(14, IQ2_S_R4, Q8_K),
    ilf!(15, IQ3_XXS_R4, Q8_K),
    ilf!(16, IQ3_S_R4, Q8_K),
    ilf!(17, IQ2_K_R4, Q8_K),
    ilf!(18, IQ3_K_R4, Q8_K),
    ilf!(19, IQ4_K_R4, Q8_K),
    ilf!(20, IQ5_K_R4, Q8_K),
    ilf!(21, IQ4_KS_R4, Q8_K32),
    ilf!(22, IQ5_KS_R4, Q8_K32),
    ilf!(23, IQ2_BN_R4, Q8_K16),
    Format { qtype: QType::BF16_R16, dequantize: deq::<24>, quantize: Some(quant_bf16_r16), vec_dot_type: QType::BF16, vec_dot: None },
];

pub(super) fn lookup(q: QType) -> Option<&'static Format> {
    if let Some(f) = IL.iter().find(|f| f.qtype == q) {
        // Only while the base format exists (IQK bases land separately).
        return super::lookup(q.base_type()).map(|_| f);
    }
    match q {
        QType::Q8_KV => Some(&q8_kv::Q8_KV),
        QType::Q8_KV_R8 => Some(&q8_kv::Q8_KV_R8),
        QType::Q8_K_R8 => Some(&q8_kv::Q8_K_R8),
        QType::IQ1_BN => Some(&bitnet::IQ1_BN),
        QType::IQ2_BN => Some(&bitnet::IQ2_BN),
        QType::IQ1_S_R4 => Some(&iq1_r4::IQ1_S_R4),
        QType::IQ1_M_R4 => Some(&iq1_r4::IQ1_M_R4),
        QType::IQ1_KT => Some(&kt::IQ1_KT),
        QType::IQ2_KT => Some(&kt::IQ2_KT),
        QType::IQ3_KT => Some(&kt::IQ3_KT),
        QType::IQ4_KT => Some(&kt::IQ4_KT),
        _ => None,
    }
}

/// Run-time repacking (`-rtr`, `llama-quantize --repack`): `base_rows` (whole rows of `q.base_type()`, a
/// multiple of `q`'s interleave) → `out` in `q`'s layout. Exact re-arrangement for every type except
/// Q8_K_R8 (f32 → f16 scale) and BF16_R16 (copied from BF16 rows).
pub fn repack_rows(q: QType, base_rows: &[u8], out: &mut [u8], ne0: usize) -> Result<()> {
    let bad = |what: String| Err(Error::Invalid { what });
    let base = q.base_type();
    let n = q.traits().interleave;
    if n <= 1 || base == q {
        return bad(format!("{} is not a row-interleaved type", q.name()));
    }
    let bt = base.traits();
    if ne0 == 0 || ne0 % bt.block != 0 || ne0 % q.traits().block != 0 {
        return bad(format!("{}: row length {ne0} is not a multiple of the block size", q.name()));
    }
    let rs_in = il::row_bytes(base, ne0);
    let rs_out = il::row_bytes(q, ne0);
    if base_rows.len() % (n * rs_in) != 0 || out.len() != base_rows.len() / rs_in * rs_out {
        return bad(format!(
            "{}: {} input bytes / {} output bytes do not hold whole groups of {n} rows of {ne0}",
            q.name(),
            base_rows.len(),
            out.len()
        ));
    }
    if q == QType::Q8_K_R8 {
        for (x, y) in base_rows.chunks_exact(8 * rs_in).zip(out.chunks_exact_mut(8 * rs_out)) {
            q8_kv::repack_q8_k_r8(x, y, ne0);
        }
        return Ok(());
    }
    if q == QType::Q8_KV_R8 {
        for (x, y) in base_rows.chunks_exact(8 * rs_in).zip(out.chunks_exact_mut(8 * rs_out)) {
            q8_kv::repack_q8_kv_r8(x, y, ne0);
        }
        return Ok(());
    }
    let Some(sp) = il::spec(q) else {
        return Err(Error::Unsupported { what: format!("repacking to {}", q.name()) });
    };
    for (x, y) in base_rows.chunks_exact(n * rs_in).zip(out.chunks_exact_mut(n * rs_out)) {
        il::repack_group(sp, ne0, x, y);
    }
    Ok(())
}

/// Inverse of `repack_rows` for the pure re-arrangements (tests, `--repack` round trips).
pub fn unpack_rows(q: QType, rows: &[u8], out: &mut [u8], ne0: usize) -> Result<()> {
    let Some(sp) = il::spec(q) else {
        return Err(Error::Unsupported { what: format!("unpacking {}", q.name()) });
    };
    let n = q.traits().interleave;
    let rs = il::row_bytes(q, ne0);
    if ne0 == 0 || ne0 % q.traits().block != 0 || rows.len() % (n * rs) != 0 || out.len() != rows.len() {
        return Err(Error::Invalid { what: format!("{}: bad sizes for unpack_rows", q.name()) });
    }
    for (x, y) in rows.chunks_exact(n * rs).zip(out.chunks_exact_mut(n * rs)) {
        il::unpack_group(sp, ne0, x, y);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_order() {
        assert_eq!(IL.len(), SPECS.len());
        for (f, s) in IL.iter().zip(SPECS) {
            assert_eq!(f.qtype, s.q);
            assert_eq!(s.base, s.q.base_type());
        }
    }
}
