// Matrix × activations for weights resident on a GPU: `out[j*ldo + r] = W[r] · Y[j]`, where W rows are in the
// weight's ggml encoding and Y rows are f32. The engine hands the kernels the activation values the CPU path
// multiplies (its `quantize_act` output, decoded back to f32: the q8 grid values themselves), so GPU and CPU dot
// products differ only in summation order, whatever activation format the CPU tier picks. One kernel symbol
// per weight type, `mmv_<type>` (looked up by name; a missing symbol means "no CUDA kernel for this type").
//
// Layout of the work (mmvq-style, ik_llama.cpp ggml/src/ggml-cuda/mmvq.cu @ 8337e4cd in spirit, not in code):
// one warp per weight row, MMV_ROWS warps per block; each block handles up to MMV_NY activation rows, so one
// read of a weight sub-block serves up to 8 tokens (single-token decode and small batches alike). Lanes stride
// over the row's work items (a float element, or a 32-weight sub-block of a quant block); a warp reduction
// gives each dot product. Block layouts are ggml's (ggml-common.h), byte offsets spelled out per type.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#define MMV_ROWS 4 // warps (weight rows) per block: cuda/ops.rs ROWS_PER_BLOCK
#define MMV_NY 8   // activation rows per block: cuda/ops.rs NY_PER_BLOCK

static __device__ __forceinline__ float ld_f16(const uint8_t *p) { return __half2float(*(const __half *)p); }

// Each type: QK weights per block, SUBS work items per block (QK/SUBS weights each), W_BYTES per block, and
// `dot(block, y, sub)` = Σ weight·y over item `sub`, with `y` pointing at that item's first activation.

// ---------------------------------------------------------------- float types (one element per work item)

struct t_f32 {
    static constexpr int QK = 1, SUBS = 1, W_BYTES = 4;
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int) { return *(const float *)w * y[0]; }
};
struct t_f16 {
    static constexpr int QK = 1, SUBS = 1, W_BYTES = 2;
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int) { return ld_f16(w) * y[0]; }
};
struct t_bf16 {
    static constexpr int QK = 1, SUBS = 1, W_BYTES = 2;
    // bf16 -> f32 is exact: the bf16 bits are the high half of the f32.
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int) {
        return __uint_as_float((uint32_t)(*(const uint16_t *)w) << 16) * y[0];
    }
};

// ---------------------------------------------------------------- 32-weight types

// q8_0: d f16 @0, qs i8[32] @2.
struct t_q8_0 {
    static constexpr int QK = 32, SUBS = 1, W_BYTES = 34;
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int) {
        const int8_t *q = (const int8_t *)(w + 2);
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 32; ++j) s += q[j] * y[j];
        return ld_f16(w) * s;
    }
};

// q4_0: d f16 @0, qs u8[16] @2; weight j (j < 16) = (qs[j] & 15) - 8, weight j + 16 = (qs[j] >> 4) - 8.
struct t_q4_0 {
    static constexpr int QK = 32, SUBS = 1, W_BYTES = 18;
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int) {
        const uint8_t *qs = w + 2;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) s += ((qs[j] & 15) - 8) * y[j] + ((qs[j] >> 4) - 8) * y[j + 16];
        return ld_f16(w) * s;
    }
};

// q4_1: d f16 @0, m f16 @2, qs u8[16] @4; weight = d·q + m (nibbles as in q4_0).
struct t_q4_1 {
    static constexpr int QK = 32, SUBS = 1, W_BYTES = 20;
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int) {
        const uint8_t *qs = w + 4;
        float s = 0.0f, sy = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            s += (qs[j] & 15) * y[j] + (qs[j] >> 4) * y[j + 16];
            sy += y[j] + y[j + 16];
        }
        return ld_f16(w) * s + ld_f16(w + 2) * sy;
    }
};

// The 5th bit of weight j (j < 16) is bit j of qh, of weight j + 16 bit j + 16 (ggml `dequantize_row_q5_0`).
static __device__ __forceinline__ uint32_t ld_u32(const uint8_t *p) { return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24); }

// q5_0: d f16 @0, qh u32 @2, qs u8[16] @6; weight = d·(q5 − 16).
struct t_q5_0 {
    static constexpr int QK = 32, SUBS = 1, W_BYTES = 22;
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int) {
        const uint32_t qh = ld_u32(w + 2);
        const uint8_t *qs = w + 6;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int x0 = (qs[j] & 15) | (((qh >> j) << 4) & 0x10), x1 = (qs[j] >> 4) | ((qh >> (j + 12)) & 0x10);
            s += (x0 - 16) * y[j] + (x1 - 16) * y[j + 16];
        }
        return ld_f16(w) * s;
    }
};

