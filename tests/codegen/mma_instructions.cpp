// Compiled for the device only (hipcc -S --cuda-device-only for gfx90a and gfx940, nvcc -ptx for sm_80 and sm_90)
// so that test_codegen.cpp can find the matrix instruction of mma/instructions.hpp in the ISA, alone and in the
// TensorCore and TensorCorePipelined presets' kernels; compiled for gfx906 it must fail with the message that names the SIMT presets (CTest
// codegen.mma_gfx906_refused).

#include <opt4gptq/mma/instructions.hpp>
#include <opt4gptq/presets.hpp>

template __global__ void opt4gptq::dequant_gemm_kernel<opt4gptq::presets::TensorCore, 16, false>(
    const opt4gptq::KernelParams);
// The pipelined preset's decode entry (8 rows: half an M tile) and its 16-row entry.
template __global__ void opt4gptq::dequant_gemm_kernel_dynamic<opt4gptq::presets::TensorCorePipelined, 8, false>(
    const opt4gptq::KernelParams);
template __global__ void opt4gptq::dequant_gemm_kernel_dynamic<opt4gptq::presets::TensorCorePipelined, 16, false>(
    const opt4gptq::KernelParams);

__global__ void opt4gptq_codegen_mma(const std::uint32_t* a, const std::uint32_t* b, float* d) {
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#if defined(OPT4GPTQ_BACKEND_CUDA)
  const std::uint32_t ar[4] = {a[0], a[1], a[2], a[3]};
  const std::uint32_t br[2] = {b[0], b[1]};
  opt4gptq::mma::mma_m16n8k16(acc, ar, br);
#else
  const std::uint32_t ar[2] = {a[0], a[1]};
  const std::uint32_t br[2] = {b[0], b[1]};
  opt4gptq::mma::mfma_f32_16x16x16f16(acc, ar, br);
#endif
  for (int i = 0; i < 4; ++i) d[i * 64 + threadIdx.x] = acc[i];
}
