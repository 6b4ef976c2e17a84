//! CPU capability tier, detected once (STYLE §1.6): `Scalar`, `Avx2` (AVX2+FMA+F16C), `Avx512`
//! (F+BW+DQ+VL+VNNI, ik's HAVE_FANCY_SIMD set). `IKL_CPU_TIER=scalar|avx2|avx512` forces a lower tier
//! (never a higher one than the CPU has), for testing the fallbacks.

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Scalar,
    Avx2,
    Avx512,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Scalar => "scalar",
            Tier::Avx2 => "avx2",
            Tier::Avx512 => "avx512",
        }
    }

    fn parse(s: &str) -> Option<Tier> {
        match s.to_ascii_lowercase().as_str() {
            "scalar" => Some(Tier::Scalar),
            "avx2" => Some(Tier::Avx2),
            "avx512" => Some(Tier::Avx512),
            _ => None,
        }
    }
}

/// Features of this CPU that the kernels care about, by name.
pub fn features() -> Vec<&'static str> {
    let mut v = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => { $( if std::arch::is_x86_feature_detected!($f) { v.push($f); } )* };
        }
        probe!("sse4.2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512vnni", "avx512bf16");
    }
    #[cfg(target_arch = "aarch64")]
    {
        v.push("neon");
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            v.push("dotprod");
        }
        if std::arch::is_aarch64_feature_detected!("i8mm") {
            v.push("i8mm");
        }
    }
    v
}

fn detect() -> Tier {
    let f = features();
    let has = |n: &str| f.contains(&n);
    let hw = if ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512vnni", "avx2", "fma", "f16c"].iter().all(|n| has(n)) {
        Tier::Avx512
    } else if has("avx2") && has("fma") && has("f16c") {
        Tier::Avx2
    } else {
        Tier::Scalar
    };
    match std::env::var("IKL_CPU_TIER").ok().as_deref().and_then(Tier::parse) {
        Some(forced) if forced < hw => forced,
        _ => hw,
    }
}

/// The tier in use (detected on first call).
pub fn tier() -> Tier {
    static TIER: OnceLock<Tier> = OnceLock::new();
    *TIER.get_or_init(detect)
}
