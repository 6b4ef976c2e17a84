//! CPU backend: capability tier, thread pool, kernel tables and ops.

pub mod attn;
pub mod ops;
pub mod pool;
pub mod tier;
pub mod table;
pub mod kernels;
