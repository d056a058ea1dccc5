// Every kernel the tests run, at every entry point a launch can pick (rows of M 1..8 per block; act-order at 1, 2, 4
// and 8 rows), compiled for the device only by compare.sh to compare the generated code of two versions of the
// library. Uses public names only (DequantGemm, the presets, the custom-policy example), so that it compiles against
// older and newer trees alike. OPT4GPTQ_COMPARE_KERNEL picks the kernel.

#include <opt4gptq/opt4gptq.hpp>

#include "custom_policies.hpp"

namespace {
using namespace opt4gptq;
template <int I>
struct Kernel;
// The list of tests/test_kernels.def, spelled out: the base revision may predate that file, or lack a kernel of it.
#define OPT4GPTQ_COMPARE(I, ...) \
  template <>                    \
  struct Kernel<I> {             \
    using type = __VA_ARGS__;    \
  };
OPT4GPTQ_COMPARE(0, DequantGemm<LoadScalar, ReduceGlobalAtomic, MathBuiltin>)
OPT4GPTQ_COMPARE(1, DequantGemm<LoadScalar, ReduceGlobalAtomic, MathInlineAsm>)
OPT4GPTQ_COMPARE(2, DequantGemm<LoadHalf2, ReduceGlobalAtomic, MathBuiltin>)
OPT4GPTQ_COMPARE(3, DequantGemm<LoadHalf2, ReduceGlobalAtomic, MathInlineAsm>)
OPT4GPTQ_COMPARE(4, DequantGemm<LoadScalar, ReduceSharedBuffered, MathBuiltin>)
OPT4GPTQ_COMPARE(5, DequantGemm<LoadScalar, ReduceSharedBuffered, MathInlineAsm>)
OPT4GPTQ_COMPARE(6, DequantGemm<LoadHalf2, ReduceSharedBuffered, MathBuiltin>)
OPT4GPTQ_COMPARE(7, DequantGemm<LoadHalf2, ReduceSharedBuffered, MathInlineAsm>)
OPT4GPTQ_COMPARE(8, user::CustomGemm)
OPT4GPTQ_COMPARE(9, DequantGemm<LoadVec8, ReduceSharedBuffered, MathDot2F32>)
OPT4GPTQ_COMPARE(10, presets::Deterministic)
#undef OPT4GPTQ_COMPARE
using Gemm = Kernel<OPT4GPTQ_COMPARE_KERNEL>::type;
template <int kRows, bool kActOrder>
void* entry() {
  return reinterpret_cast<void*>(&dequant_gemm_kernel<Gemm, kRows, kActOrder>);
}
}  // namespace

void* const opt4gptq_compare_entry_points[] = {
    entry<1, false>(), entry<2, false>(), entry<3, false>(), entry<4, false>(), entry<5, false>(), entry<6, false>(),
    entry<7, false>(), entry<8, false>(), entry<1, true>(),  entry<2, true>(),  entry<4, true>(),  entry<8, true>(),
};
