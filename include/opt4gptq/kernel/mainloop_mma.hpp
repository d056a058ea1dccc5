#pragma once
/// @file
/// MainloopMma: the mainloop on matrix cores (NVIDIA `mma.sync` m16n8k16, AMD `v_mfma_f32_16x16x16f16`), for
/// serving batches: every weight is dequantized once per block for up to 64 rows of M, and the products run on the
/// tensor cores in fp32. Same slots as the SIMT mainloop (a LoadPolicy for the activations, the codec, the split-K
/// scheduler, a ReducePolicy), its own tile (MmaTileShape) and accumulators (fragments).
///
/// Data flow (docs/mma_mainloop.md has the diagram). A block of kWarps waves covers kWarps x 4 x Shape::kN columns
/// (NVIDIA: 4 waves x 32 = 128) and walks its range of K in stages of kChunks x 32 rows:
///  1. weights: each lane loads one 16-byte vector per 32-row chunk, 4 columns of packed word Shape::b_word(lane) of
///     the chunk (rows 8 w .. 8 w + 7), straight from the checkpoint's qweight (no repack). The 4 columns are one B
///     column in each of 4 n-tiles: column 4 c + i of the wave is column c = Shape::b_column(lane) of n-tile i. Two
///     stages are in flight per lane (the next stage is loaded before this one is used: a register double buffer);
///  2. activations: per window of up to 512 rows of K (32 KiB), the block's rows of A go to shared memory,
///     interleaved per 8 rows in the codec's order (kernel/activation_staging.hpp; 4 loads in flight per thread),
///     rows padded by 64 bytes so that the fragment reads below are free of bank conflicts on NVIDIA;
///  3. per chunk, each lane dequantizes its 4 words to exact q - z halves (codec/int4.hpp), multiplies them by the
///     group's scale (one fp16 rounding, as the reference dequantization), and they are its B registers as they come
///     out: pairs 0-1 for K step 0, pairs 2-3 for step 1 (mma/layout.hpp: the order of K inside a chunk is chosen so
///     that this holds, and A is staged in the same order). Per 16-row M tile a lane reads Shape::kAVectors 16-byte
///     vectors of staged A, whose 32-bit components are its A registers for both steps; 2 steps x 4 n-tiles
///     instructions follow;
///  4. epilogue: the fragments go to shared memory as one fp32 sum per output, and the ReducePolicy commits them
///     (the block-sum contract: ReduceSharedBuffered stores or adds, ReduceSharedSerial combines K blocks in order).
/// @ingroup kernel

#include <type_traits>
#include <utility>

#include "../codec/int4.hpp"
#include "../element.hpp"
#include "../mma/instructions.hpp"
#include "../mma/layout.hpp"
#include "../platform.hpp"
#include "../policy/reduce.hpp"
#include "../policy/traits.hpp"
#include "../problem.hpp"
#include "../status.hpp"
#include "act_order_rows.hpp"
#include "activation_staging.hpp"
#include "mma_fragments.hpp"
#include "params.hpp"
#include "quad_column_checks.hpp"
#include "thread_output.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup kernel
/// The block shape of MainloopMma: `Warps` waves side by side along N, each owning 4 n-tiles of the instruction
/// `Shape`, and stages of `Chunks` x 32 rows of K (one 16-byte weight load per lane per chunk). The names the
/// scheduler and the ReducePolicies read (kThreads, kBlockCols, kStageRows, kStagesPerBlock, kSplitK) mean what they
/// mean for TileShape; there is one K sub-slice per block (the scheduler splits K across blocks).
template <class Shape_, int Warps = 4, int Chunks = 4>
struct MmaTileShape {
  using Shape = Shape_;
  static constexpr int kWarps = Warps;
  static constexpr int kNTiles = 4;  ///< one 16-byte load holds 4 columns: one in each n-tile
  static constexpr int kWarpCols = kNTiles * Shape::kN;
  static constexpr int kThreads = Warps * Shape::kLanes;
  static constexpr int kBlockCols = Warps * kWarpCols;
  static constexpr int kChunks = Chunks;
  static constexpr int kStageRows = 32 * Chunks;
  static constexpr int kStagesPerBlock = 0;  ///< the plan chooses the K split per problem and GPU
  static constexpr int kSplitK = 1;
  static constexpr int kLanesN = kBlockCols / 4;
  /// The split-K plan counts a block's prologue (first loads in flight), staging and epilogue as this many stages:
  /// short K ranges cost more than their stages (measured: one stage per block ran at 19% of DRAM bandwidth).
  static constexpr int kBlockOverheadStages = 4;

