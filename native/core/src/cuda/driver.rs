//! The CUDA driver API, loaded at run time: `dlopen("libcuda.so.1")` once, every entry point resolved by name
//! into a table of function pointers (no link-time CUDA dependency; the engine builds and runs without a GPU).
//! Every call goes through `cu!`, which turns a non-zero `CUresult` into `Error::Cuda` carrying the call name,
//! the code and `cuGetErrorString` (llm.c check macros, tinygrad `check`).
//! Not here: devices and kernels (device.rs), launches (ops.rs).

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::sync::OnceLock;

use crate::error::{Error, Result};

pub type CUresult = c_int;
pub type CUdevice = c_int;
pub type CUdeviceptr = u64;
pub type Ptr = *mut c_void;

/// `CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR` / `_MINOR` (cuda.h).
pub const ATTR_CC_MAJOR: c_int = 75;
pub const ATTR_CC_MINOR: c_int = 76;
/// `CUDA_ERROR_NOT_FOUND`: `cuModuleGetFunction` of a symbol the fatbin does not have.
pub const ERROR_NOT_FOUND: CUresult = 500;

macro_rules! driver_api {
    ($( $name:ident ( $($arg:ty),* ) ; )*) => {
        /// Entry points of libcuda.so.1 (the `_v2` names are the 64-bit ABI that cuda.h maps the plain names to).
        #[allow(non_snake_case)]
        pub struct Driver {
            $( pub $name: unsafe extern "C" fn($($arg),*) -> CUresult, )*
        }

        impl Driver {
            /// Resolve every entry point in `lib` (a handle from dlopen).
            fn resolve(lib: Ptr) -> std::result::Result<Driver, String> {
                Ok(Driver { $( $name: {
                    let sym = concat!(stringify!($name), "\0");
                    // SAFETY: `lib` is a live dlopen handle and `sym` is NUL-terminated.
                    let p = unsafe { libc::dlsym(lib, sym.as_ptr() as *const c_char) };
                    if p.is_null() {
                        return Err(format!("libcuda.so.1 lacks {} (driver too old?)", stringify!($name)));
                    }
                    // SAFETY: the symbol has this C signature in cuda.h for every driver since CUDA 11.
                    unsafe { std::mem::transmute::<Ptr, unsafe extern "C" fn($($arg),*) -> CUresult>(p) }
                }, )* })
            }
        }
    };
}

driver_api! {
    cuInit(c_uint);
    cuDriverGetVersion(*mut c_int);
    cuGetErrorString(CUresult, *mut *const c_char);
    cuDeviceGetCount(*mut c_int);
    cuDeviceGet(*mut CUdevice, c_int);
    cuDeviceGetName(*mut c_char, c_int, CUdevice);
    cuDeviceGetAttribute(*mut c_int, c_int, CUdevice);
    cuDeviceTotalMem_v2(*mut usize, CUdevice);
    cuDevicePrimaryCtxRetain(*mut Ptr, CUdevice);
    cuCtxSetCurrent(Ptr);
    cuMemGetInfo_v2(*mut usize, *mut usize);
    cuModuleLoadData(*mut Ptr, *const c_void);
    cuModuleGetFunction(*mut Ptr, Ptr, *const c_char);
    cuLaunchKernel(Ptr, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, Ptr, *mut Ptr, *mut Ptr);
    cuMemAlloc_v2(*mut CUdeviceptr, usize);
    cuMemFree_v2(CUdeviceptr);
    cuMemcpyHtoD_v2(CUdeviceptr, *const c_void, usize);
    cuMemcpyDtoH_v2(*mut c_void, CUdeviceptr, usize);
    cuCtxSynchronize();
}

// SAFETY: the table holds plain function pointers into libcuda, which is thread-safe per the CUDA docs.
unsafe impl Send for Driver {}
// SAFETY: as above; the table is immutable after loading.
unsafe impl Sync for Driver {}

/// Call a driver entry point and check its result: `cu!(d, cuInit(0))?`.
/// Every use is an FFI call whose arguments the caller has checked (live pointers, sizes in bounds); the
/// argument expressions are plain values and pointers, which is why they may expand inside the unsafe block.
macro_rules! cu {
    ($d:expr, $f:ident ( $($a:expr),* $(,)? )) => {{
        let d: &$crate::cuda::driver::Driver = $d;
        // SAFETY: see the macro's contract: arguments are valid for this driver call.
        let r = unsafe { (d.$f)($($a),*) };
        d.check(stringify!($f), r)
    }};
}
pub(crate) use cu;

impl Driver {
    /// `Ok(())` for CUDA_SUCCESS, else `Error::Cuda { call, code, msg }`.
    pub fn check(&self, call: &str, r: CUresult) -> Result<()> {
        if r == 0 {
            return Ok(());
        }
        Err(Error::Cuda { call: call.to_string(), code: r, msg: self.error_string(r) })
    }

    pub fn error_string(&self, r: CUresult) -> String {
        let mut s: *const c_char = std::ptr::null();
        // SAFETY: cuGetErrorString writes a pointer to a static string (or leaves it null for unknown codes).
        let ok = unsafe { (self.cuGetErrorString)(r, &mut s) } == 0;
        if ok && !s.is_null() {
            // SAFETY: the driver returns a NUL-terminated static string.
            unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
        } else {
            format!("CUDA error {r}")
        }
    }
}

/// Why the driver could not be loaded: kept as text so the failure is cached once and reported every time.
struct LoadFailure {
    call: String,
    code: i32,
    msg: String,
}

fn load() -> std::result::Result<Driver, LoadFailure> {
    let fail = |call: &str, code: i32, msg: String| LoadFailure { call: call.into(), code, msg };
    // SAFETY: dlopen with a NUL-terminated name; RTLD_NOW resolves everything up front.
    let lib = unsafe { libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if lib.is_null() {
        return Err(fail("dlopen", -1, "libcuda.so.1 not found (no NVIDIA driver installed)".into()));
    }
    let d = Driver::resolve(lib).map_err(|m| fail("dlsym", -1, m))?;
    // SAFETY: cuInit with flags 0 is the documented first call.
    let r = unsafe { (d.cuInit)(0) };
    if r != 0 {
        return Err(fail("cuInit", r, d.error_string(r)));
    }
    Ok(d)
}

/// The process-wide driver table, loaded and initialised on first use. The error says why CUDA is unavailable.
pub fn driver() -> Result<&'static Driver> {
    static DRIVER: OnceLock<std::result::Result<Driver, LoadFailure>> = OnceLock::new();
    match DRIVER.get_or_init(load) {
        Ok(d) => Ok(d),
        Err(f) => Err(Error::Cuda { call: f.call.clone(), code: f.code, msg: f.msg.clone() }),
    }
}
