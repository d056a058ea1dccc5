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
///   // Optional: device workspace the policy needs for a grid (reaches reduce() as out.workspace). Without it: none.
///   static std::size_t workspace_bytes(const opt4gptq::ReduceGeometry& grid);
/// };
/// @endcode
/// Determinism: atomics make the order of additions across blocks depend on timing, so results may differ in the last
/// bits from run to run whenever the grid has more than one block along K (or the policy adds per thread). A sum
/// formed in one block in a fixed order (SharedBuffered with one K block) or added up in a fixed order across blocks
/// (ReduceSharedSerial) is bitwise reproducible.
/// @ingroup reduce_policies

#include <type_traits>

#include "../detail/block_primitives.hpp"
#include "../platform.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup reduce_policies
/// Where one thread's partial sums belong. `c` points at column 0 of the block's first row.
struct ThreadOutput {
  half* c;
  std::int64_t ldc;
  int rows;       ///< valid rows of the block's M chunk (the kernel computes kRows; rows past M are zeros)
  int n;          ///< columns of C
  int col;        ///< first of the thread's 4 columns; when col < n all four exist (n is a multiple of 8)
  int block_col;  ///< first column of the block
  int lane;       ///< the thread's column lane [0, Tile::kLanesN)
  int split;      ///< the thread's K sub-slice [0, Tile::kSplitK)
  int thread;     ///< threadIdx.x
  bool whole_k;   ///< the block's K range is all of K: its sum is final and a plain store is exact
  // Split-K context, for policies that combine the K blocks themselves (see ReduceSharedSerial).
  int tile;         ///< index of the block's output tile (column tile, M chunk): blockIdx.y * gridDim.x + blockIdx.x
  int tiles;        ///< output tiles in the grid: gridDim.x * gridDim.y
  int k_block;      ///< the block's index along K (blockIdx.z)
  int k_blocks;     ///< blocks along K (gridDim.z)
  void* workspace;  ///< the caller's workspace (ReducePolicy::workspace_bytes), null when the policy needs none
};

/// @ingroup reduce_policies
/// Where one thread's partial sums belong, in a kernel whose C holds bf16 (ElementBf16): the same fields, `c` pointing
/// at bf16 bits. A ReducePolicy serves bf16 kernels when it declares `static constexpr bool kWritesBf16 = true` and
/// takes its output as a template parameter (`template <class Tile, int kRows, class Output> reduce(..., const
/// Output& out)`), writing pairs of detail::output_pair_t<Output> (detail::to_output_pair and
/// detail::atomic_add_pair below round and add in C's type). A policy taking `const ThreadOutput&` would bind to this
/// type and write fp16 bits into bf16 outputs: bf16 kernels refuse such a policy at compile time.
struct ThreadOutputBf16 : ThreadOutput {};

namespace detail {
template <class Output>
inline constexpr bool is_bf16_output_v = std::is_base_of_v<ThreadOutputBf16, Output>;

/// Two adjacent outputs of C in its element type: half2 (fp16), or the bits of a bf16 pair.
template <class Output>
using output_pair_t = std::conditional_t<is_bf16_output_v<Output>, std::uint32_t, half2>;

/// (x, y) rounded to nearest even into C's element type.
template <class Output>
OPT4GPTQ_DEVICE output_pair_t<Output> to_output_pair(float x, float y) {
  if constexpr (is_bf16_output_v<Output>)
    return platform::floats_to_bf16x2(x, y);
  else
    return __floats2half2_rn(x, y);
}

/// `*dst += value` for a pair of outputs, atomically for each element.
OPT4GPTQ_DEVICE void atomic_add_pair(half2* dst, half2 value) { platform::atomic_add_half2(dst, value); }
OPT4GPTQ_DEVICE void atomic_add_pair(std::uint32_t* dst, std::uint32_t value) {
  platform::atomic_add_bf16x2(dst, value);
}
}  // namespace detail

/// @ingroup reduce_policies
/// The head of every workspace: the first bytes, where the split-K counters live (ReduceSharedSerial). They must be
/// zero before the first launch (clear_workspace() once after allocating) and every launch leaves them zero. The bytes
/// past the head are scratch: what a launch writes there it need not clear (split-K partial sums are written before
/// they are read; the prefill path, DequantCublas, keeps its dense weights there), so the prefill path does not pay
/// for writing its k x n weights a second time. 1 MiB: 262,144 counters (a plan that needs more is refused).
inline constexpr std::size_t kWorkspaceCounterBytes = std::size_t{1} << 20;

