#pragma once
/// @file
/// DequantGemm: the paper's kernel, named by its four policies. It is the GemmKernel of the SIMT mainloop (which
/// hosts the LoadPolicy and the MathPolicy), the ReducePolicy, and the split-K scheduler of the tile:
/// @code
/// DequantGemm<Load, Reduce, Math, Tile, Codec>
///   == GemmKernel<MainloopSimt<Load, Math, Tile, Codec>, Reduce, SplitKScheduler<Tile>>
/// @endcode
/// Presets, tests and user code name kernels this way; a new mainloop or scheduler is composed with GemmKernel
/// directly (kernel/gemm_kernel.hpp).

#include "../codec/int4.hpp"
#include "../policy/reduce.hpp"
#include "../tile.hpp"
#include "gemm_kernel.hpp"
#include "mainloop_simt.hpp"
#include "scheduler.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

namespace detail {
/// The tile a DequantGemm gets when none is named: the exllama tile for per-thread atomics (the paper's baseline
/// structure), the split-K tile for everything else. Specialize it for your own ReducePolicy to change its default.
template <class Reduce>
struct default_tile {
  using type = SplitKTile;
};
template <>
struct default_tile<ReduceGlobalAtomic> {
  using type = ExllamaTile;
};
}  // namespace detail

/// @ingroup kernel
/// The kernel composed of one policy of each of the paper's families (LoadPolicy, ReducePolicy, MathPolicy), a
/// TileShape and a codec.
template <class Load, class Reduce, class Math, class Tile = typename detail::default_tile<Reduce>::type,
          class Codec = CodecInt4>
using DequantGemm = GemmKernel<MainloopSimt<Load, Math, Tile, Codec>, Reduce, SplitKScheduler<Tile>>;

/// @ingroup kernel
/// DequantGemm for A and C of element type `Element` (ElementFp16: DequantGemm itself; ElementBf16: bf16 activations
/// and outputs, fp32 dot products, the MathPolicy unused, a ReducePolicy that writes bf16: detail::WordArithmetic).
template <class Element, class Load, class Reduce, class Math, class Tile = typename detail::default_tile<Reduce>::type,
          class Codec = CodecInt4>
using DequantGemmOf = GemmKernel<typename detail::simt_mainloop_of<Element, Load, Math, Tile, Codec>::type, Reduce,
                                 SplitKScheduler<Tile>>;

OPT4GPTQ_NAMESPACE_END
