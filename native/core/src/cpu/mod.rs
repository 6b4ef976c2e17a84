//! CPU backend: capability tier, thread pool, kernel tables and ops.

pub mod attn;
pub mod attn_pv;
pub mod kernels;
pub mod membw;
pub mod ops;
pub mod pool;
pub mod table;
pub mod tier;
