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
#include "mainloop_mma_pipelined.hpp"
#include "scheduler.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup kernel
/// The tile the presets use: 128 columns (NVIDIA: 4 waves of 32 lanes x 32 columns; AMD: 2 waves of 64 lanes x 64
/// columns), stages of 128 rows of K. 128 columns keep the block sums of 64 rows of M in 32 KiB of shared memory.
using DefaultMmaTile = MmaTileShape<mma::NativeShape, 128 / (4 * mma::NativeShape::kN), 4>;

/// @ingroup kernel
template <class Load, class Reduce, class Tile = DefaultMmaTile, class Codec = CodecInt4>
using MmaGemm = GemmKernel<MainloopMma<Load, Tile, Codec>, Reduce, SplitKScheduler<Tile>>;

/// @ingroup kernel
/// MmaGemm for A and C of element type `Element` (ElementFp16: MmaGemm itself; ElementBf16: the bf16 matrix
/// instructions, mma.sync ... .bf16 on NVIDIA sm_80+, v_mfma_f32_16x16x16bf16_1k on AMD gfx90a/gfx940-942).
template <class Element, class Load, class Reduce, class Tile = DefaultMmaTile, class Codec = CodecInt4>
using MmaGemmOf =
    GemmKernel<typename detail::mma_mainloop_of<Element, Load, Tile, Codec>::type, Reduce, SplitKScheduler<Tile>>;

/// @ingroup kernel
/// The pipelined tile the presets use. NVIDIA: 4 warps x 32 columns, stages of 64 rows, a ring of 4 stages (3 in
/// flight; the mainloop's shared memory is 22 KiB at 8 rows of M, 64 KiB at 64). Measured on the H200 (bench/NOTES.md,
/// 2026-12-03): 3 stages of 64 rows in flight beat 2 of 128 (the earlier default, a ring of 3) by 2-6% at M = 1..64 (a
/// block waits for less data before its first matrix instruction, and the split-K plan gets more stages per block),
/// stages of 128 or 256 rows in a ring of 4 were slower, and a register cap for 8 blocks per multiprocessor spills at
/// 64 rows. AMD: 2 waves x 64 columns, 2 stages of 128 rows (AMD allows a block 64 KiB of LDS, and without an
/// asynchronous copy a deeper ring holds nothing more in flight).
#if defined(OPT4GPTQ_BACKEND_HIP)
using DefaultMmaPipelineTile = MmaPipelineTile<mma::NativeShape, 2, 4, 2>;
#else
using DefaultMmaPipelineTile = MmaPipelineTile<mma::NativeShape, 4, 2, 4>;
#endif

/// @ingroup kernel
/// The pipelined tile of the deterministic presets (ReduceSharedSerial). NVIDIA: stages of 128 rows in a ring of 3, the
/// tile DefaultMmaPipelineTile was before 2026-12-03: with the serial split-K fix-up, the smaller stages of the default
/// were 1.5-9% slower at M = 4..16 (the plan splits K into more blocks, and each K block costs this policy a round
/// trip through the workspace) and level elsewhere (bench/NOTES.md). AMD: DefaultMmaPipelineTile.
#if defined(OPT4GPTQ_BACKEND_HIP)
using DeterministicMmaPipelineTile = DefaultMmaPipelineTile;
#else
using DeterministicMmaPipelineTile = MmaPipelineTile<mma::NativeShape, 4, 4, 3>;
#endif

/// @ingroup kernel
/// The pipelined matrix-core kernel: MainloopMmaPipelined (asynchronous multi-stage copies of weights and
/// activations), a ReducePolicy of the block-sum contract and the split-K scheduler of its tile.
template <class Load, class Reduce, class Tile = DefaultMmaPipelineTile, class Codec = CodecInt4>
using MmaPipelinedGemm = GemmKernel<MainloopMmaPipelined<Load, Tile, Codec>, Reduce, SplitKScheduler<Tile>>;

/// @ingroup kernel
/// MmaPipelinedGemm for A and C of element type `Element` (see MmaGemmOf).
template <class Element, class Load, class Reduce, class Tile = DefaultMmaPipelineTile, class Codec = CodecInt4>
using MmaPipelinedGemmOf = GemmKernel<typename detail::mma_pipelined_mainloop_of<Element, Load, Tile, Codec>::type,
                                      Reduce, SplitKScheduler<Tile>>;

OPT4GPTQ_NAMESPACE_END
