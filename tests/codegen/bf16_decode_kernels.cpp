// Compiled for the device only (hipcc -S --cuda-device-only for gfx906, gfx90a and gfx940; nvcc -ptx for sm_80 and
// sm_90) so that test_codegen.cpp can read what the bf16 decode kernel is made of: its staged bf16 activations
// converted to range-scaled fp16 (fp32 multiply, one rounding to fp16 per pair), then the fp16 decode arithmetic
// (gfx9: v_dot2_f32_f16 in the innermost loop; NVIDIA: the packed fp16 chain), one rounding to bf16 per output pair,
// and on gfx906 still no bf16 instruction and 3 waves per SIMD at M = 1.

#include <opt4gptq/presets.hpp>

template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Bf16Decode, 1, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Bf16Decode, 2, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Bf16Decode, 1, true>(
    const opt4gptq::KernelParams);