/// @ingroup reduce_policies
/// The grid as a ReducePolicy's optional `workspace_bytes` sees it.
struct ReduceGeometry {
  int tiles;         ///< output tiles: column tiles x M chunks
  int tile_outputs;  ///< outputs per tile: rows per M chunk x Tile::kBlockCols
  int k_blocks;      ///< blocks along K
};

/// @ingroup reduce_policies
/// The baseline (vLLM's exllama kernel): every thread adds its own partials into C with packed-fp16 atomics, two per
/// row (columns 0-1 and 2-3). Per output that is one atomic per K sub-slice of every block: K / 128 with the exllama
/// tile. On gfx906 each is a compare-and-swap loop (see platform::atomic_add_half2). C is summed in fp16.
struct ReduceGlobalAtomic {
  template <class Tile, int kRows>
  struct SharedStorage {};

  static constexpr bool accumulates_into_output(int /*k_blocks*/) { return true; }
  static constexpr bool kWritesBf16 = true;  ///< C is summed in bf16 in a bf16 kernel (8-bit mantissa per addition)

  template <class Tile, int kRows, class Output>
  OPT4GPTQ_DEVICE static void reduce(SharedStorage<Tile, kRows>&, const float (&partial)[kRows][4], const Output& out) {
    if (out.col >= out.n) return;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (r < out.rows) {
        using Pair = detail::output_pair_t<Output>;
        Pair* dst = reinterpret_cast<Pair*>(out.c + r * out.ldc + out.col);
        detail::atomic_add_pair(dst, detail::to_output_pair<Output>(partial[r][0], partial[r][1]));
        detail::atomic_add_pair(dst + 1, detail::to_output_pair<Output>(partial[r][2], partial[r][3]));
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
  static constexpr bool kWritesBf16 = true;

  template <class Tile, int kRows, class Output>
  OPT4GPTQ_DEVICE static void reduce(SharedStorage<Tile, kRows>& smem, const float (&partial)[kRows][4],
                                     const Output& out) {
    sum_in_block<Tile, kRows>(smem, partial, out);
    commit<Tile, kRows>(smem, out);
  }

  /// The block-sum contract, for mainloops whose accumulators are not per-thread column quads (matrix fragments,
  /// kernel/mainloop_mma.hpp): the mainloop writes the block's sums, one fp32 per output, row-major
  /// [kRows][Tile::kBlockCols], at block_sums(), synchronizes, and calls commit(). Tiles of one K sub-slice only.
  template <class Tile, int kRows>
  OPT4GPTQ_DEVICE static float* block_sums(SharedStorage<Tile, kRows>& smem) {
    static_assert(SharedStorage<Tile, kRows>::kWaveSplits == 1, "block_sums: the tile must have one K sub-slice");
    return &smem.partial[0][0][0];
  }

  /// Level 3: one commit per output pair of the sums in shared memory (after a barrier).
  template <class Tile, int kRows, class Output>
  OPT4GPTQ_DEVICE static void commit(SharedStorage<Tile, kRows>& smem, const Output& out) {
    for_each_pair<Tile, kRows>(smem, out, [&](int r, int c, float2 total) {
      const int col = out.block_col + c;
      if (r < out.rows && col < out.n) {
        using Pair = detail::output_pair_t<Output>;
        Pair* dst = reinterpret_cast<Pair*>(out.c + r * out.ldc + col);
        const Pair value = detail::to_output_pair<Output>(total.x, total.y);
        if (out.whole_k)
          *dst = value;
        else
          detail::atomic_add_pair(dst, value);
      }
    });
  }

  /// Levels 1 and 2: leaves each wave split's sums in `smem.partial` (after a barrier).
  template <class Tile, int kRows>
  OPT4GPTQ_DEVICE static void sum_in_block(SharedStorage<Tile, kRows>& smem, const float (&partial)[kRows][4],
                                           const ThreadOutput& out) {
    constexpr int kSplitsPerWave = Tile::splits_per_wave();
    float sum[kRows][4];
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int j = 0; j < 4; ++j) sum[r][j] = detail::WarpSum<kSplitsPerWave>::sum(partial[r][j], smem.warp);
    if (out.split % kSplitsPerWave == 0) {
      const int wave_split = out.split / kSplitsPerWave;
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        *reinterpret_cast<float4*>(&smem.partial[wave_split][r][4 * out.lane]) =
            make_float4(sum[r][0], sum[r][1], sum[r][2], sum[r][3]);
    }
    __syncthreads();
  }

  /// Calls f(row, column in tile, sum of the pair) for every output pair of the block's valid rows (rows past M are
  /// never written), threads striding over them; each pair is summed over the wave splits in a fixed order. This
  /// level is a plain loop over shared memory, not a rocPRIM/CUB primitive: it adds many independent segments of at
  /// most 8 values (BlockReduce reduces a whole block to one value), and the fixed order is what makes the result
  /// reproducible.
  template <class Tile, int kRows, class F>
  OPT4GPTQ_DEVICE static void for_each_pair(const SharedStorage<Tile, kRows>& smem, const ThreadOutput& out, F&& f) {
    constexpr int kWaveSplits = SharedStorage<Tile, kRows>::kWaveSplits;
    constexpr int kPairsPerRow = Tile::kBlockCols / 2;
    const int rows = out.rows < kRows ? out.rows : kRows;
    for (int i = out.thread; i < rows * kPairsPerRow; i += Tile::kThreads) {
      const int r = i / kPairsPerRow;
      const int c = 2 * (i % kPairsPerRow);
      float2 total = make_float2(0.0f, 0.0f);
#pragma unroll
      for (int w = 0; w < kWaveSplits; ++w) {
        const float2 v = *reinterpret_cast<const float2*>(&smem.partial[w][r][c]);
        total.x += v.x;
        total.y += v.y;
      }
      f(r, c, total);
    }
  }
};

/// @ingroup reduce_policies
/// SMB's in-block reduction, then a deterministic split-K fix-up instead of atomics on C: each K block of a tile
/// writes its fp32 sums to its own slot of a workspace and counts itself in; the last block of the tile to arrive
/// adds the slots in K order, stores C, and resets the count. So:
/// - no zero-fill of C (one launch per call, which matters where launches cost microseconds), no atomics on C;
/// - bitwise reproducible results for any number of K blocks, and fp32 across blocks (fp16 only at the store);
/// - it needs a workspace of `workspace_bytes()`: one counter per tile in the workspace's head (at most
///   kWorkspaceCounterBytes; counter_bytes()), then fp32 partials of every (tile, K block). The head must be zero
///   before the first use (clear_workspace() once after allocating it); every launch leaves it zero again (counters
///   reset, and slots cleared once read, since a small grid's slots lie in the head where a larger grid's counters
///   go). Slots need no zeros: each is written before it is read. So one workspace serves launches of any shapes in
///   sequence on one stream (size it for the largest), not concurrent ones.
struct ReduceSharedSerial {
  template <class Tile, int kRows>
  struct SharedStorage {
    typename ReduceSharedBuffered::template SharedStorage<Tile, kRows> block;
    int last;  ///< this block is the tile's last to arrive
  };

