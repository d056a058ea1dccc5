// Compiled for the device only (hipcc -S --cuda-device-only / nvcc -ptx) once per architecture and combination, to
// produce the assembly that test_codegen.cpp inspects. OPT4GPTQ_CODEGEN_COMBINATION is the index of a line of
// tests/test_kernels.def marked for codegen.

#include "../gpu/combinations.hpp"

using Gemm = test::Combination<OPT4GPTQ_CODEGEN_COMBINATION>::type;

// Referencing the entry points from host code makes both compilers emit them: M = 1 and M = 8 rows per block, and
// one act-order variant (gathered activations).
void* const opt4gptq_codegen_kernels[] = {
    reinterpret_cast<void*>(&opt4gptq::dequant_gemm_kernel<Gemm, 1, false>),
    reinterpret_cast<void*>(&opt4gptq::dequant_gemm_kernel<Gemm, 8, false>),
    reinterpret_cast<void*>(&opt4gptq::dequant_gemm_kernel<Gemm, 4, true>),
};
