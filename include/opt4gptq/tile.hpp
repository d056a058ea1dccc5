#pragma once
/// @file
/// TileShape: how a block's threads cover output columns and input rows. Policies decide *how* each step is done,
/// the tile decides *how much* a block does.
///
/// A block of `kThreads` threads is laid out as `kSplitK` K sub-slices × `kLanesN` column lanes. Each thread owns 4
/// consecutive output columns (one 16-byte load of qweight holds 8 rows × 4 columns), so a block covers
/// `kBlockCols = 4 · kLanesN` columns. The block walks its range of K in stages of `kStageRows = kSplitK · kChunkK`
/// rows: the stage's activations are staged in shared memory, then split s dequantizes and multiplies rows
/// [s·kChunkK, (s+1)·kChunkK) of the stage. After the last stage every thread holds partial sums for its 4 columns
/// over its sub-slice of K; the ReducePolicy turns them into C.
///
/// The grid is (column tiles, M chunks of up to 8 rows, K blocks). `kStagesPerBlock` fixes how many stages one block
/// runs (the exllama kernel: exactly one stage of 128 rows); 0 lets the host choose, per problem, the fewest K blocks
/// that still fill the GPU (one K block, and no zero-fill of C, whenever the column tiles alone fill it).
/// @ingroup kernel

#include "platform.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// Where a thread sits in the block's [kSplitK][kLanesN] layout.
struct ThreadPlace {
  int lane;   ///< column lane: the thread's columns are block_col + 4·lane .. +3
  int split;  ///< K sub-slice of the stage
};

/// The block shape of a DequantGemm: threads, column lanes, rows per split and stage, stages per block, weight words
/// per batch and batches in flight (see the file comment).
/// @ingroup kernel
template <int Threads, int LanesN, int ChunkK, int StagesPerBlock = 0, int Unroll = 4, int Pipeline = 2>
struct TileShape {
  static constexpr int kThreads = Threads;
  static constexpr int kColsPerThread = 4;
  static constexpr int kLanesN = LanesN;
  static constexpr int kBlockCols = kColsPerThread * LanesN;
  static constexpr int kSplitK = Threads / LanesN;
  static constexpr int kChunkK = ChunkK;
  static constexpr int kStageRows = kSplitK * ChunkK;
  static constexpr int kStagesPerBlock = StagesPerBlock;
  static constexpr int kUnroll = Unroll;  ///< 8-row words whose weights one thread loads as one batch
  /// Batches in flight per thread: 1 = load a batch, then use it; 2 = the next batch loads while one is used
  /// (twice the registers for weights: fewer resident warps); more: a ring (MainloopDecode; MainloopSimt takes 1-2).
  static constexpr int kPipeline = Pipeline;

  static_assert(Threads > 0 && Threads <= 1024 && (Threads & (Threads - 1)) == 0,
                "TileShape: Threads must be a power of two <= 1024");
  static_assert(LanesN > 0 && (LanesN & (LanesN - 1)) == 0 && Threads % LanesN == 0,
                "TileShape: LanesN must be a power of two that divides Threads");
  static_assert(Unroll > 0 && ChunkK % (8 * Unroll) == 0,
                "TileShape: ChunkK must be a multiple of 8 * Unroll (whole 8-row words per unrolled batch)");
  static_assert(StagesPerBlock >= 0, "TileShape: StagesPerBlock must be >= 0 (0 = chosen per problem)");
  static_assert(Pipeline >= 1 && Pipeline <= 4, "TileShape: Pipeline must be 1 .. 4");

  /// K sub-slices that share one wave: with fewer column lanes than the wave has threads, the wave's lanes are
  /// [column lane][split] with the splits fastest, so that a warp-level reduction over consecutive lanes sums them.
  OPT4GPTQ_HOST_DEVICE static constexpr int splits_per_wave() {
    return LanesN >= platform::kWaveSize ? 1 : platform::kWaveSize / LanesN;
  }

  OPT4GPTQ_DEVICE static ThreadPlace place(int thread) {
    const int wave = thread / platform::kWaveSize;
    const int lane_in_wave = thread % platform::kWaveSize;
    if constexpr (LanesN >= platform::kWaveSize) {
      constexpr int kWavesPerSplit = LanesN / platform::kWaveSize;
      return ThreadPlace{(wave % kWavesPerSplit) * platform::kWaveSize + lane_in_wave, wave / kWavesPerSplit};
    } else {
      constexpr int kSplitsPerWave = platform::kWaveSize / LanesN;
      return ThreadPlace{lane_in_wave / kSplitsPerWave, wave * kSplitsPerWave + lane_in_wave % kSplitsPerWave};
    }
  }
};

/// The tile of vLLM's exllama-derived 4-bit kernel (the paper's baseline): 128 threads, 512 columns, one stage of 128
/// rows per block, so the grid has K / 128 blocks along K; each thread loads 4 words (4 columns x 32 rows), then
/// uses them.
using ExllamaTile = TileShape<128, 128, 128, 1, 4, 1>;

/// A tile for hierarchical reductions: 256 threads = 8 K sub-slices × 32 column lanes (128 columns), 1024 rows per
/// stage, the number of stages chosen per problem; each thread loads 4 words, then uses them (a register double
/// buffer measured slower on H100: 80 instead of 64 registers, so 2 instead of 4 resident blocks; bench/NOTES.md).
using SplitKTile = TileShape<256, 32, 128, 0, 4, 1>;

OPT4GPTQ_NAMESPACE_END
