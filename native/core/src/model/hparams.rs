//! Strict, typed reading of `<arch>.*` hyperparameter keys: a key of the wrong type is an error (never a
//! silent default); absent keys take the explicit default the caller names. Per-layer keys accept a scalar
//! (same value for every layer) or an array of exactly `n_layer` integers (spec/gguf.md §13).

use crate::error::{Error, Result};
use crate::gguf::{GgufModel, Value};

pub struct Keys<'a> {
    pub gguf: &'a GgufModel,
    pub arch: &'a str,
}

impl<'a> Keys<'a> {
    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    fn bad(&self, key: &str, want: &str, v: &Value) -> Error {
        Error::Invalid { what: format!("metadata key {key}: expected {want}, found {}", v.value_type().name()) }
    }

    fn int(&self, key: &str, v: &Value) -> Result<u32> {
        match v {
            Value::Str(_) | Value::Array(_) | Value::F32(_) | Value::F64(_) | Value::Bool(_) => Err(self.bad(key, "an integer", v)),
            _ => v
                .as_i64()
                .and_then(|x| u32::try_from(x).ok())
                .ok_or_else(|| Error::Invalid { what: format!("metadata key {key}: value out of range") }),
        }
    }

    /// Required unsigned integer `<arch>.k`.
    pub fn u32(&self, k: &str) -> Result<u32> {
        let key = self.key(k);
        let v = self.gguf.get(&key).ok_or_else(|| Error::Invalid { what: format!("missing required metadata key {key}") })?;
        self.int(&key, v)
    }

    /// Optional unsigned integer with an explicit default.
    pub fn u32_or(&self, k: &str, default: u32) -> Result<u32> {
        let key = self.key(k);
        match self.gguf.get(&key) {
            None => Ok(default),
            Some(v) => self.int(&key, v),
        }
    }

    fn float(&self, key: &str, v: &Value) -> Result<f32> {
        match v {
            Value::F32(x) => Ok(*x),
            Value::F64(x) => Ok(*x as f32),
            _ => Err(self.bad(key, "a float", v)),
        }
    }

    /// Required float `<arch>.k`.
    pub fn f32(&self, k: &str) -> Result<f32> {
        let key = self.key(k);
        let v = self.gguf.get(&key).ok_or_else(|| Error::Invalid { what: format!("missing required metadata key {key}") })?;
        self.float(&key, v)
    }

    pub fn f32_or(&self, k: &str, default: f32) -> Result<f32> {
        let key = self.key(k);
        match self.gguf.get(&key) {
            None => Ok(default),
            Some(v) => self.float(&key, v),
        }
    }

    pub fn str_or(&self, k: &str, default: &str) -> Result<String> {
        let key = self.key(k);
        match self.gguf.get(&key) {
            None => Ok(default.to_string()),
            Some(v) => v.as_str().map(str::to_string).ok_or_else(|| self.bad(&key, "a string", v)),
        }
    }

    /// Per-layer integer: a scalar for all layers or an array of `n_layer` values; `default` when absent.
    pub fn per_layer_or(&self, k: &str, n_layer: usize, default: Option<u32>) -> Result<Vec<u32>> {
        let key = self.key(k);
        match self.gguf.get(&key) {
            None => match default {
                Some(d) => Ok(vec![d; n_layer]),
                None => Err(Error::Invalid { what: format!("missing required metadata key {key}") }),
            },
            Some(Value::Array(a)) => {
                let vals =
                    a.as_i64_vec().ok_or_else(|| Error::Invalid { what: format!("metadata key {key}: expected an integer array") })?;
                if vals.len() != n_layer {
                    return Err(Error::Invalid { what: format!("metadata key {key}: {} values for {n_layer} layers", vals.len()) });
                }
                vals.into_iter()
                    .map(|x| u32::try_from(x).map_err(|_| Error::Invalid { what: format!("metadata key {key}: value {x} out of range") }))
                    .collect()
            }
            Some(v) => Ok(vec![self.int(&key, v)?; n_layer]),
        }
    }
}
