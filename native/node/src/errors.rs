//! Error plumbing for every export: ikl-core errors become JS `Error`s whose `code` is the core's stable code
//! (`IKL_E_GGUF`, …); panics are caught and become `IKL_E_INTERNAL`. Nothing may abort the Node process.

use napi::bindgen_prelude::*;
use napi::Env;

/// A failure computed off the JS thread, turned into a JS error on it.
pub struct Failure {
    pub code: &'static str,
    pub message: String,
}

impl From<ikl_core::Error> for Failure {
    fn from(e: ikl_core::Error) -> Self {
        Failure { code: e.code(), message: e.to_string() }
    }
}

/// Run `f`, converting a panic into an `IKL_E_INTERNAL` failure.
pub fn guarded<T>(f: impl FnOnce() -> ikl_core::Result<T>) -> std::result::Result<T, Failure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.into()),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Failure { code: "IKL_E_INTERNAL", message: format!("internal error: {what}") })
        }
    }
}

/// Build a JS `Error` with `code` set, retained so napi-rs throws / rejects with exactly this object.
pub fn js_error(env: &Env, f: Failure) -> napi::Error {
    let build = || -> napi::Result<napi::Error> {
        let mut obj = env.create_error(napi::Error::new(Status::GenericFailure, f.message.clone()))?;
        obj.set_named_property("code", f.code)?;
        Ok(napi::Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|e| e)
}
