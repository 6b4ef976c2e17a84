//! ikl-node: the N-API face of ikl-core. Argument conversion only — no math, no printing.
//!
//! Exports (the contract is `src/engine/native.ts`): `abiVersion`, `systemInfo`, `qtypes`, `inspectGguf`,
//! `makeFixture`, `fixtureNames`, and the classes `Model`, `Context`, `Sampler` (model.rs, context.rs, sampler.rs).
//! Every export catches panics; long work runs on libuv workers (`AsyncTask`), never on the JS thread.

mod context;
mod errors;
mod inspect;
mod model;
pub mod quantize;
mod sample;
mod sampler;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;
use serde_json::{json, Value as Json};

use errors::{guarded, js_error};

#[napi]
pub fn abi_version() -> u32 {
    ikl_core::ABI_VERSION
}

/// CPU tier and features, thread count, CUDA devices.
#[napi(ts_return_type = "SystemInfo")]
pub fn system_info(env: Env) -> Result<Json> {
    guarded(|| {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Ok(json!({
            "abiVersion": ikl_core::ABI_VERSION,
            "version": env!("CARGO_PKG_VERSION"),
            "arch": std::env::consts::ARCH,
            "cpuTier": ikl_core::cpu::tier::tier().name(),
            "cpuFeatures": ikl_core::cpu::tier::features(),
            "threads": threads,
            "cuda": cuda_info(),
        }))
    })
    .map_err(|f| js_error(&env, f))
}

/// CUDA devices (driver loaded at run time), or why CUDA is unavailable. `kernels` lists the weight types with a
/// CUDA matmul kernel in the loaded fatbin (empty when no GPU could be opened).
fn cuda_info() -> Json {
    use ikl_core::cuda;
    let devices = match cuda::devices() {
        Ok(d) if d.is_empty() => return json!({ "available": false, "reason": "no CUDA device", "devices": [], "kernels": [] }),
        Ok(d) => d,
        Err(e) => return json!({ "available": false, "reason": reason(&e), "devices": [], "kernels": [] }),
    };
    let devs: Vec<Json> = devices
        .iter()
        .map(|d| {
            json!({ "index": d.index, "name": d.name, "cc": format!("{}.{}", d.cc_major, d.cc_minor),
                    "freeBytes": d.free_bytes, "totalBytes": d.total_bytes })
        })
        .collect();
    match cuda::device::gpu(0) {
        Ok(g) => {
            let kernels: Vec<&str> = ikl_core::quant::ALL
                .iter()
                .filter(|q| g.function(&format!("mmv_{}", q.name().to_ascii_lowercase())).ok().flatten().is_some())
                .map(|q| q.name())
                .collect();
            json!({ "available": true, "devices": devs, "kernels": kernels })
        }
        Err(e) => json!({ "available": false, "reason": reason(&e), "devices": devs, "kernels": [] }),
    }
}

/// One line saying why CUDA is unavailable: the driver's own words for load failures (code −1: no libcuda,
/// missing symbol, no fatbin), else the full `CUDA error in <call>: … (code N)`.
fn reason(e: &ikl_core::Error) -> String {
    match e {
        ikl_core::Error::Cuda { code: -1, msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

/// The type registry, for TypeScript name lists.
#[napi(ts_return_type = "QTypeInfo[]")]
pub fn qtypes() -> Json {
    use ikl_core::quant::registry::{Cuda, Role};
    let v: Vec<Json> = ikl_core::quant::ALL
        .iter()
        .map(|q| {
            let t = q.traits();
            let cuda = match t.cuda {
                Cuda::Cublas => "cublas",
                Cuda::Full => "full",
                Cuda::Mmvq => "mmvq",
                Cuda::No => "no",
                Cuda::NotApplicable => "n/a",
            };
            let role = match t.role {
                Role::Weight => "weight",
                Role::Plain => "plain",
                Role::Activation => "activation",
                Role::Foreign => "foreign",
                Role::Internal => "internal",
            };
            json!({"id": t.id, "name": t.name, "enumName": q.enum_name(), "block": t.block, "typeSize": t.type_size,
                   "rowMeta": t.row_meta, "interleave": t.interleave, "cuda": cuda, "role": role, "mainline": t.mainline})
        })
        .collect();
    Json::Array(v)
}

/// A JSON document handed to JavaScript as plain objects (async task results need `TypeName`).
pub struct JsonOut(Json);

impl TypeName for JsonOut {
    fn type_name() -> &'static str {
        "Object"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for JsonOut {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        // SAFETY: called by napi-rs on the JS thread with a live env, as for any ToNapiValue.
        unsafe { Json::to_napi_value(env, val.0) }
    }
}

pub struct InspectTask {
    path: String,
    max_array: i64,
}

impl Task for InspectTask {
    type Output = std::result::Result<Json, errors::Failure>;
    type JsValue = JsonOut;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(guarded(|| inspect::inspect(&self.path, self.max_array)))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<JsonOut> {
        out.map(JsonOut).map_err(|f| js_error(&env, f))
    }
}

/// Parse a GGUF model (all split parts) and describe it. `maxArray` < 0 returns arrays whole.
#[napi(ts_return_type = "Promise<GgufInspect>")]
pub fn inspect_gguf(path: String, max_array: i64) -> AsyncTask<InspectTask> {
    AsyncTask::new(InspectTask { path, max_array })
}

/// Options of `makeFixture` (see `src/engine/native.ts` `FixtureOptions`).
#[napi(object)]
pub struct FixtureOpts {
    pub ftype: String,
    pub mla_form: String,
    pub seed: f64,
    pub vocab_dir: String,
}

pub struct FixtureTask {
    name: String,
    out: String,
    opts: FixtureOpts,
}

impl Task for FixtureTask {
    type Output = std::result::Result<(), errors::Failure>;
    type JsValue = ();

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(guarded(|| {
            use ikl_core::fixtures::{write_model, FixtureOptions, FixtureType, MlaForm};
            let invalid = |what: String| ikl_core::Error::Invalid { what };
            let ftype = match self.opts.ftype.as_str() {
                "f16" => FixtureType::F16,
                "f32" => FixtureType::F32,
                o => return Err(invalid(format!("fixture type '{o}' is not f16 or f32"))),
            };
            let mla_form = match self.opts.mla_form.as_str() {
                "kvb" => MlaForm::KvB,
                "split" => MlaForm::Split,
                "both" => MlaForm::Both,
                o => return Err(invalid(format!("MLA form '{o}' is not kvb, split or both"))),
            };
            if !(self.opts.seed >= 0.0 && self.opts.seed <= 9007199254740991.0 && self.opts.seed.fract() == 0.0) {
                return Err(invalid(format!("fixture seed {} is not a non-negative integer", self.opts.seed)));
            }
            let opts = FixtureOptions { ftype, mla_form, seed: self.opts.seed as u64, vocab_dir: self.opts.vocab_dir.clone().into() };
            write_model(&self.name, &opts, &self.out)
        }))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<()> {
        out.map_err(|f| js_error(&env, f))
    }
}

/// Write a synthetic fixture model (tests and `make models`); see `fixtureNames()`.
#[napi(ts_return_type = "Promise<void>")]
pub fn make_fixture(name: String, out_path: String, opts: FixtureOpts) -> AsyncTask<FixtureTask> {
    AsyncTask::new(FixtureTask { name, out: out_path, opts })
}

/// Names of the fixture models the generator knows.
#[napi]
pub fn fixture_names() -> Vec<String> {
    ikl_core::fixtures::model_names().iter().map(|s| s.to_string()).collect()
}
