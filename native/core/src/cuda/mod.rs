//! CUDA backend, loaded at run time (STYLE §1.6): the driver API through dlopen (driver.rs), devices and the
//! kernel module `ikl_kernels.fatbin` (device.rs), and the per-op offload of matrix multiplications (ops.rs).
//!
//! Placement: the caller hands `Model::open_placed` an explicit device per tensor name (policy lives in
//! TypeScript, src/engine/placement.ts). While the architecture binds its weights, `place` uploads each 2-D
//! weight planned on a GPU and attaches a `GpuMatrix` to its `QMatrix`; `cpu::ops::matmul_q` then runs that
//! matmul on the GPU (activations up, result down). A type without a CUDA kernel stays on the CPU and is listed
//! in `Resident::kept_on_cpu` (the caller warns, naming the tensor). 1-D tensors always stay on the CPU.

pub mod device;
pub mod driver;
pub mod ops;

use std::cell::RefCell;
use std::collections::HashMap;

use crate::cpu::ops::QMatrix;
use crate::error::{Error, Result};
pub use device::{devices, kernels_path, DeviceInfo};

/// Where one tensor lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl Device {
    /// `CPU`, `CUDA0`, `CUDA1`, … (case-insensitive), as `-ot` writes them.
    pub fn parse(s: &str) -> Result<Device> {
        let u = s.trim().to_ascii_uppercase();
        if u == "CPU" {
            return Ok(Device::Cpu);
        }
        match u.strip_prefix("CUDA").and_then(|n| n.parse::<usize>().ok()) {
            Some(i) => Ok(Device::Cuda(i)),
            None => Err(Error::Invalid { what: format!("unknown device '{s}' (expected CPU, CUDA0, CUDA1, …)") }),
        }
    }
}

/// An explicit device per tensor name; tensors not named stay on the CPU.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    pub by_name: HashMap<String, Device>,
}

impl Placement {
    pub fn device(&self, name: &str) -> Device {
        self.by_name.get(name).copied().unwrap_or(Device::Cpu)
    }

    pub fn uses_cuda(&self) -> bool {
        self.by_name.values().any(|d| matches!(d, Device::Cuda(_)))
    }
}

/// A weight resident on a GPU: its device, its rows in device memory and the matmul kernel of its type.
#[derive(Clone, Copy, Debug)]
pub struct GpuMatrix {
    pub gpu: usize,
    pub ptr: u64,
    pub func: usize,
}

/// What a model holds on GPUs: the device buffers (freed with the model) and the placement report.
#[derive(Default)]
pub struct Resident {
    bufs: Vec<device::DevBuf>,
    /// Weight bytes uploaded per device index.
    pub bytes: Vec<u64>,
    /// Tensors planned on a GPU that stay on the CPU, with the reason.
    pub kept_on_cpu: Vec<(String, String)>,
}

thread_local! {
    /// The plan and the collected buffers while a model binds its weights on this thread (`load_scope`).
    static LOAD: RefCell<Option<(Placement, Resident)>> = const { RefCell::new(None) };
}

/// Run `f` (an architecture's weight loading) with `plan` in force; returns its result and what was uploaded.
pub fn load_scope<T>(plan: &Placement, f: impl FnOnce() -> Result<T>) -> Result<(T, Resident)> {
    if plan.uses_cuda() {
        // Fail early, with the driver's reason, when the plan names a GPU on a machine without one.
        for d in plan.by_name.values() {
            if let Device::Cuda(i) = d {
                device::gpu(*i)?;
            }
        }
    }
    LOAD.with(|l| *l.borrow_mut() = Some((plan.clone(), Resident::default())));
    let out = f();
    let (_, resident) = LOAD.with(|l| l.borrow_mut().take()).unwrap_or_default();
    Ok((out?, resident))
}

/// The matmul kernel symbol of weight type `q` (`mmv_<ggml type name>`, lower case).
pub fn kernel_name(m: &QMatrix) -> String {
    format!("mmv_{}", m.fmt.qtype.name().to_ascii_lowercase())
}

/// Upload `m` to device `gpu` and attach its kernel. `Ok(None)` (and `m` unchanged) when its type has no CUDA
/// matmul kernel. The returned buffer owns the device copy: keep it alive as long as `m` is used.
pub fn upload(gpu: usize, m: &mut QMatrix) -> Result<Option<device::DevBuf>> {
    let g = device::gpu(gpu)?;
    let Some(func) = g.function(&kernel_name(m))? else { return Ok(None) };
    let bytes = m.row_bytes * m.ne1;
    let buf = device::DevBuf::alloc(g, bytes)?;
    buf.upload(g, &m.data[..bytes])?;
    m.gpu = Some(GpuMatrix { gpu, ptr: buf.ptr, func });
    Ok(Some(buf))
}

/// Called by `model::weights::bind` for every 2-D weight: upload it when the plan in force puts `name` on a GPU.
pub(crate) fn place(name: &str, mut m: QMatrix) -> Result<QMatrix> {
    LOAD.with(|l| {
        let mut guard = l.borrow_mut();
        let Some((plan, res)) = guard.as_mut() else { return Ok(m) };
        let Device::Cuda(i) = plan.device(name) else { return Ok(m) };
        match upload(i, &mut m)? {
            Some(buf) => {
                if res.bytes.len() <= i {
                    res.bytes.resize(i + 1, 0);
                }
                res.bytes[i] += buf.bytes as u64;
                res.bufs.push(buf);
            }
            None => {
                if !res.kept_on_cpu.iter().any(|(n, _)| n == name) {
                    let why = format!("type {} has no CUDA matmul kernel yet", m.fmt.qtype.name());
                    res.kept_on_cpu.push((name.to_string(), why));
                }
            }
        }
        Ok(m)
    })
}

/// Whether tests that need a GPU must fail instead of skipping (`make test-gpu` sets IKL_REQUIRE_CUDA=1).
pub fn require_cuda() -> bool {
    std::env::var("IKL_REQUIRE_CUDA").is_ok_and(|v| v == "1")
}
