//! Scalar conversions that must be exact (spec/quants.md §1.3): f16 ↔ f32, bf16 ↔ f32, nearest_int.
//!
//! Ports of ggml's software paths (`ggml-impl.h` `ggml_compute_fp16_to_fp32` / `ggml_compute_fp32_to_fp16`
//! @ 8337e4cd). F16C hardware conversion gives identical results for every finite input, and these give
//! `0x7E00 | sign` for NaN as the spec requires.

#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let w = (h as u32) << 16;
    let sign = w & 0x8000_0000;
    let two_w = w.wrapping_add(w);
    let exp_offset: u32 = 0xE0 << 23;
    let exp_scale = f32::from_bits(0x0780_0000); // 0x1.0p-112
    let normalized = f32::from_bits((two_w >> 4) + exp_offset) * exp_scale;
    let magic_mask: u32 = 126 << 23;
    let denormalized = f32::from_bits((two_w >> 17) | magic_mask) - 0.5;
    let cutoff: u32 = 1 << 27;
    f32::from_bits(sign | if two_w < cutoff { denormalized.to_bits() } else { normalized.to_bits() })
}

#[inline]
pub fn f32_to_f16(f: f32) -> u16 {
    let scale_to_inf = f32::from_bits(0x7780_0000); // 0x1.0p+112
    let scale_to_zero = f32::from_bits(0x0880_0000); // 0x1.0p-110
    let mut base = (f.abs() * scale_to_inf) * scale_to_zero;
    let w = f.to_bits();
    let shl1_w = w.wrapping_add(w);
    let sign = w & 0x8000_0000;
    let mut bias = shl1_w & 0xFF00_0000;
    if bias < 0x7100_0000 {
        bias = 0x7100_0000;
    }
    base += f32::from_bits((bias >> 1) + 0x0780_0000);
    let bits = base.to_bits();
    let exp_bits = (bits >> 13) & 0x0000_7C00;
    let mantissa_bits = bits & 0x0000_0FFF;
    let nonsign = exp_bits + mantissa_bits;
    ((sign >> 16) | if shl1_w > 0xFF00_0000 { 0x7E00 } else { nonsign }) as u16
}

#[inline]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Round-to-nearest-even f32 → bf16 (NaN stays NaN, quiet bit set).
#[inline]
pub fn f32_to_bf16(f: f32) -> u16 {
    let u = f.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 0x40) as u16;
    }
    ((u + 0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// Truncating f32 → bf16, used by the BF16_R16 repacker.
#[inline]
pub fn f32_to_bf16_trunc(f: f32) -> u16 {
    (f.to_bits() >> 16) as u16
}

/// ggml `nearest_int`: round half to even for |f| < 2^22 (adds 1.5·2^23 and reads the mantissa).
#[inline]
pub fn nearest_int(f: f32) -> i32 {
    let val = f + 12_582_912.0;
    ((val.to_bits() & 0x007f_ffff) as i32) - 0x0040_0000
}

/// `nearest_int(a·b)` as the reference build computes it: GCC contracts the inlined `a*b + 1.5·2^23` into one
/// FMA (`-march=native`, `-ffp-contract=fast`), so the product is rounded only once, together with the shift.
#[inline]
pub fn nearest_int_mul(a: f32, b: f32) -> i32 {
    let val = a.mul_add(b, 12_582_912.0);
    ((val.to_bits() & 0x007f_ffff) as i32) - 0x0040_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trips_every_value() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert_eq!(f32_to_f16(f) & 0x7fff, 0x7E00);
            } else {
                assert_eq!(f32_to_f16(f), h, "h={h:#06x}");
            }
        }
    }

    #[test]
    fn f16_rounding() {
        assert_eq!(f32_to_f16(1.0), 0x3C00);
        assert_eq!(f32_to_f16(65520.0), 0x7C00); // overflow → inf
        assert_eq!(f32_to_f16(1.0 + 1.0 / 2048.0), 0x3C00); // tie → even
        assert_eq!(f32_to_f16(1.0 + 3.0 / 2048.0), 0x3C02);
        assert_eq!(f32_to_f16(-0.0), 0x8000);
        assert_eq!(f32_to_f16(5.96e-8), 0x0001);
    }

    #[test]
    fn bf16_and_nearest_int() {
        assert_eq!(f32_to_bf16(1.0), 0x3F80);
        assert_eq!(bf16_to_f32(0x3F80), 1.0);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(3.5), 4);
        assert_eq!(nearest_int(-2.5), -2);
        assert_eq!(nearest_int(-7.6), -8);
    }
}
