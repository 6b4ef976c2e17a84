//! `ikl quantize` exports: `readImatrix` (names and sizes of an importance-matrix file), `quantizerTypes` (types
//! the engine can quantize to) and the class `QuantizeJob` (`run(params)` on a libuv worker; `progress()`
//! polled from JS; `abort()` stops it between row chunks, leaving no output). The plan — which tensor gets
//! which type, which imatrix entry feeds which tensor — is computed in TypeScript (src/engine/recipes.ts).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ikl_core::gguf::Value;
use ikl_core::quant::QType;
use ikl_core::quantize::{run, Job, Progress};
use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;
use serde_json::{json, Value as Json};

use crate::errors::{guarded, js_error, Failure};
use crate::JsonOut;

pub struct ImatrixTask {
    path: String,
}

impl Task for ImatrixTask {
    type Output = std::result::Result<Json, Failure>;
    type JsValue = JsonOut;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(guarded(|| {
            let m = ikl_core::imatrix::read(&self.path)?;
            let entries: Vec<Json> = m.order.iter().map(|n| json!({"name": n, "nValues": m.entries[n].len()})).collect();
            Ok(json!({"format": m.format, "entries": entries, "chunks": m.chunks, "dataset": m.dataset}))
        }))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<JsonOut> {
        out.map(JsonOut).map_err(|f| js_error(&env, f))
    }
}

/// Entry names and value counts of an imatrix file (legacy `.dat` or GGUF).
#[napi(ts_return_type = "Promise<ImatrixInfo>")]
pub fn read_imatrix(path: String) -> AsyncTask<ImatrixTask> {
    AsyncTask::new(ImatrixTask { path })
}

/// ggml names of the types that have a quantizer in this build.
#[napi]
pub fn quantizer_types() -> Vec<String> {
    ikl_core::quant::ALL
        .iter()
        .filter(|&&q| ikl_core::quant::formats::lookup(q).is_some_and(|f| f.quantize.is_some()))
        .map(|q| q.name().to_string())
        .collect()
}

/// One metadata record written into the output (`str` or `int`, as the reference's kv overrides).
#[napi(object)]
pub struct KvOverride {
    pub key: String,
    pub str: Option<String>,
    pub int: Option<i64>,
}

/// Which imatrix entry feeds which tensor (the reference's name fallbacks are resolved in TypeScript).
#[napi(object)]
pub struct ImatrixUse {
    pub tensor: String,
    pub entry: String,
}

#[napi(object)]
pub struct QuantizeParams {
    pub src: String,
    pub dst: String,
    /// ggml type name of every source tensor's output, in source order.
    pub types: Vec<String>,
    pub threads: u32,
    pub ftype: u32,
    pub imatrix_path: Option<String>,
    pub imatrix_use: Option<Vec<ImatrixUse>>,
    pub kv: Option<Vec<KvOverride>>,
}

struct State {
    progress: Progress,
    cancel: AtomicBool,
    busy: AtomicBool,
}

#[napi]
pub struct QuantizeJob {
    state: Arc<State>,
}

pub struct RunTask {
    state: Arc<State>,
    params: QuantizeParams,
}

fn invalid(what: String) -> ikl_core::Error {
    ikl_core::Error::Invalid { what }
}

impl RunTask {
    fn execute(&self) -> ikl_core::Result<Json> {
        let p = &self.params;
        let types = p
            .types
            .iter()
            .map(|n| QType::from_name(n).ok_or_else(|| invalid(format!("unknown tensor type '{n}' in the quantize plan"))))
            .collect::<ikl_core::Result<Vec<_>>>()?;
        let mut imatrix: HashMap<String, Vec<f32>> = HashMap::new();
        if let (Some(path), Some(uses)) = (&p.imatrix_path, &p.imatrix_use) {
            let mut m = ikl_core::imatrix::read(path)?;
            for u in uses {
                let v = m.entries.get(&u.entry).ok_or_else(|| invalid(format!("imatrix {path} has no entry {}", u.entry)))?;
                imatrix.insert(u.tensor.clone(), v.clone());
            }
            m.entries.clear();
        }
        let kv: Vec<(String, Value)> =
            p.kv.iter()
                .flatten()
                .map(|o| match (&o.str, o.int) {
                    (Some(s), _) => Ok((o.key.clone(), Value::str(s))),
                    (None, Some(i)) => Ok((o.key.clone(), Value::I32(i as i32))),
                    _ => Err(invalid(format!("metadata override {} has no value", o.key))),
                })
                .collect::<ikl_core::Result<_>>()?;
        let job = Job {
            src: &p.src,
            dst: &p.dst,
            types: &types,
            threads: p.threads.max(1) as usize,
            ftype: p.ftype,
            kv: &kv,
            imatrix: &imatrix,
            progress: Some(&self.state.progress),
            cancel: Some(&self.state.cancel),
        };
        let s = run(&job)?;
        Ok(json!({"nTensors": s.n_tensors, "nConverted": s.n_converted, "srcBytes": s.src_bytes, "dstBytes": s.dst_bytes,
                  "ftype": s.ftype, "seconds": s.seconds}))
    }
}

impl Task for RunTask {
    type Output = std::result::Result<Json, Failure>;
    type JsValue = JsonOut;

    fn compute(&mut self) -> Result<Self::Output> {
        let out = guarded(|| self.execute());
        self.state.busy.store(false, Ordering::Release);
        Ok(out)
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<JsonOut> {
        out.map(JsonOut).map_err(|f| js_error(&env, f))
    }
}

#[napi]
impl QuantizeJob {
    #[napi(constructor)]
    pub fn new() -> Self {
        let state = State { progress: Progress::default(), cancel: AtomicBool::new(false), busy: AtomicBool::new(false) };
        QuantizeJob { state: Arc::new(state) }
    }

    /// Quantize `params.src` into `params.dst` on a worker; rejects IKL_E_CANCELLED after `abort()`.
    #[napi(ts_return_type = "Promise<QuantizeSummary>")]
    pub fn run(&self, env: Env, params: QuantizeParams) -> Result<AsyncTask<RunTask>> {
        if self.state.busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            let f = Failure { code: "IKL_E_BUSY", message: "quantize job already running".into() };
            return Err(js_error(&env, f));
        }
        self.state.cancel.store(false, Ordering::Release);
        Ok(AsyncTask::new(RunTask { state: self.state.clone(), params }))
    }

    /// Tensors written, source elements processed and output bytes so far.
    #[napi(ts_return_type = "QuantizeProgress")]
    pub fn progress(&self) -> Json {
        let p = &self.state.progress;
        json!({"tensors": p.tensors.load(Ordering::Relaxed), "elements": p.elements.load(Ordering::Relaxed),
               "outBytes": p.out_bytes.load(Ordering::Relaxed)})
    }

    /// Stop the running job after the row chunks in flight; its output file is not created.
    #[napi]
    pub fn abort(&self) {
        self.state.cancel.store(true, Ordering::Release);
    }
}

impl Default for QuantizeJob {
    fn default() -> Self {
        Self::new()
    }
}
