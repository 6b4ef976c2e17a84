//! `Sampler`: a handle on ikl-core's sampler chain (native/core/src/sample.rs). Parameters are validated here;
//! sampling itself happens inside `ctx.decode` (fused, STYLE §1.4 rule 1). `accept` / `reset` are sync.

use std::sync::{Arc, Mutex, MutexGuard};

use ikl_core::sample::{Sampler as CoreSampler, SamplerParams};
use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;

use crate::errors::{guarded, js_error, Failure};

#[napi(object)]
pub struct SamplerOptions {
    pub temp: Option<f64>,
    pub top_k: Option<i32>,
    pub top_p: Option<f64>,
    pub min_p: Option<f64>,
    pub typical_p: Option<f64>,
    pub repeat_penalty: Option<f64>,
    pub repeat_last_n: Option<i32>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    /// −1 (or absent) = the reference's default seed 0xFFFFFFFF (random).
    pub seed: Option<f64>,
}

#[napi]
pub struct Sampler {
    pub(crate) inner: Arc<Mutex<CoreSampler>>,
}

pub(crate) fn lock(s: &Mutex<CoreSampler>) -> MutexGuard<'_, CoreSampler> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn params(o: &SamplerOptions) -> std::result::Result<SamplerParams, Failure> {
    let bad = |what: String| Failure { code: "IKL_E_INVALID", message: what };
    let d = SamplerParams::default();
    let f = |name: &str, v: Option<f64>, def: f32, lo: f64, hi: f64| -> std::result::Result<f32, Failure> {
        match v {
            None => Ok(def),
            Some(x) if x.is_finite() && x >= lo && x <= hi => Ok(x as f32),
            Some(x) => Err(bad(format!("sampler {name} = {x} is out of range [{lo}, {hi}]"))),
        }
    };
    let seed = match o.seed {
        None => d.seed,
        Some(-1.0) => 0xFFFF_FFFF,
        Some(s) if s.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&s) => s as u64,
        Some(s) => return Err(bad(format!("sampler seed {s} is not -1 or an integer in 0..=4294967295"))),
    };
    let top_k = o.top_k.unwrap_or(d.top_k);
    if top_k < 0 {
        return Err(bad(format!("sampler topK = {top_k} is negative")));
    }
    let repeat_last_n = o.repeat_last_n.unwrap_or(d.repeat_last_n);
    if repeat_last_n < -1 {
        return Err(bad(format!("sampler repeatLastN = {repeat_last_n}; must be >= -1")));
    }
    Ok(SamplerParams {
        temp: f("temp", o.temp, d.temp, f64::MIN, 1e6)?,
        top_k,
        top_p: f("topP", o.top_p, d.top_p, 0.0, 1.0)?,
        min_p: f("minP", o.min_p, d.min_p, 0.0, 1.0)?,
        typical_p: f("typicalP", o.typical_p, d.typical_p, 0.0, 1.0)?,
        repeat_penalty: f("repeatPenalty", o.repeat_penalty, d.repeat_penalty, 0.0, 1e6)?,
        repeat_last_n,
        presence_penalty: f("presencePenalty", o.presence_penalty, d.presence_penalty, -1e6, 1e6)?,
        frequency_penalty: f("frequencyPenalty", o.frequency_penalty, d.frequency_penalty, -1e6, 1e6)?,
        seed,
    })
}

#[napi]
impl Sampler {
    /// A sampler with llama.cpp's defaults for every absent field; bad values → IKL_E_INVALID.
    #[napi(factory)]
    pub fn create(env: Env, opts: Option<SamplerOptions>) -> Result<Sampler> {
        let o = opts.unwrap_or(SamplerOptions {
            temp: None,
            top_k: None,
            top_p: None,
            min_p: None,
            typical_p: None,
            repeat_penalty: None,
            repeat_last_n: None,
            presence_penalty: None,
            frequency_penalty: None,
            seed: None,
        });
        let p = params(&o).map_err(|f| js_error(&env, f))?;
        guarded(|| Ok(CoreSampler::new(p))).map(|s| Sampler { inner: Arc::new(Mutex::new(s)) }).map_err(|f| js_error(&env, f))
    }

    /// Record a token accepted into the sequence (prompt tokens, for penalties). decode() accepts what it samples.
    #[napi]
    pub fn accept(&self, env: Env, token: u32) -> Result<()> {
        guarded(|| {
            lock(&self.inner).accept(token);
            Ok(())
        })
        .map_err(|f| js_error(&env, f))
    }

    /// Forget the history and restart the RNG from the seed.
    #[napi]
    pub fn reset(&self, env: Env) -> Result<()> {
        guarded(|| {
            lock(&self.inner).reset();
            Ok(())
        })
        .map_err(|f| js_error(&env, f))
    }
}
