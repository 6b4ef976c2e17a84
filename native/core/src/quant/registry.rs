//! THE list of tensor element types known to ik_llama.cpp (spec/quants.md §2, reference commit 8337e4cd).
//!
//! One line per type: ggml id, enum variant, ggml type name, block size, bytes per block, row-metadata bytes,
//! interleaved rows, CUDA matmul support in the reference, role, and whether mainline llama.cpp knows the id
//! with the same layout. Every table, test and TypeScript name list derives from this list; nothing else in
//! the tree hard-codes ids or sizes. Format modules (dequantize/quantize/kernels) attach per type elsewhere.

/// What a type is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// May appear as a weight in model files.
    Weight,
    /// Plain integer / float data (I8…F64).
    Plain,
    /// Internal activation type of the reference's dot products; never stored in files.
    Activation,
    /// A foreign format the reference reads (Microsoft BitNet I2_S).
    Foreign,
    /// In-memory CPU intermediate (Q8_K_R16); no file type.
    Internal,
}

/// CUDA matmul support of the reference for this weight type (spec/quants.md §2 and §12.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cuda {
    /// cuBLAS (F32/F16/BF16).
    Cublas,
    /// MMQ + MMVQ + dequantize kernels.
    Full,
    /// MMVQ + dequantize (no tiled MMQ).
    Mmvq,
    /// The reference's CUDA backend rejects MUL_MAT with this type: CPU only.
    No,
    /// Not a weight type.
    NotApplicable,
}

#[derive(Clone, Copy, Debug)]
pub struct TypeTraits {
    pub id: u32,
    pub name: &'static str,
    /// Weights per block.
    pub block: usize,
    /// Bytes per block.
    pub type_size: usize,
    /// Bytes of per-row metadata stored before the blocks of each row (row scale etc.).
    pub row_meta: usize,
    /// Rows interleaved in one unit (1 = not interleaved).
    pub interleave: usize,
    pub cuda: Cuda,
    pub role: Role,
    /// Mainline llama.cpp reads this id with the same layout.
    pub mainline: bool,
}

macro_rules! qtypes {
    ($( $id:literal $var:ident $name:literal $blk:literal $ts:literal $meta:literal $il:literal $cuda:ident $role:ident $ml:literal ;)*) => {
        /// A tensor element type, by ggml id.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum QType { $( $var = $id, )* }

        /// Every type, in id order.
        pub const ALL: &[QType] = &[ $( QType::$var, )* ];

        impl QType {
            pub const fn traits(self) -> TypeTraits {
                match self {
                    $( QType::$var => TypeTraits {
                        id: $id, name: $name, block: $blk, type_size: $ts, row_meta: $meta, interleave: $il,
                        cuda: Cuda::$cuda, role: Role::$role, mainline: $ml,
                    }, )*
                }
            }

            pub fn from_id(id: u32) -> Option<QType> {
                match id { $( $id => Some(QType::$var), )* _ => None }
            }

            /// Enum-style upper-case name (`Q4_K`, `IQ4_KS_R4`).
            pub const fn enum_name(self) -> &'static str {
                match self { $( QType::$var => stringify!($var), )* }
            }
        }
    };
}

