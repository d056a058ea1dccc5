#pragma once
/// @file
/// thread_output(): where a thread's partial sums belong, as every mainloop hands it to the epilogue (the `where()`
/// of `epilogue(acc, where)`), from the block's place in the call. Not API.
/// @ingroup kernel

#include "../element.hpp"
#include "../platform.hpp"
#include "../policy/reduce.hpp"
#include "params.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace detail {

/// The ThreadOutput of a thread whose block computes rows [m0, m0 + rows) of C from column `block_col`, the thread's
/// columns starting at `col`, its column lane and K sub-slice `lane` and `split` (0 where the tile has one). The
/// split-K fields are the scheduler's (split_k_context()).
OPT4GPTQ_DEVICE ThreadOutput thread_output(const KernelParams& p, int m0, int rows, int col, int block_col, int lane,
                                           int split) {
  ThreadOutput out;
  out.c = p.c + m0 * p.ldc;
  out.ldc = p.ldc;
  out.rows = rows;
  out.n = p.n;
  out.col = col;
  out.block_col = block_col;
  out.lane = lane;
  out.split = split;
  out.thread = static_cast<int>(threadIdx.x);
  return out;
}

/// The output type of a kernel of element type `Element`: ThreadOutput itself for fp16, ThreadOutputBf16 (the same
/// fields; the ReducePolicy rounds to bf16) for bf16.
template <class Element>
OPT4GPTQ_DEVICE auto element_output(const ThreadOutput& out) {
  if constexpr (Element::kType == ElementType::kBf16) {
    ThreadOutputBf16 bf16;
    static_cast<ThreadOutput&>(bf16) = out;
    return bf16;
  } else {
    return out;
  }
}

}  // namespace detail
OPT4GPTQ_NAMESPACE_END
