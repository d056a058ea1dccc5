// Compiled for the device only (hipcc -S --cuda-device-only for gfx906, gfx90a and gfx940; nvcc -ptx for sm_80 and
// sm_90) so that test_codegen.cpp can read the decode preset's ISA facts: on gfx906 (HYGON DCU Z100) its M = 1 kernel
// fits 3 waves per SIMD (at most 84 VGPRs), uses no scratch, and takes its dot products with v_dot2_f32_f16 inside the
// innermost loop; on every target its weights arrive in 16-byte loads. Every row entry (1 .. 8 rows of M per block)
// is instantiated, so that bench/amd_static_report.py and bench/decode_isa_compare.py see the registers of each.

#include <opt4gptq/presets.hpp>

template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Decode, 1, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Decode, 2, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Decode, 3, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Decode, 4, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Decode, 5, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Decode, 6, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Decode, 7, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Decode, 8, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Decode, 1, true>(
    const opt4gptq::KernelParams);