// id  variant      name          block bytes meta il cuda   role        mainline
qtypes! {
    0   F32         "f32"          1    4    0   1  Cublas Weight      true;
    1   F16         "f16"          1    2    0   1  Cublas Weight      true;
    2   Q4_0        "q4_0"         32   18   0   1  Full   Weight      true;
    3   Q4_1        "q4_1"         32   20   0   1  Full   Weight      true;
    6   Q5_0        "q5_0"         32   22   0   1  Full   Weight      true;
    7   Q5_1        "q5_1"         32   24   0   1  Full   Weight      true;
    8   Q8_0        "q8_0"         32   34   0   1  Full   Weight      true;
    9   Q8_1        "q8_1"         32   36   0   1  NotApplicable Activation true;
    10  Q2_K        "q2_K"         256  84   0   1  Full   Weight      true;
    11  Q3_K        "q3_K"         256  110  0   1  Full   Weight      true;
    12  Q4_K        "q4_K"         256  144  0   1  Full   Weight      true;
    13  Q5_K        "q5_K"         256  176  0   1  Full   Weight      true;
    14  Q6_K        "q6_K"         256  210  0   1  Full   Weight      true;
    15  Q8_K        "q8_K"         256  296  0   1  NotApplicable Activation false;
    16  IQ2_XXS     "iq2_xxs"      256  66   0   1  Full   Weight      true;
    17  IQ2_XS      "iq2_xs"       256  74   0   1  Full   Weight      true;
    18  IQ3_XXS     "iq3_xxs"      256  98   0   1  Full   Weight      true;
    19  IQ1_S       "iq1_s"        256  50   0   1  Full   Weight      true;
    20  IQ4_NL      "iq4_nl"       32   18   0   1  Full   Weight      true;
    21  IQ3_S       "iq3_s"        256  110  0   1  Full   Weight      true;
    22  IQ2_S       "iq2_s"        256  82   0   1  Full   Weight      true;
    23  IQ4_XS      "iq4_xs"       256  136  0   1  Full   Weight      true;
    24  I8          "i8"           1    1    0   1  No     Plain       true;
    25  I16         "i16"          1    2    0   1  No     Plain       true;
    26  I32         "i32"          1    4    0   1  No     Plain       true;
    27  I64         "i64"          1    8    0   1  No     Plain       true;
    28  F64         "f64"          1    8    0   1  No     Plain       true;
    29  IQ1_M       "iq1_m"        256  56   0   1  Mmvq   Weight      true;
    30  BF16        "bf16"         1    2    0   1  Cublas Weight      true;
    31  Q4_0_4_4    "q4_0_4x4"     32   18   0   4  No     Weight      false;
    32  Q4_0_4_8    "q4_0_4x8"     32   18   0   4  No     Weight      false;
    33  Q4_0_8_8    "q4_0_8x8"     32   18   0   8  No     Weight      false;
    36  I2_S        "i2_s"         1    1    0   1  No     Foreign     false;
    39  MXFP4       "mxfp4"        32   17   0   1  Full   Weight      true;
    41  Q1_0_G128   "q1_0_g128"    128  18   0   1  No     Weight      true;
    97  Q8_0_X4     "q8_0_x4"      32   34   0   1  NotApplicable Activation false;
    98  Q8_1_X4     "q8_1_x4"      32   36   0   1  NotApplicable Activation false;
    99  Q8_2_X4     "q8_2_x4"      32   36   0   1  NotApplicable Activation false;
    133 Q6_0        "q6_0"         32   26   0   1  Full   Weight      false;
    134 IQ1_BN      "iq1_bn"       64   13   2   1  Mmvq   Weight      false;
    135 IQ2_BN      "iq2_bn"       64   16   4   1  Mmvq   Weight      false;
    136 Q8_K64      "q8_K64"       64   68   0   1  NotApplicable Activation false;
    137 IQ2_K       "iq2_k"        256  76   0   1  Full   Weight      false;
    138 IQ3_K       "iq3_k"        256  110  0   1  Full   Weight      false;
    139 IQ4_K       "iq4_k"        256  144  0   1  Full   Weight      false;
    140 IQ5_K       "iq5_k"        256  176  0   1  Full   Weight      false;
    141 IQ6_K       "iq6_k"        256  212  0   1  Full   Weight      false;
    144 IQ4_KS      "iq4_ks"       256  136  4   1  Full   Weight      false;
    145 IQ2_KS      "iq2_ks"       256  70   2   1  Full   Weight      false;
    146 IQ4_KSS     "iq4_kss"      256  128  4   1  Full   Weight      false;
    147 Q8_K16      "q8_K16"       64   64   20  1  NotApplicable Activation false;
    148 Q8_K32      "q8_K32"       256  296  0   1  NotApplicable Activation false;
    149 Q8_KR8      "q8_KR8"       256  296  0   1  NotApplicable Activation false;
    150 Q8_K128     "q8_K128"      128  140  0   1  NotApplicable Activation false;
    151 Q8_KV       "q8_KV"        32   32   8   1  No     Weight      false;
    152 IQ5_KS      "iq5_ks"       256  168  4   1  Full   Weight      false;
    153 IQ2_KT      "iq2_kt"       256  68   4   1  Full   Weight      false;
    154 IQ3_KT      "iq3_kt"       256  100  4   1  Full   Weight      false;
    155 IQ4_KT      "iq4_kt"       256  128  4   1  Full   Weight      false;
    156 IQ3_KS      "iq3_ks"       256  102  2   1  Full   Weight      false;
    157 IQ2_KL      "iq2_kl"       256  86   2   1  Full   Weight      false;
    158 IQ1_KT      "iq1_kt"       256  56   4   1  Full   Weight      false;
    202 Q4_0_R8     "q4_0_r8"      32   18   0   8  No     Weight      false;
    206 Q5_0_R4     "q5_0_r4"      32   22   0   4  No     Weight      false;
    208 Q8_0_R8     "q8_0_r8"      32   34   0   8  No     Weight      false;
    210 Q2_K_R4     "q2_k_r4"      256  84   0   4  No     Weight      false;
    211 Q3_K_R4     "q3_k_r4"      256  110  0   4  No     Weight      false;
    212 Q4_K_R4     "q4_k_r4"      256  144  0   4  No     Weight      false;
    213 Q5_K_R4     "q5_k_r4"      256  176  0   4  No     Weight      false;
    214 Q6_K_R4     "q6_k_r4"      256  210  0   4  No     Weight      false;
    216 IQ2_XXS_R4  "iq2_xxs_r4"   256  66   0   4  No     Weight      false;
    217 IQ2_XS_R4   "iq2_xs_r4"    256  74   0   4  No     Weight      false;
    218 IQ3_XXS_R4  "iq3_xxs_r4"   256  98   0   4  No     Weight      false;
    219 IQ1_S_R4    "iq1_s_r4"     32   6    2   4  Full   Weight      false;
    220 IQ4_NL_R4   "iq4_nl_r4"    32   18   0   4  No     Weight      false;
    221 IQ3_S_R4    "iq3_s_r4"     256  110  0   4  No     Weight      false;
    222 IQ2_S_R4    "iq2_s_r4"     256  82   0   4  No     Weight      false;
    223 IQ4_XS_R8   "iq4_xs_r8"    256  136  0   8  No     Weight      false;
    229 IQ1_M_R4    "iq1_m_r4"     32   7    2   4  Mmvq   Weight      false;
    230 BF16_R16    "bf16_r16"     1    2    0   16 No     Weight      false;
    233 Q6_0_R4     "q6_0_r4"      32   26   0   4  No     Weight      false;
    335 IQ2_BN_R4   "iq2_bn_r4"    64   16   4   4  No     Weight      false;
    337 IQ2_K_R4    "iq2_k_r4"     256  76   0   4  Full   Weight      false;
    338 IQ3_K_R4    "iq3_k_r4"     256  110  0   4  Full   Weight      false;
    339 IQ4_K_R4    "iq4_k_r4"     256  144  0   4  Full   Weight      false;
    340 IQ5_K_R4    "iq5_k_r4"     256  176  0   4  Full   Weight      false;
    344 IQ4_KS_R4   "iq4_ks_r4"    256  136  4   4  Full   Weight      false;
    352 IQ5_KS_R4   "iq5_ks_r4"    256  168  4   4  Full   Weight      false;
    353 MXFP4_R8    "mxfp4_r8"     32   17   0   8  No     Weight      false;
    397 Q8_K_R16    "q8_k_r16"     256  258  0   16 No     Internal    false;
    398 Q8_KV_R8    "q8_KV_r8"     32   32   4   8  No     Weight      false;
    399 Q8_K_R8     "q8_k_r8"      256  258  0   8  No     Weight      false;
}

