//! Format table: lattice i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S).

use super::{iq1_m, iq1_s, iq2_s, iq2_xs, iq2_xxs, iq3_s, iq3_xxs, Format};
use crate::quant::QType;

pub(super) fn lookup(q: QType) -> Option<&'static Format> {
    match q {
        QType::IQ2_XXS => Some(&iq2_xxs::FORMAT),
        QType::IQ2_XS => Some(&iq2_xs::FORMAT),
        QType::IQ2_S => Some(&iq2_s::FORMAT),
        QType::IQ3_XXS => Some(&iq3_xxs::FORMAT),
        QType::IQ3_S => Some(&iq3_s::FORMAT),
        QType::IQ1_S => Some(&iq1_s::FORMAT),
        QType::IQ1_M => Some(&iq1_m::FORMAT),
        _ => None,
    }
}
