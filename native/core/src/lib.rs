//! ikl-core: the engine of ikl — GGUF, quant formats, CPU/CUDA kernels, models, tokenizer, sampler.
//!
//! Builds and tests without Node; `ikl-node` wraps it for JavaScript. Nothing here prints: results and
//! errors are returned, logs go through the logger callback the caller installs.

pub mod context;
pub mod cpu;
pub mod cuda;
pub mod error;
pub mod fixtures;
pub mod gguf;
pub mod imatrix;
pub mod kv;
pub mod model;
pub mod quant;
pub mod quantize;
pub mod sample;
pub mod tokenizer;

pub use error::{Error, Result};

/// Version of the contract between `ikl-node` and the TypeScript side (`src/engine/native.ts`).
/// Bump it whenever an export's signature or a returned object's shape changes.
pub const ABI_VERSION: u32 = 2;
