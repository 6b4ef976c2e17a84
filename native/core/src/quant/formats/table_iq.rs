//! Format table: lattice i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S).

use super::Format;
use crate::quant::QType;

pub(super) fn lookup(_q: QType) -> Option<&'static Format> {
    None
}
