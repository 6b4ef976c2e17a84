//! CPU kernel table (STYLE §1.6): per weight type, the activation quantizer and one GEMM per activation-row
//! count 1..8, resolved once per (type, tier). The hot path is an index plus an indirect call.
//!
//! Types without a SIMD kernel (or the `Scalar` tier) get fallbacks built from the scalar reference
//! (`Format::vec_dot`, `Format::quantize` of the `vec_dot_type`), which are also what the SIMD kernels are
//! tested against (`tests/cpu_kernels.rs`).
//!
//! Exception (`ik_pairing`): the weights whose AVX2 kernels reproduce ik's arithmetic pair with ik's AVX2
//! activation type instead of the registry's `vec_dot_type` — Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/Q6_0/IQ4_NL/Q4_K/Q5_K/
//! Q6_K with Q8_2_X4, F32/F16/BF16 with F32 — at every tier; their scalar tier is the kernels' bit-identical scalar twin.

use std::sync::OnceLock;

use super::kernels::interleaved_k as ilk;
use super::kernels::kt;
use super::kernels::{
    act, float as fl, interleaved as il, iqk, kquants as kq, kquants_q82 as kq82, legacy as lg, q8_r8 as q8r, q8k_r8 as q8k,
};
use super::tier::{tier, Tier};
use crate::quant::formats::lookup;
use crate::quant::QType;

/// `out[iy * ldo + ix] = dot(weight row ix, activation row iy)` for `ix < nx`, `iy < ny` (`ny ≤ 8`).
/// `x`: nx weight rows of `bx` bytes each (the weight's encoding); `y`: ny activation rows of `by` bytes (the
/// weight's `vec_dot_type` encoding); `n` = elements per row. `gemm[ny-1]` must be called with that `ny`.
pub type GemmFn = fn(n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, out: &mut [f32], ldo: usize);
/// One row of `src.len()` floats → the `vec_dot_type` encoding.
pub type QuantizeActFn = fn(src: &[f32], dst: &mut [u8]);

#[derive(Clone, Copy)]
pub struct Kernels {
    pub weight: QType,
    pub act: QType,
    pub quantize_act: QuantizeActFn,
    pub gemm: [GemmFn; 8],
    pub tier: Tier,
}

/// Maximum activation rows one GEMM call processes (ik `IQK_MAX_NY` for the non-repacked kernels).
pub const MAX_NY: usize = 8;

// ---------------------------------------------------------------- scalar fallbacks

/// Scalar GEMM from the reference `vec_dot` of the type with ggml id `ID`.
fn scalar_gemm<const ID: u32>(n: usize, x: &[u8], bx: usize, nx: usize, y: &[u8], by: usize, ny: usize, out: &mut [f32], ldo: usize) {
    let f = QType::from_id(ID).and_then(lookup).expect("scalar_gemm instantiated for a registered type");
    let vd = f.vec_dot.expect("scalar_gemm instantiated for a type with vec_dot");
    for iy in 0..ny {
        let yr = &y[iy * by..];
        for ix in 0..nx {
            out[iy * ldo + ix] = vd(n, &x[ix * bx..], yr);
        }
    }
}

/// Scalar activation quantizer: the reference `quantize` of the activation type with id `ID`.
fn scalar_act<const ID: u32>(src: &[f32], dst: &mut [u8]) {
    let f = QType::from_id(ID).and_then(lookup).expect("scalar_act instantiated for a registered type");
    let q = f.quantize.expect("activation type with a quantizer");
    q(src, dst, src.len(), None);
}

/// `Some($f::<id of q>)` for the listed types, else `None`.
macro_rules! scalar_table {
    ($q:expr, $f:ident as $fty:ty; $($t:ident),* $(,)?) => {
        match $q {
            $( QType::$t => Some($f::<{ QType::$t as u32 }> as $fty), )*
            _ => None,
        }
    };
}

fn scalar_gemm_fn(q: QType) -> Option<GemmFn> {
    scalar_table!(q, scalar_gemm as GemmFn;
        F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q6_0, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, MXFP4,
        IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M,
        IQ2_K, IQ3_K, IQ4_K, IQ5_K, IQ6_K, IQ4_KS, IQ4_KSS, IQ5_KS, IQ2_KS, IQ3_KS, IQ2_KL, Q1_0_G128,
    )
}

fn scalar_act_fn(q: QType) -> Option<QuantizeActFn> {
    if q == QType::Q8_2_X4 {
        return Some(act::quantize_q8_2_x4_ref);
    }
    scalar_table!(q, scalar_act as QuantizeActFn; Q8_0, Q8_1, Q8_K, F32, F16, BF16)
}

