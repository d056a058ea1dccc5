// The bf16 matrix-core kernels, compiled for the device only (hipcc -S --cuda-device-only for gfx90a and gfx940;
// nvcc -ptx for sm_80 and sm_90), so that test_codegen.cpp can check that their products are the bf16 matrix
// instructions (mma.sync ... .bf16.bf16 on NVIDIA, v_mfma_f32_16x16x16bf16_1k on AMD) and no fp16 one. For gfx906,
// which has neither matrix instructions nor bf16 arithmetic, this file must not compile (codegen.bf16_mma_gfx906_refused).

#include <opt4gptq/presets.hpp>

template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Bf16TensorCore, 16, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Bf16TensorCoreDeterministic, 64, true>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel_dynamic<opt4gptq::presets::Bf16TensorCorePipelined, 8, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel_dynamic<opt4gptq::presets::Bf16TensorCorePipelinedDeterministic,
                                                               32, true>(const opt4gptq::KernelParams);