  static_assert(Warps >= 1 && kThreads <= 1024, "MmaTileShape: 1 .. 1024 / wave size waves per block");
  static_assert(Chunks >= 1 && Chunks <= 8, "MmaTileShape: 1 .. 8 chunks of 32 rows per stage");

  OPT4GPTQ_HOST_DEVICE static constexpr int splits_per_wave() { return 1; }
};

/// @ingroup kernel
/// The matrix-core mainloop of one LoadPolicy (how A is staged), MmaTileShape and codec.
template <class Element_, class Load, class Tile, class Codec_ = CodecInt4>
struct MainloopMmaOf {
  using Element = Element_;  ///< of A and C: ElementFp16, or ElementBf16 (bf16 instructions, B rounded to bf16)
  static constexpr bool kBf16 = Element::kType == ElementType::kBf16;
  using LoadPolicy = Load;
  using TileShape = Tile;
  using Codec = Codec_;
  using Shape = typename Tile::Shape;
  using Instruction = mma::MatrixInstruction<Shape>;
  static_assert(Codec::kRowsPerWord == 8,
                "MainloopMma forms fragments from packed words of 8 rows: it needs a codec with 8 rows per word "
                "(CodecInt4)");
  static_assert(Shape::kLanes == platform::kWaveSize,
                "MainloopMma: the tile's instruction is for another wave size than this backend's (NVIDIA: "
                "mma::MmaM16N8K16, 32 lanes; AMD: mma::MfmaF32x16x16x16F16, 64 lanes; mma::NativeShape picks it)");

  static constexpr bool kPoliciesValid = check_load_policy<Load>();
  static constexpr bool kOwnsReduceStep = true;  ///< fragments: reduce() below runs the ReducePolicy step
  static constexpr int kThreads = Tile::kThreads;
  static constexpr int kMaxRows = 64;  ///< rows of M per block (4 M tiles of 16); larger M runs in chunks along y
  /// Entry points: 1, 2 or 4 M tiles of 16 rows, the rows past M masked (zeros in, nothing written).
  using EntryRows = std::integer_sequence<int, 16, 32, 64>;
  static constexpr int rows_per_block(int m) { return m <= 16 ? 16 : m <= 32 ? 32 : 64; }
  template <class Reduce>
  static constexpr bool reduce_policy_valid() {
    if constexpr (kBf16)
      return check_block_reduce_policy<Reduce, Tile>() && check_bf16_reduce_policy<Reduce>();
    else
      return check_block_reduce_policy<Reduce, Tile>();
  }

  static constexpr int kStageWords = Tile::kStageRows / 8;
  /// Rows of K whose activations are staged at once (a window of whole weight stages): 512 rows, or fewer so that
  /// the window holds at most 32 KiB of activations (256 rows at 64 rows of M; the epilogue's block sums need 32 KiB
  /// then anyway). A barrier and a staging latency are paid per window, not per weight stage.
  static constexpr int window_rows(int rows_of_m) {
    const int budget = 16384 / rows_of_m < 512 ? 16384 / rows_of_m : 512;
    const int rows = budget / Tile::kStageRows * Tile::kStageRows;
    return rows > Tile::kStageRows ? rows : Tile::kStageRows;
  }
  /// Row pitch of the staged activations in 16-byte vectors: NVIDIA reads, per 8 lanes, 4 consecutive vectors of
  /// 2 rows; a pitch of 4 (mod 8) vectors puts the second row 64 bytes over, in the other half of the banks.
  static constexpr int row_vectors(int window_words) { return window_words % 8 == 0 ? window_words + 4 : window_words; }

  template <int kRows>
  struct SharedStorage {
    static constexpr int kWindowRows = window_rows(kRows);
    static constexpr int kWindowWords = kWindowRows / 8;
    static constexpr int kRowVectors = row_vectors(kWindowWords);
    detail::Words4 a[kRows][kRowVectors];  ///< activations of the window, interleaved per 8 rows
    int word_group[kWindowWords];          ///< act-order: group of each 8-row word of the window
  };

  /// The same loads as the SIMT mainloop: 16-byte rows of 4 columns of qweight, 4 scales at once, C in pairs.
  static Status can_implement(const GemmProblem& p) { return detail::check_quad_column_layout<Load, Codec>(p); }

