#pragma once
/// @file
/// ReducePolicy: how the per-thread partial sums of a block become C (SMB-Opt).
///
/// After its last stage, every thread of a block holds `partial[r][j]`: the sum over its K sub-slice for row r of the
/// block's M chunk and its 4 columns j. Contract (checked at compile time by `check_reduce_policy`):
/// @code
/// struct MyReduce {
///   // Shared memory the policy needs (may be empty); the kernel overlays it on the activation staging buffer.
///   template <class Tile, int kRows> struct SharedStorage { ... };
///   // True when the kernel adds into C for a grid with `k_blocks` blocks along K: the host API then zero-fills C on
///   // the launch stream before the kernel (never the kernel itself: that races with the other blocks' atomics).
///   static constexpr bool accumulates_into_output(int k_blocks);
///   // Called once by every thread of the block, so it may use __syncthreads().
///   template <class Tile, int kRows>
///   __device__ static void reduce(SharedStorage<Tile, kRows>& smem, const float (&partial)[kRows][4],
///                                 const opt4gptq::ThreadOutput& out);
/// };
/// @endcode
/// Determinism: atomics make the order of additions across blocks depend on timing, so results may differ in the last
/// bits from run to run whenever the grid has more than one block along K (or the policy adds per thread). A sum
/// formed in one block in a fixed order (SharedBuffered with one K block) is bitwise reproducible.
/// @ingroup reduce_policies

#include <type_traits>

#include "../detail/block_primitives.hpp"
#include "../platform.hpp"

namespace opt4gptq {

/// @ingroup reduce_policies
/// Where one thread's partial sums belong. `c` points at column 0 of the block's first row.
struct ThreadOutput {
  half* c;
  std::int64_t ldc;
  int rows;         ///< valid rows of the block's M chunk (the kernel computes kRows; rows past M are zeros)
  int n;            ///< columns of C
  int col;          ///< first of the thread's 4 columns; when col < n all four exist (n is a multiple of 8)
  int block_col;    ///< first column of the block
  int lane;         ///< the thread's column lane [0, Tile::kLanesN)
  int split;        ///< the thread's K sub-slice [0, Tile::kSplitK)
  int thread;       ///< threadIdx.x
  bool whole_k;     ///< the block's K range is all of K: its sum is final and a plain store is exact
};

/// @ingroup reduce_policies
/// The baseline (vLLM's exllama kernel): every thread adds its own partials into C with packed-fp16 atomics, two per
/// row (columns 0-1 and 2-3). Per output that is one atomic per K sub-slice of every block: K / 128 with the exllama
/// tile. On gfx906 each is a compare-and-swap loop (see platform::atomic_add_half2). C is summed in fp16.
struct ReduceGlobalAtomic {
  template <class Tile, int kRows>
  struct SharedStorage {};

  static constexpr bool accumulates_into_output(int /*k_blocks*/) { return true; }

  template <class Tile, int kRows>
  OPT4GPTQ_DEVICE static void reduce(SharedStorage<Tile, kRows>&, const float (&partial)[kRows][4],
                                     const ThreadOutput& out) {
    if (out.col >= out.n) return;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (r < out.rows) {
        half2* dst = reinterpret_cast<half2*>(out.c + r * out.ldc + out.col);
        platform::atomic_add_half2(dst, __floats2half2_rn(partial[r][0], partial[r][1]));
        platform::atomic_add_half2(dst + 1, __floats2half2_rn(partial[r][2], partial[r][3]));
      }
    }
  }
};

/// @ingroup reduce_policies
/// The paper's SMB-Opt, as a real hierarchical reduction over K inside the block:
/// 1. lanes of one wave that work on different K sub-slices of the same columns (when the tile has fewer column lanes
///    than a wave has threads) are summed with a warp reduction (rocPRIM `warp_reduce` / CUB `WarpReduce`);
/// 2. each wave's sums go to a shared-memory buffer [wave split][row][column]; after a barrier, every output of the
///    block is summed over the wave splits in a fixed order, in fp32;
/// 3. one commit per output per block: a plain store when the block covers all of K (no zero-fill, no atomics,
///    bitwise reproducible), otherwise one packed-fp16 atomic per output pair.
/// With SplitKTile (8 sub-slices of 128 rows) that is 8x fewer atomics per output than the baseline at equal work,
/// and none when one block spans K. All threads must call `reduce` (there is a barrier inside): the kernel never
/// returns early from a block that reaches it.
struct ReduceSharedBuffered {
  template <class Tile, int kRows>
  struct SharedStorage {
    static constexpr int kWaveSplits = Tile::kSplitK / Tile::splits_per_wave();
    alignas(16) float partial[kWaveSplits][kRows][Tile::kBlockCols];
    typename detail::WarpSum<Tile::splits_per_wave()>::TempStorage warp;
  };

  static constexpr bool accumulates_into_output(int k_blocks) { return k_blocks > 1; }

  template <class Tile, int kRows>
  OPT4GPTQ_DEVICE static void reduce(SharedStorage<Tile, kRows>& smem, const float (&partial)[kRows][4],
                                     const ThreadOutput& out) {
    constexpr int kSplitsPerWave = Tile::splits_per_wave();
    constexpr int kWaveSplits = SharedStorage<Tile, kRows>::kWaveSplits;

    // Level 1: sub-slices within a wave (consecutive lanes).
    float sum[kRows][4];
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        sum[r][j] = detail::WarpSum<kSplitsPerWave>::sum(partial[r][j], smem.warp);
      }

    // Level 2: one slot per wave split in shared memory.
    if (out.split % kSplitsPerWave == 0) {
      const int wave_split = out.split / kSplitsPerWave;
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        *reinterpret_cast<float4*>(&smem.partial[wave_split][r][4 * out.lane]) =
            make_float4(sum[r][0], sum[r][1], sum[r][2], sum[r][3]);
    }
    __syncthreads();

    // Level 3: one commit per output pair, threads striding over the block's outputs.
    constexpr int kPairsPerRow = Tile::kBlockCols / 2;
    for (int i = out.thread; i < kRows * kPairsPerRow; i += Tile::kThreads) {
      const int r = i / kPairsPerRow;
      const int c = 2 * (i % kPairsPerRow);
      float2 total = make_float2(0.0f, 0.0f);
#pragma unroll
      for (int w = 0; w < kWaveSplits; ++w) {
        const float2 v = *reinterpret_cast<const float2*>(&smem.partial[w][r][c]);
        total.x += v.x;
        total.y += v.y;
      }
      const int col = out.block_col + c;
      if (r < out.rows && col < out.n) {
        half2* dst = reinterpret_cast<half2*>(out.c + r * out.ldc + col);
        const half2 value = __floats2half2_rn(total.x, total.y);
        if (out.whole_k)
          *dst = value;
        else
          platform::atomic_add_half2(dst, value);
      }
    }
  }
};

}  // namespace opt4gptq
