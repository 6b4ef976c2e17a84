//! Format table: plain floats, legacy 32-weight types, K-quants, IQ4_NL/IQ4_XS, MXFP4, activation types.

use super::Format;
use crate::quant::QType;

pub(super) fn lookup(_q: QType) -> Option<&'static Format> {
    None
}