/// The weights that pair with ik's AVX2 activation type (module doc): (activation type, scalar-twin GEMM).
fn ik_pairing(q: QType) -> Option<(QType, GemmFn)> {
    Some(match q {
        QType::Q8_0 => (QType::Q8_2_X4, lg::twin_q8_0 as GemmFn),
        QType::Q4_0 => (QType::Q8_2_X4, lg::twin_q4_0),
        QType::Q4_1 => (QType::Q8_2_X4, lg::twin_q4_1),
        QType::Q5_0 => (QType::Q8_2_X4, lg::twin_q5_0),
        QType::Q5_1 => (QType::Q8_2_X4, lg::twin_q5_1),
        QType::Q6_0 => (QType::Q8_2_X4, lg::twin_q6_0),
        QType::IQ4_NL => (QType::Q8_2_X4, lg::twin_iq4_nl),
        QType::Q4_K => (QType::Q8_2_X4, kq82::twin_q4_k),
        QType::Q5_K => (QType::Q8_2_X4, kq82::twin_q5_k),
        QType::Q6_K => (QType::Q8_2_X4, kq82::twin_q6_k),
        QType::Q8_0_R8 => (QType::Q8_2_X4, q8r::twin_q8_0_r8),
        QType::Q8_K_R8 => (QType::Q8_K, q8k::twin_q8_k_r8),
        QType::F32 => (QType::F32, fl::twin_f32),
        QType::F16 => (QType::F32, fl::twin_f16),
        QType::BF16 => (QType::F32, fl::twin_bf16),
        _ => return None,
    })
}

/// Row-interleaved types (`_R4/_R8/_R16`) pair with their base type's activation and take the bit-identical
/// scalar twin `interleaved::scalar_gemm_il` (unpack + base scalar GEMM), when the base has CPU kernels.
fn interleaved_pairing(q: QType) -> Option<(QType, GemmFn)> {
    use il::scalar_gemm_il;
    let twin = scalar_table!(q, scalar_gemm_il as GemmFn;
        Q4_0_R8, Q8_0_R8, Q5_0_R4, Q6_0_R4, IQ4_NL_R4, MXFP4_R8, IQ4_XS_R8, Q2_K_R4, Q3_K_R4, Q4_K_R4, Q5_K_R4, Q6_K_R4,
        IQ2_XXS_R4, IQ2_XS_R4, IQ2_S_R4, IQ3_XXS_R4, IQ3_S_R4, IQ2_K_R4, IQ3_K_R4, IQ4_K_R4, IQ5_K_R4, IQ4_KS_R4, IQ5_KS_R4,
        IQ2_BN_R4, BF16_R16,
    )?;
    Some((kernels_for_tier(q.base_type(), Tier::Scalar)?.act, twin))
}

// ---------------------------------------------------------------- AVX2

macro_rules! ny8 {
    ($m:ident::$f:ident) => {
        [$m::$f::<1>, $m::$f::<2>, $m::$f::<3>, $m::$f::<4>, $m::$f::<5>, $m::$f::<6>, $m::$f::<7>, $m::$f::<8>]
    };
}

fn avx2_gemm(q: QType) -> Option<[GemmFn; 8]> {
    Some(match q {
        QType::Q8_0 => ny8!(lg::gemm_q8_0),
        QType::Q4_0 => ny8!(lg::gemm_q4_0),
        QType::Q4_1 => ny8!(lg::gemm_q4_1),
        QType::Q5_0 => ny8!(lg::gemm_q5_0),
        QType::Q5_1 => ny8!(lg::gemm_q5_1),
        QType::Q6_0 => ny8!(lg::gemm_q6_0),
        QType::IQ4_NL => ny8!(lg::gemm_iq4_nl),
        QType::Q2_K => ny8!(kq::gemm_q2_k),
        QType::Q3_K => ny8!(kq::gemm_q3_k),
        QType::Q4_K => ny8!(kq82::gemm_q4_k),
        QType::Q5_K => ny8!(kq82::gemm_q5_k),
        QType::Q6_K => ny8!(kq82::gemm_q6_k),
        QType::IQ4_XS => ny8!(kq::gemm_iq4_xs),
        QType::IQ2_K => ny8!(iqk::gemm_iq2_k),
        QType::IQ3_K => ny8!(iqk::gemm_iq3_k),
        QType::IQ4_K => ny8!(iqk::gemm_iq4_k),
        QType::IQ5_K => ny8!(iqk::gemm_iq5_k),
        QType::IQ6_K => ny8!(iqk::gemm_iq6_k),
        QType::IQ4_KS => ny8!(iqk::gemm_iq4_ks),
        QType::IQ5_KS => ny8!(iqk::gemm_iq5_ks),
        QType::IQ2_KS => ny8!(iqk::gemm_iq2_ks),
        QType::IQ3_KS => ny8!(iqk::gemm_iq3_ks),
        QType::IQ4_K_R4 => ny8!(il::gemm_iq4_k_r4),
        QType::IQ4_KS_R4 => ny8!(il::gemm_iq4_ks_r4),
        QType::IQ4_XS_R8 => ny8!(il::gemm_iq4_xs_r8),
        // row-interleaved -rtr targets (engineer "kernels", cpu/kernels/interleaved_k.rs)
        QType::Q4_0_R8 => ny8!(ilk::gemm_q4_0_r8),
        QType::Q4_K_R4 => ny8!(ilk::gemm_q4_k_r4),
        QType::Q5_K_R4 => ny8!(ilk::gemm_q5_k_r4),
        QType::Q6_K_R4 => ny8!(ilk::gemm_q6_k_r4),
        QType::IQ2_K_R4 => ny8!(il::gemm_iq2_k_r4),
        QType::IQ3_K_R4 => ny8!(il::gemm_iq3_k_r4),
        QType::IQ5_K_R4 => ny8!(il::gemm_iq5_k_r4),
        QType::IQ1_KT => ny8!(kt::gemm_iq1_kt),
        QType::IQ2_KT => ny8!(kt::gemm_iq2_kt),
        QType::IQ3_KT => ny8!(kt::gemm_iq3_kt),
        QType::IQ4_KT => ny8!(kt::gemm_iq4_kt),
        QType::Q8_0_R8 => ny8!(q8r::gemm_q8_0_r8),
        QType::Q8_K_R8 => ny8!(q8k::gemm_q8_k_r8),
        QType::F32 => ny8!(fl::gemm_f32),
        QType::F16 => ny8!(fl::gemm_f16),
        QType::BF16 => ny8!(fl::gemm_bf16),
        _ => return None,
    })
}