  static constexpr bool accumulates_into_output(int /*k_blocks*/) { return false; }
  static constexpr bool kWritesBf16 = true;

  static constexpr std::size_t kAlign = 256;
  /// The counters (one int per tile, at the start of the workspace), rounded up to kAlign: where the slots start.
  /// plan() refuses a grid whose counters pass kWorkspaceCounterBytes.
  OPT4GPTQ_HOST_DEVICE static constexpr std::size_t counter_bytes(const ReduceGeometry& g) {
    return (static_cast<std::size_t>(g.tiles) * sizeof(int) + kAlign - 1) / kAlign * kAlign;
  }
  static constexpr std::size_t workspace_bytes(const ReduceGeometry& g) {
    return g.k_blocks <= 1
               ? 0
               : counter_bytes(g) + static_cast<std::size_t>(g.tiles) * g.k_blocks * g.tile_outputs * sizeof(float);
  }

  template <class Tile, int kRows, class Output>
  OPT4GPTQ_DEVICE static void reduce(SharedStorage<Tile, kRows>& smem, const float (&partial)[kRows][4],
                                     const Output& out) {
    ReduceSharedBuffered::sum_in_block<Tile, kRows>(smem.block, partial, out);
    commit<Tile, kRows>(smem, out);
  }

  /// The block-sum contract (see ReduceSharedBuffered::block_sums).
  template <class Tile, int kRows>
  OPT4GPTQ_DEVICE static float* block_sums(SharedStorage<Tile, kRows>& smem) {
    return ReduceSharedBuffered::block_sums<Tile, kRows>(smem.block);
  }

