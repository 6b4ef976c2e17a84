//! Flash attention's P·V product for one tile of cells: `acc[r][·] += Σ_j p[r][j] · v[j][·]` for `rows` query
//! rows and `nt` decoded V rows, register-blocked (up to 4 query rows × 16 values per pass over the tile). Every
//! element is accumulated with one FMA per cell in cell order (the `dv % 8` tail with a multiply and an add), which
//! are the operations of one `attn::axpy` per (row, cell) in that order: results equal that loop's bit for bit.

/// `acc` is `rows × dv`, `p` is `rows × ldp` (cells `0..nt` used), `v` is `nt × dv`.
pub fn pv_tile(acc: &mut [f32], dv: usize, p: &[f32], ldp: usize, v: &[f32], rows: usize, nt: usize) {
    assert!(acc.len() >= rows * dv && v.len() >= nt * dv && (rows == 0 || p.len() >= (rows - 1) * ldp + nt));
    #[cfg(target_arch = "x86_64")]
    if super::kernels::avx2_ok() {
        // SAFETY: AVX2+FMA present; every access is inside the lengths asserted above.
        unsafe { x86::pv(acc.as_mut_ptr(), dv, p.as_ptr(), ldp, v.as_ptr(), rows, nt) };
        return;
    }
    for r in 0..rows {
        for j in 0..nt {
            super::attn::axpy(&mut acc[r * dv..(r + 1) * dv], p[r * ldp + j], &v[j * dv..(j + 1) * dv]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `RB` query rows × `W` vectors of 8 values starting at column `d`.
    #[inline(always)]
    unsafe fn block<const RB: usize, const W: usize>(
        acc: *mut f32,
        dv: usize,
        p: *const f32,
        ldp: usize,
        v: *const f32,
        nt: usize,
        d: usize,
    ) {
        let mut a = [[_mm256_setzero_ps(); W]; RB];
        for (i, ai) in a.iter_mut().enumerate() {
            for (k, x) in ai.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(acc.add(i * dv + d + 8 * k));
            }
        }
        for j in 0..nt {
            let mut vv = [_mm256_setzero_ps(); W];
            for (k, x) in vv.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(v.add(j * dv + d + 8 * k));
            }
            for (i, ai) in a.iter_mut().enumerate() {
                let w = _mm256_set1_ps(*p.add(i * ldp + j));
                for (x, &y) in ai.iter_mut().zip(&vv) {
                    *x = _mm256_fmadd_ps(w, y, *x);
                }
            }
        }
        for (i, ai) in a.iter().enumerate() {
            for (k, x) in ai.iter().enumerate() {
                _mm256_storeu_ps(acc.add(i * dv + d + 8 * k), *x);
            }
        }
    }

    #[inline(always)]
    unsafe fn rows<const RB: usize>(acc: *mut f32, dv: usize, p: *const f32, ldp: usize, v: *const f32, nt: usize) {
        let mut d = 0;
        while d + 16 <= dv {
            block::<RB, 2>(acc, dv, p, ldp, v, nt, d);
            d += 16;
        }
        if d + 8 <= dv {
            block::<RB, 1>(acc, dv, p, ldp, v, nt, d);
            d += 8;
        }
        for i in 0..RB {
            for j in 0..nt {
                let w = *p.add(i * ldp + j);
                for e in d..dv {
                    *acc.add(i * dv + e) += w * *v.add(j * dv + e);
                }
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn pv(acc: *mut f32, dv: usize, p: *const f32, ldp: usize, v: *const f32, n_rows: usize, nt: usize) {
        let mut r = 0;
        while r < n_rows {
            let (a, pr) = (acc.add(r * dv), p.add(r * ldp));
            match n_rows - r {
                1 => rows::<1>(a, dv, pr, ldp, v, nt),
                2 => rows::<2>(a, dv, pr, ldp, v, nt),
                3 => rows::<3>(a, dv, pr, ldp, v, nt),
                _ => rows::<4>(a, dv, pr, ldp, v, nt),
            }
            r += 4;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-identical to one `axpy` per (row, cell) in cell order, for row counts 1..9 and widths with 16-, 8- and
    /// scalar-wide tails.
    #[test]
    fn equals_the_axpy_loop() {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for (rows, dv, nt) in [(1, 64, 32), (3, 96, 17), (4, 512, 32), (7, 128, 5), (9, 40, 31), (5, 8, 1)] {
            let ldp = nt + 3;
            let p: Vec<f32> = (0..rows * ldp).map(|_| next()).collect();
            let v: Vec<f32> = (0..nt * dv).map(|_| next()).collect();
            let a0: Vec<f32> = (0..rows * dv).map(|_| next()).collect();
            let mut want = a0.clone();
            for r in 0..rows {
                for j in 0..nt {
                    crate::cpu::attn::axpy(&mut want[r * dv..(r + 1) * dv], p[r * ldp + j], &v[j * dv..(j + 1) * dv]);
                }
            }
            let mut got = a0.clone();
            pv_tile(&mut got, dv, &p, ldp, &v, rows, nt);
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "rows {rows} dv {dv} nt {nt}");
        }
    }
}