impl QType {
    pub fn id(self) -> u32 {
        self as u32
    }

    /// ggml type name (`q4_K`, `iq4_ks_r4`).
    pub fn name(self) -> &'static str {
        self.traits().name
    }

    /// Look a type up by its ggml name or enum name, case-insensitively (`q4_k`, `Q4_K`, `IQ4_KS_R4`).
    pub fn from_name(name: &str) -> Option<QType> {
        ALL.iter().copied().find(|t| t.name().eq_ignore_ascii_case(name) || t.enum_name().eq_ignore_ascii_case(name))
    }

    pub fn is_quantized(self) -> bool {
        let t = self.traits();
        t.block > 1 || t.row_meta > 0
    }

    /// Bytes of one row of `ne0` elements, or `None` when `ne0` is not a multiple of the block size or the
    /// result overflows.
    pub fn row_size(self, ne0: u64) -> Option<u64> {
        let t = self.traits();
        if ne0 % t.block as u64 != 0 {
            return None;
        }
        (ne0 / t.block as u64).checked_mul(t.type_size as u64)?.checked_add(t.row_meta as u64)
    }

    /// Bytes of a tensor with dims `ne` (spec/gguf.md §6.4, with the I2_S exception).
    pub fn tensor_bytes(self, ne: &[u64; 4]) -> Option<u64> {
        let nrows = ne[1].checked_mul(ne[2])?.checked_mul(ne[3])?;
        if self == QType::I2_S {
            let n = ne[0].checked_mul(nrows)?;
            return (n / 4).checked_add(32);
        }
        self.row_size(ne[0])?.checked_mul(nrows)
    }

    /// The type a row-interleaved type is a repacking of (`Q4_0_R8` → `Q4_0`), if any.
    pub fn base_type(self) -> QType {
        use QType::*;
        match self {
            Q4_0_4_4 | Q4_0_4_8 | Q4_0_8_8 | Q4_0_R8 => Q4_0,
            Q5_0_R4 => Q5_0,
            Q6_0_R4 => Q6_0,
            Q8_0_R8 => Q8_0,
            Q2_K_R4 => Q2_K,
            Q3_K_R4 => Q3_K,
            Q4_K_R4 => Q4_K,
            Q5_K_R4 => Q5_K,
            Q6_K_R4 => Q6_K,
            IQ2_XXS_R4 => IQ2_XXS,
            IQ2_XS_R4 => IQ2_XS,
            IQ3_XXS_R4 => IQ3_XXS,
            IQ1_S_R4 => IQ1_S,
            IQ4_NL_R4 => IQ4_NL,
            IQ3_S_R4 => IQ3_S,
            IQ2_S_R4 => IQ2_S,
            IQ4_XS_R8 => IQ4_XS,
            IQ1_M_R4 => IQ1_M,
            BF16_R16 => BF16,
            IQ2_BN_R4 => IQ2_BN,
            IQ2_K_R4 => IQ2_K,
            IQ3_K_R4 => IQ3_K,
            IQ4_K_R4 => IQ4_K,
            IQ5_K_R4 => IQ5_K,
            IQ4_KS_R4 => IQ4_KS,
            IQ5_KS_R4 => IQ5_KS,
            MXFP4_R8 => MXFP4,
            Q8_KV_R8 => Q8_KV,
            Q8_K_R8 | Q8_K_R16 => Q8_K,
            t => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for &t in ALL {
            assert_eq!(QType::from_id(t.id()), Some(t));
            assert!(names.insert(t.name()), "duplicate name {}", t.name());
            assert_eq!(QType::from_name(t.name()), Some(t));
            assert_eq!(QType::from_name(t.enum_name()), Some(t));
        }
        for bad in [4u32, 5, 34, 35, 37, 38, 40, 42, 142, 143, 159, 201, 400] {
            assert_eq!(QType::from_id(bad), None, "id {bad} must be invalid");
        }
    }

    #[test]
    fn sizes_match_spec_examples() {
        assert_eq!(QType::Q4_0.row_size(4096), Some(4096 / 32 * 18));
        assert_eq!(QType::IQ4_KS.row_size(256), Some(136 + 4));
        assert_eq!(QType::Q8_KV.row_size(64), Some(64 + 8));
        assert_eq!(QType::Q4_K.row_size(100), None);
        assert_eq!(QType::I2_S.tensor_bytes(&[128, 4, 1, 1]), Some(128 * 4 / 4 + 32));
        assert_eq!(QType::F16.tensor_bytes(&[u64::MAX, 2, 1, 1]), None);
    }

    #[test]
    fn interleaved_types_keep_base_sizes() {
        for &t in ALL {
            let b = t.base_type();
            let (a, c) = (t.traits(), b.traits());
            // Q8_K_R8/R16 drop Q8_K's activation sums; IQ1_S_R4/IQ1_M_R4/Q8_KV_R8 use their own block shapes.
            if b != t && a.row_meta == c.row_meta && !matches!(t, QType::Q8_K_R8 | QType::Q8_K_R16) {
                assert_eq!(a.type_size * c.block, c.type_size * a.block, "{}", t.name());
            }
        }
    }
}
