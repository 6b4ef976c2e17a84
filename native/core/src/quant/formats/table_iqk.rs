//! Format table: the IQK non-linear family (IQ2_K … IQ6_K, IQ4_KS, IQ4_KSS, IQ5_KS, IQ2_KS, IQ3_KS, IQ2_KL).

use super::Format;
use crate::quant::QType;

pub(super) fn lookup(_q: QType) -> Option<&'static Format> {
    None
}
