// Compiled for the device only (hipcc -S --cuda-device-only for gfx906, gfx90a and gfx940; nvcc -ptx for sm_80 and
// sm_90) so that test_codegen.cpp can read what the bf16 kernels are made of: the bf16 magic number (0x43004300) in
// the dequantization, fp32 products, one conversion to bf16 per output pair, bf16 atomics where C accumulates, and no
// fp16 arithmetic in the GEMM (the scales are fp16, widened to fp32). The bf16 decode kernel computes in fp16 after a
// conversion: tests/codegen/bf16_decode_kernels.cpp.

#include <opt4gptq/presets.hpp>

namespace opt4gptq {
using Bf16GlobalAtomic = DequantGemmOf<ElementBf16, LoadScalar, ReduceGlobalAtomic, MathBuiltin>;
}  // namespace opt4gptq

template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Bf16Deterministic, 8, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::Bf16Simt, 4, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::Bf16GlobalAtomic, 2, false>(
    const opt4gptq::KernelParams);