  template <int kRows, bool kActOrder, class Work, class Epilogue>
  OPT4GPTQ_DEVICE static void run(const KernelParams& p, const Work& work, SharedStorage<kRows>& smem,
                                  Epilogue&& epilogue) {
    static_assert(kRows % Shape::kM == 0, "MainloopMma: rows per block must be whole M tiles");
    constexpr int kMTiles = kRows / Shape::kM;
    const int lane = static_cast<int>(threadIdx.x) % Shape::kLanes;
    const int warp = static_cast<int>(threadIdx.x) / Shape::kLanes;
    const int block_col = work.block_col();
    const int col = block_col + warp * Tile::kWarpCols + 4 * Shape::b_column(lane);  // the lane's 4 columns
    const int word = Shape::b_word(lane);  // the lane's packed word of each chunk
    const int m0 = work.m0();
    const int rows = min(kRows, p.m - m0);

    const detail::RowsInUse in_use = detail::rows_in_use<kActOrder>(p);
    const int k_begin = work.k_begin();
    const int k_end = min(in_use.k_rows, work.k_end());
    const bool has_cols = col < p.n;  // n % 8 == 0 and col % 4 == 0: all 4 columns exist, or none

    float acc[kMTiles][Tile::kNTiles][Shape::kCElements];
#pragma unroll
    for (int t = 0; t < kMTiles; ++t)
#pragma unroll
      for (int i = 0; i < Tile::kNTiles; ++i)
#pragma unroll
        for (int e = 0; e < Shape::kCElements; ++e) acc[t][i][e] = 0.0f;

    const int groups = kActOrder ? p.act_order_groups : (p.k_rows + p.group_size - 1) / p.group_size;
    GroupConstants gc;

    const std::int64_t ldq = p.ldq;
    const std::uint32_t* q = p.qweight + static_cast<std::int64_t>(k_begin / 8 + word) * ldq + col;
    using Storage = SharedStorage<kRows>;
    // Up to 4 staging loads in flight per thread (each 4 registers: more would cost occupancy).
    constexpr int kVectorsPerThread = (kRows * Storage::kWindowWords + kThreads - 1) / kThreads;
    constexpr int kStagingBatch = kVectorsPerThread < 4 ? kVectorsPerThread : 4;
    detail::Words4 weights[Tile::kChunks];
    load_stage(q, ldq, k_begin, k_end, word, has_cols, weights);
    for (int window = k_begin; window < k_end; window += Storage::kWindowRows) {
      const int window_end = min(k_end, window + Storage::kWindowRows);
      if (window != k_begin) __syncthreads();  // everyone is done with the previous window's activations
      detail::stage_activations<Load, Codec, kThreads, Storage::kWindowRows, Storage::kRowVectors * 8, kRows, kActOrder,
                                kStagingBatch>(p, reinterpret_cast<half*>(&smem.a[0][0]), smem.word_group, window,
                                               window_end, m0, rows);
      __syncthreads();
      for (int stage = window; stage < window_end; stage += Tile::kStageRows) {
        // The next stage's weights go in flight before this one is used (across windows too: before the next
        // window's staging and barriers).
        const bool more = stage + Tile::kStageRows < k_end;
        detail::Words4 next[Tile::kChunks];
        if (more) load_stage(q + kStageWords * ldq, ldq, stage + Tile::kStageRows, k_end, word, has_cols, next);
        multiply_stage<kRows, kActOrder>(p, smem, stage, (stage - window) / 8, k_end, groups, lane, col, has_cols,
                                         weights, gc, acc);
        if (more) {
          q += kStageWords * ldq;
#pragma unroll
          for (int u = 0; u < Tile::kChunks; ++u) weights[u] = next[u];
        }
      }
    }

    // prepare_act_order found a g_idx entry outside [0, num_groups), or the view is not the buffer's: every output is
    // NaN rather than a plausible number.
    if (!in_use.data_valid) detail::fill_nan(acc);

    epilogue(acc, [&] {
      return detail::element_output<Element>(detail::thread_output(p, m0, rows, col, block_col, lane, 0));
    });
  }

  /// The ReducePolicy step: the fragments become one fp32 sum per output of the block in the policy's shared
  /// storage (row-major [kRows][kBlockCols]; Shape::c() says which output each accumulator is), then the policy
  /// commits them.
  template <class Reduce, int kRows, class Storage, class Accumulators, class Output>
  OPT4GPTQ_DEVICE static void reduce(Storage& storage, const Accumulators& acc, const Output& out) {
    detail::reduce_fragments<Shape, Tile, Reduce, kRows>(storage, acc, out);
  }

 private:
  using GroupConstants = detail::MmaGroupConstants<Codec, Element>;

