//! CUDA devices: enumeration (name, compute capability, free/total memory) and the per-device runtime — the
//! primary context, the kernel module loaded from `ikl_kernels.fatbin`, kernels looked up by name once, device
//! memory (`DevBuf`, freed on drop) and the scratch buffers of the per-op offload (ops.rs).
//! A kernel symbol missing from the fatbin means "this op/type has no CUDA kernel": a capability, not a crash.

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::driver::cu;
use super::driver::{driver, CUdevice, CUdeviceptr, Driver, Ptr, ATTR_CC_MAJOR, ATTR_CC_MINOR, ERROR_NOT_FOUND};
use crate::error::{Error, Result};

/// One CUDA device as `systemInfo` and `ikl --version` show it.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub index: usize,
    pub name: String,
    pub cc_major: i32,
    pub cc_minor: i32,
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// Every visible device (CUDA_VISIBLE_DEVICES applies). Free memory is read through the primary context.
pub fn devices() -> Result<Vec<DeviceInfo>> {
    let d = driver()?;
    let mut n = 0;
    cu!(d, cuDeviceGetCount(&mut n))?;
    (0..n as usize).map(|i| device_info(d, i)).collect()
}

fn device_info(d: &Driver, index: usize) -> Result<DeviceInfo> {
    let mut dev: CUdevice = 0;
    cu!(d, cuDeviceGet(&mut dev, index as i32))?;
    let mut name = [0 as c_char; 256];
    cu!(d, cuDeviceGetName(name.as_mut_ptr(), name.len() as i32, dev))?;
    // SAFETY: the driver wrote a NUL-terminated name into the buffer (zero-filled, so terminated anyway).
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().trim().to_string();
    let (mut major, mut minor) = (0, 0);
    cu!(d, cuDeviceGetAttribute(&mut major, ATTR_CC_MAJOR, dev))?;
    cu!(d, cuDeviceGetAttribute(&mut minor, ATTR_CC_MINOR, dev))?;
    let mut ctx: Ptr = std::ptr::null_mut();
    cu!(d, cuDevicePrimaryCtxRetain(&mut ctx, dev))?;
    cu!(d, cuCtxSetCurrent(ctx))?;
    let (mut free, mut total) = (0usize, 0usize);
    cu!(d, cuMemGetInfo_v2(&mut free, &mut total))?;
    Ok(DeviceInfo { index, name, cc_major: major, cc_minor: minor, free_bytes: free as u64, total_bytes: total as u64 })
}

/// Where the kernel artifact is: `IKL_KERNELS`, else `ikl_kernels.fatbin` beside the library that holds this code
/// (dist/ikl.node → dist/ikl_kernels.fatbin), else `dist/ikl_kernels.fatbin` in an ancestor of it (test binaries
/// under native/target find the repository's dist/).
pub fn kernels_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IKL_KERNELS") {
        return Some(PathBuf::from(p));
    }
    let lib = own_library_path()?;
    for dir in lib.ancestors().skip(1) {
        for cand in [dir.join("ikl_kernels.fatbin"), dir.join("dist/ikl_kernels.fatbin")] {
            if cand.is_file() {
                return Some(cand);
            }
        }
    }
    None
}

fn own_library_path() -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe_zeroed_dl_info();
    // SAFETY: dladdr only reads the address of a function of this library and fills `info`.
    let ok = unsafe { libc::dladdr(kernels_path as *const c_void, &mut info) } != 0;
    if !ok || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated path owned by the loader.
    let s = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
    std::fs::canonicalize(Path::new(&s)).ok()
}

fn unsafe_zeroed_dl_info() -> libc::Dl_info {
    libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    }
}

/// Device memory, freed when dropped.
pub struct DevBuf {
    pub gpu: usize,
    pub ptr: CUdeviceptr,
    pub bytes: usize,
}

impl DevBuf {
    pub fn alloc(gpu: &Gpu, bytes: usize) -> Result<DevBuf> {
        gpu.make_current()?;
        let mut ptr = 0;
        let r = cu!(gpu.d, cuMemAlloc_v2(&mut ptr, bytes.max(1)));
        if let Err(Error::Cuda { code: 2, .. }) = r {
            return Err(Error::OutOfMemory { what: format!("{bytes} bytes on CUDA{}", gpu.index) });
        }
        r?;
        Ok(DevBuf { gpu: gpu.index, ptr, bytes })
    }

    /// Copy `src` (at most `bytes`) to the start of the buffer; synchronous.
    pub fn upload(&self, gpu: &Gpu, src: &[u8]) -> Result<()> {
        crate::ensure!(src.len() <= self.bytes, Error::Invalid { what: "upload larger than its device buffer".into() });
        gpu.make_current()?;
        cu!(gpu.d, cuMemcpyHtoD_v2(self.ptr, src.as_ptr() as *const c_void, src.len()))
    }
}

