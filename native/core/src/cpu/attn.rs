//! Attention helper kernels (AVX2+FMA+F16C) with their scalar twins: f16 row → f32 and `acc += w · x`.
//! The K·Q and V·P products use the GEMM table (`cpu/table.rs`) of the cache types.

use crate::quant::convert::f16_to_f32;

/// `dst[i] = f32(src f16 bytes[i])`, scalar twin.
pub fn f16_row_scalar(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = f16_to_f32(u16::from_le_bytes([s[0], s[1]]));
    }
}

/// `acc[i] += w · x[i]`, scalar twin.
pub fn axpy_scalar(acc: &mut [f32], w: f32, x: &[f32]) {
    for (a, &b) in acc.iter_mut().zip(x) {
        *a += w * b;
    }
}

/// `dst[i] = f32(src f16 bytes[i])`.
pub fn f16_row(src: &[u8], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::kernels::avx2_ok() {
        assert!(src.len() >= dst.len() * 2);
        // SAFETY: AVX2+F16C present; lengths checked.
        unsafe { x86::f16_row(src.as_ptr(), dst.as_mut_ptr(), dst.len()) };
        return;
    }
    f16_row_scalar(src, dst)
}

/// `acc[i] += w · x[i]`.
pub fn axpy(acc: &mut [f32], w: f32, x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::kernels::avx2_ok() {
        assert!(x.len() >= acc.len());
        // SAFETY: AVX2+FMA present; lengths checked.
        unsafe { x86::axpy(acc.as_mut_ptr(), w, x.as_ptr(), acc.len()) };
        return;
    }
    axpy_scalar(acc, w, x)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn f16_row(src: *const u8, dst: *mut f32, n: usize) {
        let mut i = 0;
        while i + 8 <= n {
            _mm256_storeu_ps(dst.add(i), _mm256_cvtph_ps(_mm_loadu_si128(src.add(2 * i) as *const __m128i)));
            i += 8;
        }
        while i < n {
            *dst.add(i) = crate::quant::convert::f16_to_f32(u16::from_le_bytes([*src.add(2 * i), *src.add(2 * i + 1)]));
            i += 1;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy(acc: *mut f32, w: f32, x: *const f32, n: usize) {
        let wv = _mm256_set1_ps(w);
        let mut i = 0;
        while i + 8 <= n {
            _mm256_storeu_ps(acc.add(i), _mm256_fmadd_ps(wv, _mm256_loadu_ps(x.add(i)), _mm256_loadu_ps(acc.add(i))));
            i += 8;
        }
        while i < n {
            *acc.add(i) += w * *x.add(i);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::convert::f32_to_f16;

    #[test]
    fn simd_matches_scalar() {
        let n = 45;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let bytes: Vec<u8> = x.iter().flat_map(|&v| f32_to_f16(v).to_le_bytes()).collect();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        f16_row(&bytes, &mut a);
        f16_row_scalar(&bytes, &mut b);
        assert_eq!(a, b);
        let (mut a, mut b) = (x.clone(), x.clone());
        axpy(&mut a, 0.3, &x);
        axpy_scalar(&mut b, 0.3, &x);
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-6));
    }
}