  /// The lane's weights of one stage: word `word` of each chunk for its 4 columns (`q` points at the stage's first),
  /// zero past k_end or past N.
  OPT4GPTQ_DEVICE static void load_stage(const std::uint32_t* q, std::int64_t ldq, int stage, int k_end, int word,
                                         bool has_cols, detail::Words4 (&out)[Tile::kChunks]) {
#pragma unroll
    for (int u = 0; u < Tile::kChunks; ++u) {
      if (has_cols && stage + 32 * u + 8 * word < k_end)
        out[u] = *reinterpret_cast<const detail::Words4*>(q + 4 * u * ldq);
      else
        out[u] = detail::Words4{0u, 0u, 0u, 0u};
    }
  }

  OPT4GPTQ_DEVICE static std::uint32_t component(const detail::Words4& v, int c) {
    return c == 0 ? v.x : c == 1 ? v.y : c == 2 ? v.z : v.w;
  }

  template <int kRows, bool kActOrder, class Accumulators>
  OPT4GPTQ_DEVICE static void multiply_stage(const KernelParams& p, const SharedStorage<kRows>& smem, int stage,
                                             int window_word, int k_end, int groups, int lane, int col, bool has_cols,
                                             const detail::Words4 (&weights)[Tile::kChunks], GroupConstants& gc,
                                             Accumulators& acc) {
    constexpr int kMTiles = kRows / Shape::kM;
    const int word = Shape::b_word(lane);
#pragma unroll
    for (int u = 0; u < Tile::kChunks; ++u) {
      if (stage + 32 * u >= k_end) break;  // the same for the whole block
      // Groups: the lane's word lies in one group (group sizes are multiples of 8); lanes of one wave may be in
      // different groups when the group size is below 32.
      const int row = stage + 32 * u + 8 * word;
      if (has_cols && row < k_end) {
        if constexpr (kActOrder) {
          const int group = smem.word_group[window_word + 4 * u + word];
          if (group != gc.group) gc.enter(p, group, groups, col);
        } else if (row >= gc.next_row) {
          // A lane's rows advance by 32 per chunk: with groups of >= 32 rows it enters the next group, so only the
          // first group (and groups below 32 rows) cost a division.
          const int group = gc.group >= 0 && p.group_size >= 32 ? gc.group + 1 : row / p.group_size;
          gc.enter(p, group, groups, col);
          gc.next_row = (group + 1) * p.group_size;
        }
      }
      // A: the lane's staged vectors of every M tile (their components are its A registers for both K steps).
      detail::Words4 v[kMTiles][Shape::kAVectors];
#pragma unroll
      for (int t = 0; t < kMTiles; ++t)
#pragma unroll
        for (int j = 0; j < Shape::kAVectors; ++j)
          v[t][j] =
              smem.a[t * Shape::kM + Shape::a_vector_row(lane, j)][window_word + 4 * u + Shape::a_vector_word(lane)];
      // B, one n-tile at a time: its column's (q - z) x scale, pairs in the codec's order (few registers live).
      const std::uint32_t words[4] = {weights[u].x, weights[u].y, weights[u].z, weights[u].w};
#pragma unroll
      for (int i = 0; i < Tile::kNTiles; ++i) {
        std::uint32_t b[4];
        detail::dequant_b(words[i], gc, i, b);
#pragma unroll
        for (int step = 0; step < 2; ++step) {
          const std::uint32_t bb[Shape::kBRegisters] = {b[2 * step], b[2 * step + 1]};
#pragma unroll
          for (int t = 0; t < kMTiles; ++t) {
            std::uint32_t a[Shape::kARegisters];
#pragma unroll
            for (int r = 0; r < Shape::kARegisters; ++r)
              a[r] = component(v[t][Shape::a_vector(r)], Shape::a_component(step, r));
            if constexpr (kBf16)
              Instruction::run_bf16(acc[t][i], a, bb);
            else
              Instruction::run(acc[t][i], a, bb);
          }
        }
      }
    }
  }
};

/// @ingroup kernel
/// MainloopMma of fp16 activations and outputs (MainloopMmaOf<ElementFp16, ...>: a type of its own, so that the fp16 kernels'
/// names, and their generated code, are those they had before bf16 existed).
template <class Load, class Tile, class Codec_ = CodecInt4>
struct MainloopMma : MainloopMmaOf<ElementFp16, Load, Tile, Codec_> {};

namespace detail {
/// The mainloop of an element type: MainloopMma itself for fp16.
template <class Element, class Load, class Tile, class Codec>
struct mma_mainloop_of {
  using type = MainloopMmaOf<Element, Load, Tile, Codec>;
};
template <class Load, class Tile, class Codec>
struct mma_mainloop_of<ElementFp16, Load, Tile, Codec> {
  using type = MainloopMma<Load, Tile, Codec>;
};
}  // namespace detail

OPT4GPTQ_NAMESPACE_END