impl Drop for DevBuf {
    fn drop(&mut self) {
        if let Ok(g) = gpu(self.gpu) {
            if g.make_current().is_ok() {
                // A failed free at teardown leaves nothing to recover; the context goes with the process.
                let _ = cu!(g.d, cuMemFree_v2(self.ptr));
            }
        }
    }
}

/// Activation and result buffers of the per-op offload, grown on demand (sized by the largest op seen).
pub struct Scratch {
    pub x: Option<DevBuf>,
    pub y: Option<DevBuf>,
    /// Host f32 copy of the activation rows (decoded from the CPU's activation encoding).
    pub host: Vec<f32>,
}

/// The runtime of one device: primary context, kernel module, kernel lookup cache, scratch.
pub struct Gpu {
    pub index: usize,
    pub d: &'static Driver,
    ctx: usize,
    module: usize,
    funcs: Mutex<HashMap<String, Option<usize>>>,
    /// Serialises per-op offloads on this device (one set of scratch buffers, the legacy stream).
    pub scratch: Mutex<Scratch>,
}

impl Gpu {
    fn open(d: &'static Driver, index: usize, image: &[u8]) -> Result<Gpu> {
        let mut dev: CUdevice = 0;
        cu!(d, cuDeviceGet(&mut dev, index as i32))?;
        let mut ctx: Ptr = std::ptr::null_mut();
        cu!(d, cuDevicePrimaryCtxRetain(&mut ctx, dev))?;
        cu!(d, cuCtxSetCurrent(ctx))?;
        let mut module: Ptr = std::ptr::null_mut();
        cu!(d, cuModuleLoadData(&mut module, image.as_ptr() as *const c_void))?;
        let scratch = Mutex::new(Scratch { x: None, y: None, host: Vec::new() });
        Ok(Gpu { index, d, ctx: ctx as usize, module: module as usize, funcs: Mutex::new(HashMap::new()), scratch })
    }

    /// Make this device's context current on the calling thread (cheap; needed before every driver call).
    pub fn make_current(&self) -> Result<()> {
        cu!(self.d, cuCtxSetCurrent(self.ctx as Ptr))
    }

    /// The kernel `name`, or `None` when the fatbin has no such symbol. Looked up once per name.
    pub fn function(&self, name: &str) -> Result<Option<usize>> {
        let mut map = self.funcs.lock().map_err(|_| Error::Invalid { what: "CUDA kernel table poisoned".into() })?;
        if let Some(&f) = map.get(name) {
            return Ok(f);
        }
        self.make_current()?;
        let cname = CString::new(name).map_err(|_| Error::Invalid { what: format!("kernel name {name:?}") })?;
        let mut f: Ptr = std::ptr::null_mut();
        // SAFETY: module is live for the process; cname is NUL-terminated.
        let r = unsafe { (self.d.cuModuleGetFunction)(&mut f, self.module as Ptr, cname.as_ptr()) };
        let v = match r {
            0 => Some(f as usize),
            ERROR_NOT_FOUND => None,
            _ => return Err(Error::Cuda { call: "cuModuleGetFunction".into(), code: r, msg: self.d.error_string(r) }),
        };
        map.insert(name.to_string(), v);
        Ok(v)
    }
}

struct GpusFailure {
    call: String,
    code: i32,
    msg: String,
}

/// The runtime of device `index`; all devices are opened (context + module) on first use.
pub fn gpu(index: usize) -> Result<&'static Gpu> {
    static GPUS: OnceLock<std::result::Result<Vec<Gpu>, GpusFailure>> = OnceLock::new();
    let all = GPUS.get_or_init(|| {
        let to_f = |e: Error| match e {
            Error::Cuda { call, code, msg } => GpusFailure { call, code, msg },
            other => GpusFailure { call: "load kernels".into(), code: -1, msg: other.to_string() },
        };
        let d = driver().map_err(to_f)?;
        let path = kernels_path().ok_or_else(|| GpusFailure {
            call: "load kernels".into(),
            code: -1,
            msg: "ikl_kernels.fatbin not found beside the engine (build it with `make cuda`, or set IKL_KERNELS)".into(),
        })?;
        let mut image = std::fs::read(&path).map_err(|e| to_f(Error::io(&path.to_string_lossy(), e)))?;
        image.push(0);
        let n = devices().map_err(to_f)?.len();
        (0..n).map(|i| Gpu::open(d, i, &image).map_err(to_f)).collect()
    });
    match all {
        Ok(v) => v.get(index).ok_or_else(|| Error::Invalid { what: format!("CUDA{index}: no such device ({} present)", v.len()) }),
        Err(f) => Err(Error::Cuda { call: f.call.clone(), code: f.code, msg: f.msg.clone() }),
    }
}
