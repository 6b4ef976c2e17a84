//! Per-op offload: `out = x · Wᵀ` for a weight resident on a GPU. The activation rows arrive encoded by the
//! CPU's `quantize_act` (whatever activation format the CPU tier pairs with the weight: q8_0, q8_2_x4, q8_K, f32…);
//! they are decoded back to f32 with that format's reference `dequantize` — exactly the values the CPU's dot
//! products use — copied to the device, multiplied by the `mmv_<type>` kernel (native/kernels/mmv.cu), and the
//! f32 result is copied back. Synchronous, on the legacy stream; the full on-GPU forward pass (activations
//! staying on the device) is later work.

use std::ffi::c_void;

use super::device::{gpu, DevBuf, Scratch};
use super::driver::cu;
use super::GpuMatrix;
use crate::cpu::ops::QMatrix;
use crate::error::{Error, Result};

/// Weight rows per thread block (one warp each) and activation rows per block (kernel template constants in
/// native/kernels/mmv.cu: `MMV_ROWS`, `MMV_NY`).
const ROWS_PER_BLOCK: usize = 4;
const NY_PER_BLOCK: usize = 8;

fn grow(slot: &mut Option<DevBuf>, g: &super::device::Gpu, bytes: usize) -> Result<u64> {
    if !matches!(slot, Some(b) if b.bytes >= bytes) {
        *slot = None; // free the old one first: the new one may need its memory
        *slot = Some(DevBuf::alloc(g, bytes)?);
    }
    Ok(slot.as_ref().map_or(0, |b| b.ptr))
}

/// `out[j * m.ne1 + r] = W[r] · x[j]` for `n_rows` encoded activation rows `xq` (each `m.act_row_bytes`).
pub fn matmul(gm: &GpuMatrix, m: &QMatrix, xq: &[u8], n_rows: usize, out: &mut [f32]) -> Result<()> {
    let (n_out, arb) = (m.ne1, m.act_row_bytes);
    crate::ensure!(
        xq.len() >= n_rows * arb && out.len() >= n_rows * n_out,
        Error::Invalid { what: "CUDA matmul: buffers too small".into() }
    );
    if n_rows == 0 {
        return Ok(());
    }
    let g = gpu(gm.gpu)?;
    let mut s = g.scratch.lock().map_err(|_| Error::Invalid { what: "CUDA scratch poisoned".into() })?;
    let Scratch { x, y, host } = &mut *s;
    let k = m.ne0;
    if host.len() < n_rows * k {
        host.resize(n_rows * k, 0.0);
    }
    for (r, dst) in host.chunks_exact_mut(k).take(n_rows).enumerate() {
        (m.act.dequantize)(&xq[r * arb..(r + 1) * arb], dst, k);
    }
    let x_bytes = n_rows * k * 4;
    let y_bytes = n_rows * n_out * 4;
    let xp = grow(x, g, x_bytes)?;
    let yp = grow(y, g, y_bytes)?;
    g.make_current()?;
    cu!(g.d, cuMemcpyHtoD_v2(xp, host.as_ptr() as *const c_void, x_bytes))?;
    launch_mmv(g, gm.func, gm.ptr, m.row_bytes, xp, k, yp, n_out, k, n_out, n_rows)?;
    cu!(g.d, cuMemcpyDtoH_v2(out.as_mut_ptr() as *mut c_void, yp, y_bytes))
}

/// Launch `mmv_<type>(W, w_stride bytes, Y f32, y_stride floats, out, ldo, n, nrows, ny)` over a grid of
/// `ceil(nrows / ROWS_PER_BLOCK) × ceil(ny / NY_PER_BLOCK)` blocks of 32 × ROWS_PER_BLOCK threads.
pub fn launch_mmv(
    g: &super::device::Gpu,
    func: usize,
    w: u64,
    w_stride: usize,
    y: u64,
    y_stride: usize,
    out: u64,
    ldo: usize,
    n: usize,
    nrows: usize,
    ny: usize,
) -> Result<()> {
    let too_big = |what: &str| Error::Invalid { what: format!("CUDA matmul: {what} exceeds the kernel's 32-bit range") };
    let n32 = i32::try_from(n).map_err(|_| too_big("row length"))?;
    let nrows32 = i32::try_from(nrows).map_err(|_| too_big("row count"))?;
    let ny32 = i32::try_from(ny).map_err(|_| too_big("activation rows"))?;
    let (mut w, mut ws, mut y, mut ys, mut o, mut ld) = (w, w_stride as i64, y, y_stride as i64, out, ldo as i64);
    let (mut n32, mut nrows32, mut ny32) = (n32, nrows32, ny32);
    let mut params: [*mut c_void; 9] = [
        &mut w as *mut u64 as *mut c_void,
        &mut ws as *mut i64 as *mut c_void,
        &mut y as *mut u64 as *mut c_void,
        &mut ys as *mut i64 as *mut c_void,
        &mut o as *mut u64 as *mut c_void,
        &mut ld as *mut i64 as *mut c_void,
        &mut n32 as *mut i32 as *mut c_void,
        &mut nrows32 as *mut i32 as *mut c_void,
        &mut ny32 as *mut i32 as *mut c_void,
    ];
    let gx = nrows.div_ceil(ROWS_PER_BLOCK) as u32;
    let gy = u32::try_from(ny.div_ceil(NY_PER_BLOCK)).map_err(|_| too_big("grid"))?;
    g.make_current()?;
    let f = func as *mut c_void;
    cu!(g.d, cuLaunchKernel(f, gx, gy, 1, 32, ROWS_PER_BLOCK as u32, 1, 0, std::ptr::null_mut(), params.as_mut_ptr(), std::ptr::null_mut()))
}
