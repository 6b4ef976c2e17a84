//! Multi-head latent attention helpers (spec/models.md §4, spec/gguf.md §15.4): load-time conversions between
//! the `attn_kv_b` form and the split `attn_k_b` / `attn_v_b` form of the KV up-projection.
//!
//! `attn_kv_b` `[r_kv, H·(nope+d_v)]`: row `h·(nope+d_v) + r`, element `c` = `W[h][r][c]`.
//! `attn_k_b`  `[nope, H·r_kv]`:      row `h·r_kv + c`,       element `n` = `W[h][n][c]` (K block transposed).
//! `attn_v_b`  `[r_kv, H·d_v]`:       row `h·d_v + j`,        element `c` = `W[h][nope+j][c]`.

use crate::error::{Error, Result};
use crate::quant::formats::lookup;
use crate::quant::QType;

/// Geometry of the up-projection.
#[derive(Clone, Copy, Debug)]
pub struct Geom {
    pub n_head: usize,
    pub nope: usize,
    pub d_v: usize,
    pub r_kv: usize,
}

fn dequant_rows(t: QType, data: &[u8], ne0: usize, n_rows: usize) -> Result<Vec<f32>> {
    let f = lookup(t).ok_or_else(|| Error::Unsupported { what: format!("MLA tensor of type {}", t.name()) })?;
    let rb = t.row_size(ne0 as u64).ok_or_else(|| Error::Invalid { what: "MLA tensor row size".into() })? as usize;
    let mut out = vec![0.0f32; ne0 * n_rows];
    for r in 0..n_rows {
        (f.dequantize)(&data[r * rb..(r + 1) * rb], &mut out[r * ne0..(r + 1) * ne0], ne0);
    }
    Ok(out)
}

/// The type a transposed block is re-encoded in: float types are kept (the transposition is then exact),
/// quantized ones become Q8_0 (spec §4.3, as the reference does for `wk_b`).
pub fn transposed_type(t: QType) -> QType {
    match t {
        QType::F32 | QType::F16 | QType::BF16 => t,
        _ => QType::Q8_0,
    }
}

fn encode_rows(t: QType, x: &[f32], ne0: usize) -> Result<Vec<u8>> {
    let f = lookup(t).ok_or_else(|| Error::Unsupported { what: format!("MLA re-encoding to {}", t.name()) })?;
    let q = f.quantize.ok_or_else(|| Error::Unsupported { what: format!("MLA re-encoding to {} (no quantizer)", t.name()) })?;
    let rb = t.row_size(ne0 as u64).ok_or_else(|| Error::Unsupported { what: format!("MLA rows of {ne0} in {}", t.name()) })? as usize;
    let n_rows = x.len() / ne0;
    let mut out = vec![0u8; rb * n_rows];
    for r in 0..n_rows {
        q(&x[r * ne0..(r + 1) * ne0], &mut out[r * rb..(r + 1) * rb], ne0, None);
    }
    Ok(out)
}

/// Rebuild `attn_kv_b` from the split form: K rows are the per-head transposes of `attn_k_b` (re-encoded in
/// `transposed_type(k_type)`), V rows are copied from `attn_v_b` (decoded and re-encoded in the same type, so
/// float types are exact). Returns the bytes and their type.
pub fn kv_b_from_split(g: Geom, k_type: QType, k_b: &[u8], v_type: QType, v_b: &[u8]) -> Result<(Vec<u8>, QType)> {
    let Geom { n_head: h, nope, d_v, r_kv: r } = g;
    let kf = dequant_rows(k_type, k_b, nope, h * r)?; // [H·r, nope]
    let vf = dequant_rows(v_type, v_b, r, h * d_v)?; // [H·d_v, r]
    let t = if transposed_type(k_type) == v_type { v_type } else { transposed_type(k_type) };
    let mut w = vec![0.0f32; h * (nope + d_v) * r];
    for hh in 0..h {
        let base = hh * (nope + d_v);
        for n in 0..nope {
            let row = &mut w[(base + n) * r..(base + n + 1) * r];
            for (c, x) in row.iter_mut().enumerate() {
                *x = kf[(hh * r + c) * nope + n];
            }
        }
        w[(base + nope) * r..(base + nope + d_v) * r].copy_from_slice(&vf[hh * d_v * r..(hh + 1) * d_v * r]);
    }
    Ok((encode_rows(t, &w, r)?, t))
}

/// Derive `wk_b` (`[nope, H·r_kv]`, the split form's `attn_k_b`) from `attn_kv_b` (spec §4.3): dequantize the
/// K rows of each head, transpose, re-encode in `transposed_type`.
pub fn k_b_from_kv_b(g: Geom, t: QType, kv_b: &[u8]) -> Result<(Vec<u8>, QType)> {
    let Geom { n_head: h, nope, d_v, r_kv: r } = g;
    let w = dequant_rows(t, kv_b, r, h * (nope + d_v))?;
    let mut kb = vec![0.0f32; h * r * nope];
    for hh in 0..h {
        for n in 0..nope {
            let row = &w[(hh * (nope + d_v) + n) * r..][..r];
            for (c, &x) in row.iter().enumerate() {
                kb[(hh * r + c) * nope + n] = x;
            }
        }
    }
    let tt = transposed_type(t);
    Ok((encode_rows(tt, &kb, nope)?, tt))
}

/// Derive `wv_b` (`[r_kv, H·d_v]`) from `attn_kv_b`: the V rows of each head copied verbatim.
pub fn v_b_from_kv_b(g: Geom, t: QType, kv_b: &[u8]) -> Result<Vec<u8>> {
    let Geom { n_head: h, nope, d_v, r_kv: r } = g;
    let rb = t.row_size(r as u64).ok_or_else(|| Error::Invalid { what: "attn_kv_b row size".into() })? as usize;
    let mut out = Vec::with_capacity(h * d_v * rb);
    for hh in 0..h {
        let r0 = hh * (nope + d_v) + nope;
        out.extend_from_slice(&kv_b[r0 * rb..(r0 + d_v) * rb]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kv_b → (k_b, v_b) → kv_b is exact for float types, and k_b holds the per-head transposed K block.
    #[test]
    fn split_round_trip_f16() {
        let g = Geom { n_head: 3, nope: 4, d_v: 2, r_kv: 8 };
        let n = g.n_head * (g.nope + g.d_v) * g.r_kv;
        let w: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
        let kv_b = encode_rows(QType::F16, &w, g.r_kv).unwrap();
        let (k_b, kt) = k_b_from_kv_b(g, QType::F16, &kv_b).unwrap();
        let v_b = v_b_from_kv_b(g, QType::F16, &kv_b).unwrap();
        assert_eq!(kt, QType::F16);
        let kf = dequant_rows(QType::F16, &k_b, g.nope, g.n_head * g.r_kv).unwrap();
        // k_b row h·r + c, element n = W[h][n][c]
        assert_eq!(kf[(2 * g.r_kv + 5) * g.nope + 3], w[(2 * (g.nope + g.d_v) + 3) * g.r_kv + 5]);
        let (back, t) = kv_b_from_split(g, kt, &k_b, QType::F16, &v_b).unwrap();
        assert_eq!(t, QType::F16);
        assert_eq!(back, kv_b);
        assert_eq!(transposed_type(QType::Q4_0), QType::Q8_0);
    }
}