// q5_1: d f16 @0, m f16 @2, qh u32 @4, qs u8[16] @8; weight = d·q5 + m.
struct t_q5_1 {
    static constexpr int QK = 32, SUBS = 1, W_BYTES = 24;
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int) {
        const uint32_t qh = ld_u32(w + 4);
        const uint8_t *qs = w + 8;
        float s = 0.0f, sy = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int x0 = (qs[j] & 15) | (((qh >> j) << 4) & 0x10), x1 = (qs[j] >> 4) | ((qh >> (j + 12)) & 0x10);
            s += x0 * y[j] + x1 * y[j + 16];
            sy += y[j] + y[j + 16];
        }
        return ld_f16(w) * s + ld_f16(w + 2) * sy;
    }
};

// q6_0 (ik): d f16 @0, qh u8[8] @2, qs u8[16] @10; h = qh[j%8] >> 4(j/8): bits 4-5 of weight j are h's bits 0-1,
// of weight j + 16 h's bits 2-3; weight = d·(q6 − 32).
struct t_q6_0 {
    static constexpr int QK = 32, SUBS = 1, W_BYTES = 26;
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int) {
        const uint8_t *qh = w + 2, *qs = w + 10;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int h = qh[j % 8] >> (4 * (j / 8));
            const int x0 = (qs[j] & 15) | ((h << 4) & 0x30), x1 = (qs[j] >> 4) | ((h << 2) & 0x30);
            s += (x0 - 32) * y[j] + (x1 - 32) * y[j + 16];
        }
        return ld_f16(w) * s;
    }
};

// ---------------------------------------------------------------- 256-weight types: an item is one 32-weight sub-block

// q4_K: d f16 @0, dmin f16 @2, scales u8[12] @4 (6-bit scale and min per sub-block), qs u8[128] @16; sub-block
// `sub` is the low (even sub) or high (odd sub) nibbles of qs[32·(sub/2) ..]; weight = d·sc·q − dmin·m.
struct t_q4_k {
    static constexpr int QK = 256, SUBS = 8, W_BYTES = 144;
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int sub) {
        const uint8_t *sc = w + 4;
        int s, m;
        if (sub < 4) {
            s = sc[sub] & 63;
            m = sc[sub + 4] & 63;
        } else {
            s = (sc[sub + 4] & 15) | ((sc[sub - 4] >> 6) << 4);
            m = (sc[sub + 4] >> 4) | ((sc[sub] >> 6) << 4);
        }
        const uint8_t *qs = w + 16 + 32 * (sub / 2);
        const int shift = 4 * (sub & 1);
        float sq = 0.0f, sy = 0.0f;
#pragma unroll
        for (int l = 0; l < 32; ++l) {
            sq += ((qs[l] >> shift) & 15) * y[l];
            sy += y[l];
        }
        return ld_f16(w) * s * sq - ld_f16(w + 2) * m * sy;
    }
};

// q6_K: ql u8[128] @0, qh u8[64] @128, scales i8[16] @192, d f16 @208; 210 bytes. Weight e: half h = e/128,
// quarter q = (e%128)/32, l = e%32: low 4 bits from ql[64h + l + 32(q&1)] (high nibble when q ≥ 2), high 2 bits
// from qh[32h + l] >> 2q, minus 32; scale scales[8h + 2q + l/16].
struct t_q6_k {
    static constexpr int QK = 256, SUBS = 8, W_BYTES = 210;
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int sub) {
        const int h = sub / 4, q = sub % 4;
        const uint8_t *ql = w + 64 * h + 32 * (q & 1), *qh = w + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(w + 192) + 8 * h + 2 * q;
        const int lshift = (q >= 2) ? 4 : 0, hshift = 2 * q;
        float s0 = 0.0f, s1 = 0.0f;
#pragma unroll
        for (int l = 0; l < 16; ++l) s0 += ((((ql[l] >> lshift) & 15) | (((qh[l] >> hshift) & 3) << 4)) - 32) * y[l];
#pragma unroll
        for (int l = 16; l < 32; ++l) s1 += ((((ql[l] >> lshift) & 15) | (((qh[l] >> hshift) & 3) << 4)) - 32) * y[l];
        return ld_f16(w + 208) * (sc[0] * s0 + sc[1] * s1);
    }
};

