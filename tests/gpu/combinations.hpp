#pragma once
// The kernels the GPU tests run: the 8 shipped policy combinations, the user-written policies of the custom-policy
// example, and a combination of the extra shipped policies (16-byte loads, fp32 dot products).

#include <opt4gptq/opt4gptq.hpp>

#include "../../examples/custom_policies.hpp"

namespace test {

template <int I>
struct Combination;

#define OPT4GPTQ_DEFINE_COMBINATION(I, ...) \
  template <>                               \
  struct Combination<I> {                   \
    using type = __VA_ARGS__;               \
  }

using namespace opt4gptq;
OPT4GPTQ_DEFINE_COMBINATION(0, DequantGemm<LoadScalar, ReduceGlobalAtomic, MathBuiltin>);    // Baseline
OPT4GPTQ_DEFINE_COMBINATION(1, DequantGemm<LoadScalar, ReduceGlobalAtomic, MathInlineAsm>);  // ILA
OPT4GPTQ_DEFINE_COMBINATION(2, DequantGemm<LoadHalf2, ReduceGlobalAtomic, MathBuiltin>);     // VML
OPT4GPTQ_DEFINE_COMBINATION(3, DequantGemm<LoadHalf2, ReduceGlobalAtomic, MathInlineAsm>);
OPT4GPTQ_DEFINE_COMBINATION(4, DequantGemm<LoadScalar, ReduceSharedBuffered, MathBuiltin>);  // SMB
OPT4GPTQ_DEFINE_COMBINATION(5, DequantGemm<LoadScalar, ReduceSharedBuffered, MathInlineAsm>);
OPT4GPTQ_DEFINE_COMBINATION(6, DequantGemm<LoadHalf2, ReduceSharedBuffered, MathBuiltin>);
OPT4GPTQ_DEFINE_COMBINATION(7, DequantGemm<LoadHalf2, ReduceSharedBuffered, MathInlineAsm>);  // Opt4GPTQ
OPT4GPTQ_DEFINE_COMBINATION(8, user::CustomGemm);
OPT4GPTQ_DEFINE_COMBINATION(9, DequantGemm<LoadVec8, ReduceSharedBuffered, MathDot2F32>);
OPT4GPTQ_DEFINE_COMBINATION(10, presets::Deterministic);

#undef OPT4GPTQ_DEFINE_COMBINATION

}  // namespace test
