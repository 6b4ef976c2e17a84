//! Format table: plain floats, legacy 32-weight types, K-quants, IQ4_NL/IQ4_XS, MXFP4, Q1_0_G128, activation types.
//!
//! `vec_dot_type` follows ik_llama.cpp's CPU pairing (ggml.c `type_traits_cpu` @ 8337e4cd): Q4_0, Q5_0, Q6_0,
//! Q8_0, IQ4_NL, MXFP4 → Q8_0; Q4_1, Q5_1 → Q8_1; K-quants and IQ4_XS → Q8_K; floats pair with themselves.
//! Activation types have no dot product of their own (`vec_dot: None`).

use super::{float as fl, iq4, kquants_hi as kh, kquants_lo as kl, legacy as lg, q8, Format};
use crate::quant::QType;

macro_rules! fmt {
    ($q:ident, $deq:expr, $quant:expr, $vdt:ident, $vd:expr) => {
        Format { qtype: QType::$q, dequantize: $deq, quantize: Some($quant), vec_dot_type: QType::$vdt, vec_dot: $vd }
    };
}

static F32: Format = fmt!(F32, fl::dequantize_f32, fl::quantize_f32, F32, Some(fl::vec_dot_f32));
static F16: Format = fmt!(F16, fl::dequantize_f16, fl::quantize_f16, F16, Some(fl::vec_dot_f16));
static BF16: Format = fmt!(BF16, fl::dequantize_bf16, fl::quantize_bf16, BF16, Some(fl::vec_dot_bf16));
static Q4_0: Format = fmt!(Q4_0, lg::dequantize_q4_0, lg::quantize_q4_0, Q8_0, Some(lg::vec_dot_q4_0_q8_0));
static Q4_1: Format = fmt!(Q4_1, lg::dequantize_q4_1, lg::quantize_q4_1, Q8_1, Some(lg::vec_dot_q4_1_q8_1));
static Q5_0: Format = fmt!(Q5_0, lg::dequantize_q5_0, lg::quantize_q5_0, Q8_0, Some(lg::vec_dot_q5_0_q8_0));
static Q5_1: Format = fmt!(Q5_1, lg::dequantize_q5_1, lg::quantize_q5_1, Q8_1, Some(lg::vec_dot_q5_1_q8_1));
static Q6_0: Format = fmt!(Q6_0, q8::dequantize_q6_0, q8::quantize_q6_0, Q8_0, Some(q8::vec_dot_q6_0_q8_0));
static Q8_0: Format = fmt!(Q8_0, q8::dequantize_q8_0, q8::quantize_q8_0, Q8_0, Some(q8::vec_dot_q8_0_q8_0));
static Q8_1: Format = fmt!(Q8_1, q8::dequantize_q8_1, q8::quantize_q8_1, Q8_1, None);
static Q8_K: Format = fmt!(Q8_K, q8::dequantize_q8_k, q8::quantize_q8_k, Q8_K, None);
static Q2_K: Format = fmt!(Q2_K, kl::dequantize_q2_k, kl::quantize_q2_k, Q8_K, Some(kl::vec_dot_q2_k_q8_k));
static Q3_K: Format = fmt!(Q3_K, kl::dequantize_q3_k, kl::quantize_q3_k, Q8_K, Some(kl::vec_dot_q3_k_q8_k));
static Q4_K: Format = fmt!(Q4_K, kh::dequantize_q4_k, kh::quantize_q4_k, Q8_K, Some(kh::vec_dot_q4_k_q8_k));
static Q5_K: Format = fmt!(Q5_K, kh::dequantize_q5_k, kh::quantize_q5_k, Q8_K, Some(kh::vec_dot_q5_k_q8_k));
static Q6_K: Format = fmt!(Q6_K, kh::dequantize_q6_k, kh::quantize_q6_k, Q8_K, Some(kh::vec_dot_q6_k_q8_k));
static IQ4_NL: Format = fmt!(IQ4_NL, iq4::dequantize_iq4_nl, iq4::quantize_iq4_nl, Q8_0, Some(iq4::vec_dot_iq4_nl_q8_0));
static IQ4_XS: Format = fmt!(IQ4_XS, iq4::dequantize_iq4_xs, iq4::quantize_iq4_xs, Q8_K, Some(iq4::vec_dot_iq4_xs_q8_k));
static MXFP4: Format = fmt!(MXFP4, iq4::dequantize_mxfp4, iq4::quantize_mxfp4, Q8_0, Some(iq4::vec_dot_mxfp4_q8_0));

pub(super) fn lookup(q: QType) -> Option<&'static Format> {
    Some(match q {
        QType::F32 => &F32,
        QType::F16 => &F16,
        QType::BF16 => &BF16,
        QType::Q4_0 => &Q4_0,
        QType::Q4_1 => &Q4_1,
        QType::Q5_0 => &Q5_0,
        QType::Q5_1 => &Q5_1,
        QType::Q6_0 => &Q6_0,
        QType::Q8_0 => &Q8_0,
        QType::Q8_1 => &Q8_1,
        QType::Q8_K => &Q8_K,
        QType::Q2_K => &Q2_K,
        QType::Q3_K => &Q3_K,
        QType::Q4_K => &Q4_K,
        QType::Q5_K => &Q5_K,
        QType::Q6_K => &Q6_K,
        QType::IQ4_NL => &IQ4_NL,
        QType::IQ4_XS => &IQ4_XS,
        QType::MXFP4 => &MXFP4,
        QType::Q1_0_G128 => &super::q1_0::Q1_0_G128,
        _ => return None,
    })
}
