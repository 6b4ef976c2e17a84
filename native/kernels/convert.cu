// Element-type conversion kernels (f16/bf16 <-> f32): the first members of dist/ikl_kernels.fatbin, loaded at
// run time by the engine's CUDA backend (driver API, cuModuleGetFunction by name). Conversions match the CPU
// reference in native/core/src/quant/convert.rs: f32 -> f16 rounds to nearest even (NaN -> quiet NaN),
// f32 -> bf16 rounds to nearest even with NaN kept quiet, as ggml's reference does.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

extern "C" __global__ void convert_f16_f32(const __half *src, float *dst, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __half2float(src[i]);
}

extern "C" __global__ void convert_bf16_f32(const uint16_t *src, float *dst, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    // bf16 -> f32 is exact: the bf16 bits are the high half of the f32.
    if (i < n) dst[i] = __uint_as_float((uint32_t)src[i] << 16);
}

extern "C" __global__ void convert_f32_f16(const float *src, __half *dst, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __float2half_rn(src[i]);
}

extern "C" __global__ void convert_f32_bf16(const float *src, uint16_t *dst, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const uint32_t u = __float_as_uint(src[i]);
    // Same rule as ggml_compute_fp32_to_bf16: NaN keeps its payload's top bits with the quiet bit set.
    dst[i] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40) : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