// iq4_xs: d f16 @0, scales_h u16 @2, scales_l u8[4] @4, qs u8[128] @8. Sub-block ib: 6-bit scale
// ls = low nibble of scales_l[ib/2] (high nibble for odd ib) | 2 bits of scales_h at 2ib, weight = d·(ls−32)·
// kvalues[nibble]; weights 0..15 of the sub-block are the low nibbles of qs[16ib..], 16..31 the high ones.
__constant__ int8_t k_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// iq4_nl: d f16 @0, qs u8[16] @2; weight = d·kvalues[nibble] (nibbles as in q4_0).
struct t_iq4_nl {
    static constexpr int QK = 32, SUBS = 1, W_BYTES = 18;
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int) {
        const uint8_t *qs = w + 2;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) s += k_iq4nl[qs[j] & 15] * y[j] + k_iq4nl[qs[j] >> 4] * y[j + 16];
        return ld_f16(w) * s;
    }
};

struct t_iq4_xs {
    static constexpr int QK = 256, SUBS = 8, W_BYTES = 136;
    static __device__ __forceinline__ float dot(const uint8_t *w, const float *y, int sub) {
        const int sh = *(const uint16_t *)(w + 2);
        const int ls = ((w[4 + sub / 2] >> (4 * (sub & 1))) & 15) | (((sh >> (2 * sub)) & 3) << 4);
        const uint8_t *qs = w + 8 + 16 * sub;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 16; ++j) s += k_iq4nl[qs[j] & 15] * y[j] + k_iq4nl[qs[j] >> 4] * y[j + 16];
        return ld_f16(w) * (float)(ls - 32) * s;
    }
};

// ---------------------------------------------------------------- the generic kernel

template <typename T>
static __device__ __forceinline__ void mmv(const uint8_t *__restrict__ W, int64_t ws, const float *__restrict__ Y, int64_t ys,
                                           float *__restrict__ out, int64_t ldo, int n, int nrows, int ny) {
    const int row = blockIdx.x * MMV_ROWS + threadIdx.y;
    const int j0 = blockIdx.y * MMV_NY;
    if (row >= nrows) return; // the whole warp leaves together: no barrier below
    const int nyb = min(MMV_NY, ny - j0);
    const uint8_t *w = W + (int64_t)row * ws;
    const float *y = Y + (int64_t)j0 * ys;
    float acc[MMV_NY];
#pragma unroll
    for (int j = 0; j < MMV_NY; ++j) acc[j] = 0.0f;
    const int n_items = n / T::QK * T::SUBS;
    for (int it = threadIdx.x; it < n_items; it += 32) {
        const int ib = it / T::SUBS, sub = it % T::SUBS;
        const uint8_t *wb = w + (int64_t)ib * T::W_BYTES;
#pragma unroll
        for (int j = 0; j < MMV_NY; ++j)
            if (j < nyb) acc[j] += T::dot(wb, y + j * ys + (int64_t)ib * T::QK + sub * (T::QK / T::SUBS), sub);
    }
#pragma unroll
    for (int j = 0; j < MMV_NY; ++j) {
        float v = acc[j];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0 && j < nyb) out[(int64_t)(j0 + j) * ldo + row] = v;
    }
}

#define MMV_KERNEL(name, T)                                                                                                \
    extern "C" __global__ void __launch_bounds__(32 * MMV_ROWS)                                                          \
        name(const uint8_t *W, int64_t ws, const float *Y, int64_t ys, float *out, int64_t ldo, int n, int nrows, int ny) { \
        mmv<T>(W, ws, Y, ys, out, ldo, n, nrows, ny);                                                                    \
    }

MMV_KERNEL(mmv_f32, t_f32)
MMV_KERNEL(mmv_f16, t_f16)
MMV_KERNEL(mmv_bf16, t_bf16)
MMV_KERNEL(mmv_q8_0, t_q8_0)
MMV_KERNEL(mmv_q4_0, t_q4_0)
MMV_KERNEL(mmv_q4_1, t_q4_1)
MMV_KERNEL(mmv_q5_0, t_q5_0)
MMV_KERNEL(mmv_q5_1, t_q5_1)
MMV_KERNEL(mmv_q6_0, t_q6_0)
MMV_KERNEL(mmv_iq4_nl, t_iq4_nl)
MMV_KERNEL(mmv_q4_k, t_q4_k)
MMV_KERNEL(mmv_q6_k, t_q6_k)
MMV_KERNEL(mmv_iq4_xs, t_iq4_xs)
