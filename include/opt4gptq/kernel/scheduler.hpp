#pragma once
/// @file
/// The scheduler slot of a GemmKernel: how a problem becomes a grid and which part of it each block computes. The
/// host half plans the grid (the K split included) and the split-K workspace geometry; the device half maps a block
/// to its work. Both halves live here, so that a new schedule (stream-K, a persistent grid) is one new struct.
///
/// A scheduler provides (SplitKScheduler below is the model):
/// @code
/// struct MyScheduler {
///   using TileShape = ...;                        // the mainloop's tile (GemmKernel checks that they agree)
///   static constexpr bool kNeedsResidentBlocks;  // plan_grid() wants SMs x blocks per SM of the kernel
///   static Status plan_grid(int m, int n, int k_rows, int rows_per_block, int resident_blocks, GridPlan* grid);
///   // Optional: the grid for a K split the caller fixes (PlanOptions::rows_of_k_per_block), whatever M; without it,
///   // plan() refuses a fixed split for this scheduler.
///   static Status plan_grid_with_k_split(int m, int n, int k_rows, int rows_per_block, int rows_of_k_per_block,
///                                        GridPlan* grid);
///   static ReduceGeometry reduce_geometry(const GridPlan& grid, int rows_per_block);
///   template <int kRows> __device__ static Work<kRows> work(const KernelParams& p);  // m0(), block_col(), k_begin(),
///                                                                                  // k_end() of the block's work
///   template <class Output> __device__ static void split_k_context(const KernelParams& p, Output& out);
/// };
/// @endcode
/// @ingroup kernel

#include <cstdint>
#include <type_traits>

#include "../detail/checks.hpp"
#include "../platform.hpp"
#include "../policy/reduce.hpp"
#include "../status.hpp"
#include "params.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// The grid a scheduler planned: blocks along columns (x), M chunks (y) and K (z), and the rows of K per block.
/// @ingroup kernel
struct GridPlan {
  int x = 0;
  int y = 0;
  int z = 0;
  int rows_of_k_per_block = 0;
};

namespace detail {
constexpr int ceil_div(std::int64_t a, std::int64_t b) { return static_cast<int>((a + b - 1) / b); }

/// A tile's fixed cost per block (prologue, epilogue, reduction), in stages of its main loop: 0 unless the tile
/// declares kBlockOverheadStages.
template <class Tile, class = void>
struct block_overhead_stages : std::integral_constant<int, 0> {};
template <class Tile>
struct block_overhead_stages<Tile, std::void_t<decltype(Tile::kBlockOverheadStages)>>
    : std::integral_constant<int, Tile::kBlockOverheadStages> {};
}  // namespace detail

/// The library's schedule: a 3-D grid of (column tiles, M chunks, K blocks). The tile either fixes the stages per
/// block (the exllama tile: one stage of 128 rows, so K / 128 blocks along K) or lets the plan choose the K split
/// per problem and GPU (kStagesPerBlock = 0).
/// @ingroup kernel
template <class Tile>
struct SplitKScheduler {
  using TileShape = Tile;
  static constexpr bool kNeedsResidentBlocks = Tile::kStagesPerBlock == 0;

  /// Rows of K per block for a grid whose other dimensions give `blocks_xy` blocks: the tile's fixed count, or the
  /// number of K blocks kb that minimises ceil(blocks_xy * kb / resident_blocks) * (ceil(stages / kb) + overhead),
  /// the stages that the busiest block slot of the GPU runs one after the other (wave quantization;
  /// `resident_blocks` = SMs x blocks per SM; overhead = the tile's kBlockOverheadStages, 0 for the SIMT tiles,
  /// whose stages are long). Few long blocks leave the last wave nearly empty with too few loads in flight; many short ones cost
  /// more reductions. Ties go to fewer K blocks, so one K block (no zero-fill, no split-K reduction) is used whenever
  /// the column tiles alone fill the GPU as well as a split would.
  static constexpr int rows_of_k_per_block(int k_rows, int blocks_xy, int resident_blocks) {
    const int stages = detail::ceil_div(k_rows, Tile::kStageRows);
    if constexpr (Tile::kStagesPerBlock > 0) {
      return Tile::kStagesPerBlock * Tile::kStageRows;
    } else {
      const std::int64_t resident = resident_blocks > 0 ? resident_blocks : 1;
      int best_k_blocks = 1;
      std::int64_t best_cost = -1;
      for (int k_blocks = 1; k_blocks <= stages; ++k_blocks) {
        const int per_block = detail::ceil_div(stages, k_blocks);
        if (k_blocks > 1 && detail::ceil_div(stages, k_blocks - 1) == per_block) continue;  // no shorter: skip
        const std::int64_t waves = (static_cast<std::int64_t>(blocks_xy) * k_blocks + resident - 1) / resident;
        const std::int64_t cost = waves * (per_block + detail::block_overhead_stages<Tile>::value);
        if (best_cost < 0 || cost < best_cost) {
          best_cost = cost;
          best_k_blocks = k_blocks;
        }
      }
      return detail::ceil_div(stages, best_k_blocks) * Tile::kStageRows;
    }
  }

