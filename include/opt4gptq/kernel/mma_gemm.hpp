#pragma once
/// @file
/// MmaGemm: the matrix-core kernel, named by its policies. It is the GemmKernel of the MMA mainloop (which hosts the
/// LoadPolicy for the activations), a ReducePolicy of the block-sum contract, and the split-K scheduler of its tile:
/// @code
/// MmaGemm<Load, Reduce, Tile, Codec>
///   == GemmKernel<MainloopMma<Load, Tile, Codec>, Reduce, SplitKScheduler<Tile>>
/// @endcode
/// The default tile uses this backend's instruction (mma::NativeShape): NVIDIA sm_80 and later, AMD gfx908, gfx90a
/// and gfx940-942. Built for a target without matrix instructions (gfx906, the HYGON DCU Z100), it is a compile-time
/// error that names the SIMT presets.

#include "../codec/int4.hpp"
#include "../mma/instructions.hpp"
#include "gemm_kernel.hpp"
#include "mainloop_mma.hpp"
#include "scheduler.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup kernel
/// The tile the presets use: 128 columns (NVIDIA: 4 waves of 32 lanes x 32 columns; AMD: 2 waves of 64 lanes x 64
/// columns), stages of 128 rows of K. 128 columns keep the block sums of 64 rows of M in 32 KiB of shared memory.
using DefaultMmaTile = MmaTileShape<mma::NativeShape, 128 / (4 * mma::NativeShape::kN), 4>;

/// @ingroup kernel
template <class Load, class Reduce, class Tile = DefaultMmaTile, class Codec = CodecInt4>
using MmaGemm = GemmKernel<MainloopMma<Load, Tile, Codec>, Reduce, SplitKScheduler<Tile>>;

OPT4GPTQ_NAMESPACE_END
