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
template <>
struct Kernel<0> {
  using type = DequantGemm<LoadScalar, ReduceGlobalAtomic, MathBuiltin>;
};
template <>
struct Kernel<1> {
  using type = DequantGemm<LoadScalar, ReduceGlobalAtomic, MathInlineAsm>;
};
template <>
struct Kernel<2> {
  using type = DequantGemm<LoadHalf2, ReduceGlobalAtomic, MathBuiltin>;
};
template <>
struct Kernel<3> {
  using type = DequantGemm<LoadHalf2, ReduceGlobalAtomic, MathInlineAsm>;
};
template <>
struct Kernel<4> {
  using type = DequantGemm<LoadScalar, ReduceSharedBuffered, MathBuiltin>;
};
template <>
struct Kernel<5> {
  using type = DequantGemm<LoadScalar, ReduceSharedBuffered, MathInlineAsm>;
};
template <>
struct Kernel<6> {
  using type = DequantGemm<LoadHalf2, ReduceSharedBuffered, MathBuiltin>;
};
template <>
struct Kernel<7> {
  using type = DequantGemm<LoadHalf2, ReduceSharedBuffered, MathInlineAsm>;
};
template <>
struct Kernel<8> {
  using type = user::CustomGemm;
};
template <>
struct Kernel<9> {
  using type = DequantGemm<LoadVec8, ReduceSharedBuffered, MathDot2F32>;
};
template <>
struct Kernel<10> {
  using type = presets::Deterministic;
};
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
