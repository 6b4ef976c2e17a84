//! Building blocks shared by architectures (STYLE §1.7): attention over the KV cache.

pub mod attn;
pub mod mla;
pub mod moe;