fn avx2_act(q: QType) -> Option<QuantizeActFn> {
    Some(match q {
        QType::Q8_0 => act::quantize_q8_0,
        QType::Q8_1 => act::quantize_q8_1,
        QType::Q8_2_X4 => act::quantize_q8_2_x4,
        QType::Q8_K => act::quantize_q8_k,
        QType::F16 => act::quantize_f16,
        QType::BF16 => act::quantize_bf16,
        QType::F32 => act::quantize_f32,
        _ => return None,
    })
}

/// The kernels of `q` at `tier` (the SIMD entries only where that tier has them and the CPU supports it;
/// `Avx512` uses the AVX2 kernels for now). `None` when the type has no scalar dot product.
pub fn kernels_for_tier(q: QType, tier: Tier) -> Option<Kernels> {
    let f = lookup(q)?;
    let (act, scalar) = match ik_pairing(q).or_else(|| interleaved_pairing(q)).or_else(|| super::kernels::kt::pairing(q)) {
        Some((a, g)) => (a, g),
        None => {
            f.vec_dot?;
            (f.vec_dot_type, scalar_gemm_fn(q)?)
        }
    };
    let mut k = Kernels { weight: q, act, quantize_act: scalar_act_fn(act)?, gemm: [scalar; 8], tier: Tier::Scalar };
    if tier >= Tier::Avx2 && super::kernels::avx2_ok() {
        if let Some(a) = avx2_act(act) {
            k.quantize_act = a;
            k.tier = Tier::Avx2;
        }
        if let Some(g) = avx2_gemm(q) {
            k.gemm = g;
            k.tier = Tier::Avx2;
        }
    }
    Some(k)
}

/// The kernels of `q` for this CPU's tier, resolved once per type.
pub fn kernels(q: QType) -> Option<&'static Kernels> {
    const SLOTS: usize = 512;
    static TABLE: OnceLock<Vec<Option<Kernels>>> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut v = vec![None; SLOTS];
        for &q in crate::quant::ALL {
            if (q.id() as usize) < SLOTS {
                v[q.id() as usize] = kernels_for_tier(q, tier());
            }
        }
        v
    });
    t.get(q.id() as usize)?.as_ref()
}

// ---------------------------------------------------------------- large-batch path (docs/batch-path.md)

/// ik's large-batch plan for a weight type on AVX2 (`MulMat::is_dequant_better` @ 8337e4cd): a matmul with at
/// least `min_rows` activation rows converts chunks of weight rows into `target` (`convert`) and multiplies
/// them with `k` (the target's kernels, which take the same activation encoding as the weight's own).
#[derive(Clone, Copy)]
pub struct BatchPlan {
    pub min_rows: usize,
    pub target: QType,
    pub convert: q8r::ConvertFn,
    pub k: &'static Kernels,
}

/// The batch plan of `q` at `tier` (`None`: this type always runs its own kernels). Leaks one `Kernels` when
/// `tier` differs from the CPU's (tests only).
pub fn batch_plan(q: QType, tier_: Tier) -> Option<BatchPlan> {
    let (min_rows, target, convert) = match q {
        QType::Q8_0 | QType::Q4_0 | QType::Q5_0 | QType::Q6_0 | QType::IQ4_NL => (32, QType::Q8_0_R8, q8r::converter_q8_0_r8(q)?),
        QType::Q6_K => (64, QType::Q8_0_R8, q8r::convert_q6_k as q8r::ConvertFn),
        QType::IQ4_XS => (32, QType::Q8_K_R8, q8k::convert_iq4_xs as q8r::ConvertFn),
        _ => return None,
    };
    let k: &'static Kernels = match kernels(target) {
        Some(k) if kernels_for_tier(target, tier_).is_some_and(|t| t.tier == k.tier) => k,
        _ => Box::leak(Box::new(kernels_for_tier(target, tier_)?)),
    };
    // the converted rows must take the activation rows already encoded for the weight's own kernels
    (kernels_for_tier(q, tier_)?.act == k.act).then_some(BatchPlan { min_rows, target, convert, k })
}
