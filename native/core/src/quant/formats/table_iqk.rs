//! Format table: the IQK non-linear family (IQ2_K … IQ6_K, IQ4_KS, IQ4_KSS, IQ5_KS, IQ2_KS, IQ3_KS, IQ2_KL).
//!
//! `vec_dot_type` follows ik_llama.cpp's CPU pairing (ggml.c `type_traits_cpu` @ 8337e4cd): every IQK type
//! pairs with Q8_K (the matrix kernels switch to Q8_K_R8 for ≥ 32 activation rows, a repacking of the same
//! values). Every type has its file quantizer.

use super::{iqk_k as k, iqk_k_lo as kl, iqk_ks as ks, iqk_ks_lo as ksl, iqk_kss as kss, Format, QuantizeFn};
use crate::quant::QType;

macro_rules! fmt {
    ($q:ident, $deq:expr, $quant:expr, $vd:expr) => {
        Format { qtype: QType::$q, dequantize: $deq, quantize: $quant, vec_dot_type: QType::Q8_K, vec_dot: Some($vd) }
    };
}

const fn q(f: QuantizeFn) -> Option<QuantizeFn> {
    Some(f)
}

static IQ2_K: Format = fmt!(IQ2_K, k::dequantize_iq2_k, q(kl::quantize_iq2_k), k::vec_dot_iq2_k_q8_k);
static IQ3_K: Format = fmt!(IQ3_K, k::dequantize_iq3_k, q(kl::quantize_iq3_k), k::vec_dot_iq3_k_q8_k);
static IQ4_K: Format = fmt!(IQ4_K, k::dequantize_iq4_k, q(k::quantize_iq4_k), k::vec_dot_iq4_k_q8_k);
static IQ5_K: Format = fmt!(IQ5_K, k::dequantize_iq5_k, q(k::quantize_iq5_k), k::vec_dot_iq5_k_q8_k);
static IQ6_K: Format = fmt!(IQ6_K, k::dequantize_iq6_k, q(k::quantize_iq6_k), k::vec_dot_iq6_k_q8_k);
static IQ4_KS: Format = fmt!(IQ4_KS, ks::dequantize_iq4_ks, q(ks::quantize_iq4_ks), ks::vec_dot_iq4_ks_q8_k);
static IQ4_KSS: Format = fmt!(IQ4_KSS, ks::dequantize_iq4_kss, q(kss::quantize_iq4_kss), ks::vec_dot_iq4_kss_q8_k);
static IQ5_KS: Format = fmt!(IQ5_KS, ks::dequantize_iq5_ks, q(ks::quantize_iq5_ks), ks::vec_dot_iq5_ks_q8_k);
static IQ2_KS: Format = fmt!(IQ2_KS, ks::dequantize_iq2_ks, q(ksl::quantize_iq2_ks), ks::vec_dot_iq2_ks_q8_k);
static IQ3_KS: Format = fmt!(IQ3_KS, ks::dequantize_iq3_ks, q(ksl::quantize_iq3_ks), ks::vec_dot_iq3_ks_q8_k);
static IQ2_KL: Format = fmt!(IQ2_KL, ks::dequantize_iq2_kl, q(ksl::quantize_iq2_kl), ks::vec_dot_iq2_kl_q8_k);

pub(super) fn lookup(q: QType) -> Option<&'static Format> {
    Some(match q {
        QType::IQ2_K => &IQ2_K,
        QType::IQ3_K => &IQ3_K,
        QType::IQ4_K => &IQ4_K,
        QType::IQ5_K => &IQ5_K,
        QType::IQ6_K => &IQ6_K,
        QType::IQ4_KS => &IQ4_KS,
        QType::IQ4_KSS => &IQ4_KSS,
        QType::IQ5_KS => &IQ5_KS,
        QType::IQ2_KS => &IQ2_KS,
        QType::IQ3_KS => &IQ3_KS,
        QType::IQ2_KL => &IQ2_KL,
        _ => return None,
    })
}
