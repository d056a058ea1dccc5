#pragma once
// The kernels the GPU and codegen tests run, from the one list in tests/test_kernels.def: the 8 shipped policy
// combinations, the user-written policies of the custom-policy example, and extra shipped policies (16-byte loads,
// fp32 dot products, the deterministic preset). test::Combination<I> is the kernel of line I of that file.

#include <opt4gptq/opt4gptq.hpp>

#include "../../examples/custom_policies.hpp"
#include "mainloop_scalar.hpp"

namespace test {

template <int I>
struct Combination;

using namespace opt4gptq;

#define OPT4GPTQ_TEST_KERNEL(I, Name, Codegen, ...)     \
  template <>                                           \
  struct Combination<I> {                               \
    using type = __VA_ARGS__;                           \
    static constexpr const char* name = #Name;          \
    static constexpr bool codegen = (Codegen) == 1;     \
    static constexpr bool matrix_core = (Codegen) == 2; \
  };
#include "../test_kernels.def"
#undef OPT4GPTQ_TEST_KERNEL

/// The indices of the list, in line order; they must be 0, 1, 2, ... (CMake numbers its generated files by them).
inline constexpr int kCombinationIndices[] = {
#define OPT4GPTQ_TEST_KERNEL(I, Name, Codegen, ...) I,
#include "../test_kernels.def"
#undef OPT4GPTQ_TEST_KERNEL
};
inline constexpr int kCombinations = static_cast<int>(sizeof(kCombinationIndices) / sizeof(int));

constexpr bool indices_in_line_order() {
  for (int i = 0; i < kCombinations; ++i)
    if (kCombinationIndices[i] != i) return false;
  return true;
}
static_assert(indices_in_line_order(), "tests/test_kernels.def: the indices must be 0, 1, 2, ... in line order");

}  // namespace test