  /// The grid for m x n outputs over `k_rows` rows of packed weights, `rows_per_block` rows of M per block.
  static Status plan_grid(int m, int n, int k_rows, int rows_per_block, int resident_blocks, GridPlan* grid) {
    const int x = detail::ceil_div(n, Tile::kBlockCols);
    const int y = detail::ceil_div(m, rows_per_block);
    if (y > detail::kMaxGridYZ) return detail::invalid("problem.m: too large for one launch (too many M chunks)");
    return plan_grid_with_k_split(m, n, k_rows, rows_per_block, rows_of_k_per_block(k_rows, x * y, resident_blocks),
                                  grid);
  }

  /// The grid with `rows_of_k_per_block` rows of K per block, a positive multiple of the stage, fixed by the caller:
  /// the same K blocks, so the same order of the fp32 additions, for every M (batch invariance) and every GPU.
  static Status plan_grid_with_k_split(int m, int n, int k_rows, int rows_per_block, int rows_of_k_per_block,
                                       GridPlan* grid) {
    if (rows_of_k_per_block < 1 || rows_of_k_per_block % Tile::kStageRows != 0)
      return detail::invalid(
          "options.rows_of_k_per_block: must be a positive multiple of the kernel's rows of K per stage "
          "(TileShape::kStageRows: 128 for the matrix-core tiles, 1024 for SplitKTile)");
    GridPlan g;
    g.x = detail::ceil_div(n, Tile::kBlockCols);
    g.y = detail::ceil_div(m, rows_per_block);
    if (g.y > detail::kMaxGridYZ) return detail::invalid("problem.m: too large for one launch (too many M chunks)");
    g.rows_of_k_per_block = rows_of_k_per_block;
    g.z = detail::ceil_div(k_rows, g.rows_of_k_per_block);
    if (g.z > detail::kMaxGridYZ)
      return detail::invalid("weights.k: too large for one launch (more than 65535 blocks along K)");
    *grid = g;
    return Status::success();
  }

  /// The grid as a ReducePolicy's workspace_bytes() sees it.
  static constexpr ReduceGeometry reduce_geometry(const GridPlan& g, int rows_per_block) {
    return ReduceGeometry{g.x * g.y, rows_per_block * Tile::kBlockCols, g.z};
  }

  /// What one block computes: rows [m0, m0 + kRows) of M, the columns from block_col, rows [k_begin, k_end) of the
  /// packed weights (the mainloop clamps k_end to the rows in use: an act-order layout may use fewer than it holds).
  /// Each is read from the grid where the mainloop uses it, so that the answer costs no register in between.
  template <int kRows>
  struct Work {
    const KernelParams& p;
    OPT4GPTQ_DEVICE int m0() const { return blockIdx.y * kRows; }
    OPT4GPTQ_DEVICE int block_col() const { return blockIdx.x * Tile::kBlockCols; }
    OPT4GPTQ_DEVICE int k_begin() const { return blockIdx.z * p.rows_per_block; }
    OPT4GPTQ_DEVICE int k_end() const { return k_begin() + p.rows_per_block; }
  };
  template <int kRows>
  OPT4GPTQ_DEVICE static Work<kRows> work(const KernelParams& p) {
    return Work<kRows>{p};
  }

  /// The split-K fields of a thread's output: read from the grid where the reduction needs them, not kept live
  /// through the mainloop.
  template <class Output>
  OPT4GPTQ_DEVICE static void split_k_context(const KernelParams& p, Output& out) {
    out.whole_k = p.whole_k != 0;
    out.tile = static_cast<int>(blockIdx.y * gridDim.x + blockIdx.x);
    out.tiles = static_cast<int>(gridDim.x * gridDim.y);
    out.k_block = static_cast<int>(blockIdx.z);
    out.k_blocks = static_cast<int>(gridDim.z);
    out.workspace = p.workspace;
  }
};

OPT4GPTQ_NAMESPACE_END
