// Compiled for the device only (hipcc -S --cuda-device-only for gfx906, gfx90a and gfx940; nvcc -ptx for sm_80 and
// sm_90) so that test_codegen.cpp can read the decode preset's ISA facts: on gfx906 (HYGON DCU Z100) its M = 1 kernel
// fits 3 waves per SIMD (at most 84 VGPRs), uses no scratch, and takes its dot products with v_dot2_f32_f16 inside the
// batch loop; on every target its weights arrive in 16-byte loads.

#include <opt4gptq/presets.hpp>

template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Decode, 1, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Decode, 4, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Decode, 1, true>(
    const opt4gptq::KernelParams);
