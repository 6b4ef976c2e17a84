//! CPU backend: capability tier, thread pool, kernel tables and ops.

pub mod tier;