  /// The block's sums are in shared memory (after a barrier): store them, or combine the K blocks in order.
  template <class Tile, int kRows, class Output>
  OPT4GPTQ_DEVICE static void commit(SharedStorage<Tile, kRows>& smem, const Output& out) {
    using Block = ReduceSharedBuffered;
    auto store = [&](int r, int c, float2 total) {
      const int col = out.block_col + c;
      if (r < out.rows && col < out.n)
        *reinterpret_cast<detail::output_pair_t<Output>*>(out.c + r * out.ldc + col) =
            detail::to_output_pair<Output>(total.x, total.y);
    };
    if (out.whole_k) {
      Block::for_each_pair<Tile, kRows>(smem.block, out, store);
      return;
    }
    constexpr int kTileOutputs = kRows * Tile::kBlockCols;
    char* workspace = static_cast<char*>(out.workspace);
    int* counter = reinterpret_cast<int*>(workspace) + out.tile;
    float* slots = reinterpret_cast<float*>(workspace + counter_bytes(ReduceGeometry{out.tiles, kTileOutputs, 0})) +
                   static_cast<std::size_t>(out.tile) * out.k_blocks * kTileOutputs;
    // This block's sums go to its own slot.
    float* mine = slots + static_cast<std::size_t>(out.k_block) * kTileOutputs;
    Block::for_each_pair<Tile, kRows>(smem.block, out, [&](int r, int c, float2 total) {
      *reinterpret_cast<float2*>(mine + r * Tile::kBlockCols + c) = total;
    });
    __threadfence();  // the slot is visible to the whole device before the counter says it is there
    __syncthreads();
    if (out.thread == 0) smem.last = atomicAdd(counter, 1) == out.k_blocks - 1;
    __syncthreads();
    if (!smem.last) return;  // uniform over the block
    __threadfence();
    // The last block adds the slots in K order (the same order whichever block arrives last) and stores C. Only the
    // valid rows' slots were written (for_each_pair), so only they are read.
    constexpr int kPairsPerRow = Tile::kBlockCols / 2;
    const int rows = out.rows < kRows ? out.rows : kRows;
    for (int i = out.thread; i < rows * kPairsPerRow; i += Tile::kThreads) {
      const int r = i / kPairsPerRow;
      const int c = 2 * (i % kPairsPerRow);
      // volatile: read from the coherent level (L2), not a possibly stale L1 line. The loads are issued 8 at a time
      // before any is added (one memory latency per 8 K blocks, not per block); the additions stay in K order.
      // Each slot is zeroed once read: a small grid's slots lie in the workspace's head, where a larger grid's
      // counters go, and every launch leaves the head zero (past the head they need not be, but stay so).
      volatile float* v = slots + r * Tile::kBlockCols + c;
      float2 total = make_float2(0.0f, 0.0f);
      int kb = 0;
      for (; kb + 8 <= out.k_blocks; kb += 8) {
        float2 batch[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          batch[i].x = v[static_cast<std::size_t>(kb + i) * kTileOutputs];
          batch[i].y = v[static_cast<std::size_t>(kb + i) * kTileOutputs + 1];
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          total.x += batch[i].x;
          total.y += batch[i].y;
          v[static_cast<std::size_t>(kb + i) * kTileOutputs] = 0.0f;
          v[static_cast<std::size_t>(kb + i) * kTileOutputs + 1] = 0.0f;
        }
      }
      for (; kb < out.k_blocks; ++kb) {
        total.x += v[static_cast<std::size_t>(kb) * kTileOutputs];
        total.y += v[static_cast<std::size_t>(kb) * kTileOutputs + 1];
        v[static_cast<std::size_t>(kb) * kTileOutputs] = 0.0f;
        v[static_cast<std::size_t>(kb) * kTileOutputs + 1] = 0.0f;
      }
      store(r, c, total);
    }
    if (out.thread == 0) *counter = 0;  // ready for the next launch
  }
};

OPT4GPTQ_NAMESPACE_END
