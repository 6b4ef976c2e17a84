//! ikl-node: N-API glue over ikl-core.
use napi_derive::napi;

#[napi]
pub fn abi_version() -> u32 {
    ikl_core::ABI_VERSION
}
