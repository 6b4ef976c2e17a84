//! Tensor element types: the registry (ids, sizes, names) and, per type, the format modules.

pub mod convert;
pub mod formats;
pub mod registry;

pub use registry::{QType, Role, TypeTraits, ALL};
