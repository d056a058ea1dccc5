#pragma once
/// @file
/// MainloopMmaPipelined: the matrix-core mainloop with a multi-stage pipeline of asynchronous copies, so that a
/// block keeps `kStages - 1` stages of weights and activations in flight while it multiplies one: the weight stream
/// stays at the memory's pace from M = 1 (decode) to M = 64 (serving batches) without holding registers for the
/// loads in flight. Same slots, instruction layouts, k-order and epilogue as MainloopMma (kernel/mainloop_mma.hpp,
/// docs/mma_mainloop.md); what differs is how the operands reach shared memory:
///
///  - weights: each lane copies its own 16-byte vector of every 32-row chunk (4 columns of packed word
///    Shape::b_word(lane), as saved) into its own slot of a ring of kStages stages (detail/async_copy.hpp: cp.async on
///    NVIDIA sm_80+), and reads it back itself, so no barrier is needed for them;
///  - activations: the block copies its rows of A for the stage, 16 bytes (8 consecutive rows of K) at a time, as
///    they are in memory, into the same ring; a lane turns each vector it reads into the codec's interleaved order
///    (a0 a4 a1 a5 a2 a6 a3 a7, 4 byte permutes) on the way to its A registers. With act-order the stage is gathered
///    through the prepared permutation by plain loads one stage ahead, stored after the multiply of the stage before;
///  - one barrier per stage: it makes the block's copies of the stage visible and frees the slot of the stage before
///    for the next copies. Rows of A past M are zeroed once, not copied;
///  - the copies' sources move by one stage per stage (CopyCursor): their 64-bit addresses are computed once per
///    block, not per stage.
/// The ring is dynamic shared memory (up to ~110 KiB at 64 rows of M with 4 stages on NVIDIA).
/// @ingroup kernel

#include <cstdint>
#include <type_traits>
#include <utility>

#include "../codec/int4.hpp"
#include "../detail/async_copy.hpp"
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
/// The block shape of MainloopMmaPipelined: `Warps` waves side by side along N, each owning 4 n-tiles of the
/// instruction `Shape`; stages of `Chunks` x 32 rows of K; a ring of `Stages` stages (Stages - 1 in flight). The names
/// the scheduler and the ReducePolicies read (kThreads, kBlockCols, kStageRows, kStagesPerBlock, kSplitK) mean what
/// they mean for TileShape. `MinBlocks` asks the compiler for a register budget that fits that many blocks per
/// multiprocessor (warps in flight are what hides the latency of each warp's dependent chains).
template <class Shape_, int Warps = 4, int Chunks = 4, int Stages = 4, int MinBlocks = 1>
struct MmaPipelineTile {
  using Shape = Shape_;
  static constexpr int kWarps = Warps;
  static constexpr int kNTiles = 4;  ///< one 16-byte load holds 4 columns: one in each n-tile
  static constexpr int kWarpCols = kNTiles * Shape::kN;
  static constexpr int kThreads = Warps * Shape::kLanes;
  static constexpr int kBlockCols = Warps * kWarpCols;
  static constexpr int kChunks = Chunks;
  static constexpr int kStageRows = 32 * Chunks;
  static constexpr int kStages = Stages;
  static constexpr int kStagesPerBlock = 0;  ///< the plan chooses the K split per problem and GPU
  static constexpr int kSplitK = 1;
  static constexpr int kLanesN = kBlockCols / 4;
  /// A block's fixed cost (filling the pipeline, the epilogue) counted in stages by the split-K plan.
  static constexpr int kBlockOverheadStages = Stages;
  static constexpr int kMinBlocksPerMultiprocessor = MinBlocks;

  static_assert(Warps >= 1 && kThreads <= 1024, "MmaPipelineTile: 1 .. 1024 / wave size waves per block");
  static_assert(Chunks >= 1 && Chunks <= 8, "MmaPipelineTile: 1 .. 8 chunks of 32 rows per stage");
  static_assert(Stages >= 2 && Stages <= 8, "MmaPipelineTile: 2 .. 8 stages in the ring");

  OPT4GPTQ_HOST_DEVICE static constexpr int splits_per_wave() { return 1; }
};

namespace detail {
/// A 16-byte vector of 8 consecutive activations (a0 a1 | a2 a3 | a4 a5 | a6 a7) in the codec's interleaved order
/// (a0 a4 | a1 a5 | a2 a6 | a3 a7): the pairs dequant() produces (codec/int4.hpp).
OPT4GPTQ_DEVICE Words4 interleave_pairs(const Words4& v) {
#if defined(OPT4GPTQ_BACKEND_CUDA)
  return Words4{__byte_perm(v.x, v.z, 0x5410), __byte_perm(v.x, v.z, 0x7632), __byte_perm(v.y, v.w, 0x5410),
                __byte_perm(v.y, v.w, 0x7632)};
#else
  return Words4{(v.x & 0xFFFFu) | (v.z << 16), (v.x >> 16) | (v.z & 0xFFFF0000u), (v.y & 0xFFFFu) | (v.w << 16),
                (v.y >> 16) | (v.w & 0xFFFF0000u)};
#endif
}
}  // namespace detail

/// @ingroup kernel
/// The pipelined matrix-core mainloop of one LoadPolicy (it sets A's alignment rule: the copies are 16 bytes, so A
/// needs LoadVec8's), MmaPipelineTile and codec.
template <class Element_, class Load, class Tile, class Codec_ = CodecInt4>
struct MainloopMmaPipelinedOf {
  using Element = Element_;  ///< of A and C: ElementFp16, or ElementBf16 (bf16 instructions, B rounded to bf16)
  static constexpr bool kBf16 = Element::kType == ElementType::kBf16;
  using LoadPolicy = Load;
  using TileShape = Tile;
  using Codec = Codec_;
  using Shape = typename Tile::Shape;
  using Instruction = mma::MatrixInstruction<Shape>;
  static_assert(Codec::kRowsPerWord == 8,
                "MainloopMmaPipelined forms fragments from packed words of 8 rows: it needs a codec with 8 rows per "
                "word (CodecInt4)");
  static_assert(Shape::kLanes == platform::kWaveSize,
                "MainloopMmaPipelined: the tile's instruction is for another wave size than this backend's (NVIDIA: "
                "mma::MmaM16N8K16, 32 lanes; AMD: mma::MfmaF32x16x16x16F16, 64 lanes; mma::NativeShape picks it)");
  static_assert(Load::kVectorHalves == 8,
                "MainloopMmaPipelined copies activations 16 bytes at a time: use LoadVec8 (its alignment rule)");

  static constexpr bool kPoliciesValid = check_load_policy<Load>();
  static constexpr bool kOwnsReduceStep = true;       ///< fragments: reduce() below runs the ReducePolicy step
  static constexpr bool kDynamicSharedMemory = true;  ///< the ring is larger than static shared memory allows
  static constexpr int kThreads = Tile::kThreads;
  static constexpr int kMaxRows = 64;  ///< rows of M per block (4 M tiles of 16); larger M runs in chunks along y
  /// Entry points: half an M tile (decode: rows 8..15 of the instruction are zeros that are neither staged nor read),
  /// then 1, 2 or 4 M tiles of 16 rows; the rows past M are masked (zeros in, nothing written).
  using EntryRows = std::integer_sequence<int, 8, 16, 32, 64>;
  static constexpr int rows_per_block(int m) { return m <= 8 ? 8 : m <= 16 ? 16 : m <= 32 ? 32 : 64; }
  /// M tiles of the instruction per block (a block of 8 rows uses the upper half of one).
  template <int kRows>
  static constexpr int kMTilesOf = (kRows + Shape::kM - 1) / Shape::kM;
  template <class Reduce>
  static constexpr bool reduce_policy_valid() {
    if constexpr (kBf16)
      return check_block_reduce_policy<Reduce, Tile>() && check_bf16_reduce_policy<Reduce>();
    else
      return check_block_reduce_policy<Reduce, Tile>();
  }

  static constexpr int kStages = Tile::kStages;
  static constexpr int kChunks = Tile::kChunks;
  static constexpr int kStageWords = Tile::kStageRows / 8;  ///< 16-byte vectors of a stage's row of A
  /// Row pitch of staged A in 16-byte vectors. NVIDIA: 8 lanes of one 16-byte shared load read 4 consecutive vectors
  /// of 2 rows, so the second row is put 64 bytes over (pitch = 4 mod 8 vectors). AMD: 16 lanes read one vector of
  /// 16 consecutive rows, so consecutive rows go to different bank groups (an odd pitch).
  static constexpr int kRowVectors =
      Shape::kLanes == 32 ? (kStageWords % 8 == 0 ? kStageWords + 4 : kStageWords) : (kStageWords | 1);

  template <int kRows>
  struct SharedStorage {
    detail::Words4 a[kStages][kRows][kRowVectors];  ///< activations of each stage, as in memory
    detail::Words4 b[kStages][kChunks][kThreads];   ///< each thread's weight vector of each chunk
    int word_group[kStages][kStageWords];           ///< act-order: group of each 8-row word of the stage
  };

  /// The same loads as the other mainloops: 16-byte rows of 4 columns of qweight, 4 scales at once, C in pairs, and
  /// A in 16-byte vectors (LoadVec8's rule).
  static Status can_implement(const GemmProblem& p) { return detail::check_quad_column_layout<Load, Codec>(p); }

  template <int kRows, bool kActOrder, class Work, class Epilogue>
  OPT4GPTQ_DEVICE static void run(const KernelParams& p, const Work& work, SharedStorage<kRows>& smem,
                                  Epilogue&& epilogue) {
    static_assert(kRows % Shape::kM == 0 || kRows == Shape::kM / 2,
                  "MainloopMmaPipelined: rows per block must be whole M tiles, or half of one");
    constexpr int kMTiles = kMTilesOf<kRows>;
    const int thread = static_cast<int>(threadIdx.x);
    const int lane = thread % Shape::kLanes;
    const int warp = thread / Shape::kLanes;
    const int block_col = work.block_col();
    const int col = block_col + warp * Tile::kWarpCols + 4 * Shape::b_column(lane);  // the lane's 4 columns
    const int word = Shape::b_word(lane);  // the lane's packed word of each chunk
    const int m0 = work.m0();
    const int rows = min(kRows, p.m - m0);

    const detail::RowsInUse in_use = detail::rows_in_use<kActOrder>(p);
    const int k_begin = work.k_begin();
    const int k_end = min(in_use.k_rows, work.k_end());
    const bool has_cols = col < p.n;  // n % 8 == 0 and col % 4 == 0: all 4 columns exist, or none
    const int stages = k_end > k_begin ? (k_end - k_begin + Tile::kStageRows - 1) / Tile::kStageRows : 0;

    float acc[kMTiles][Tile::kNTiles][Shape::kCElements];
#pragma unroll
    for (int t = 0; t < kMTiles; ++t)
#pragma unroll
      for (int i = 0; i < Tile::kNTiles; ++i)
#pragma unroll
        for (int e = 0; e < Shape::kCElements; ++e) acc[t][i][e] = 0.0f;

    const int groups = kActOrder ? p.act_order_groups : (p.k_rows + p.group_size - 1) / p.group_size;
    GroupConstants gc;
    // The first group's constants go in flight now, with the first stages, not when the first stage is used.
    if (has_cols && k_begin < k_end) {
      gc.prefetch(p, kActOrder ? p.word_group[k_begin / 8 + word] : (k_begin + 8 * word) / p.group_size, col);
    }

    // The pipeline: stages 0 .. kStages - 2 in flight before the first multiply, one more issued per stage.
    // Every iteration commits one group of copies (possibly empty), so that wait<kStages - 2> always means "the
    // stage about to be used has arrived".
    Gather<kRows> gathered;
    CopyCursor next_copy(p, k_begin, k_end, word, col, m0);
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < stages) {
        copy_weights(p, smem, s, next_copy, has_cols);
        if constexpr (kActOrder) {
          gather(p, s, k_begin, k_end, m0, rows, gathered);
          store_gathered(smem, s, rows, gathered);
        } else {
          copy_activations<kRows>(p, smem, s, k_begin + s * Tile::kStageRows, k_end, m0, rows, next_copy);
        }
        next_copy.advance();
      }
      detail::async_copy::commit();
    }
    // Rows of A past M are never copied: zero them once in every slot (after the first copies are in flight; seen
    // after the first barrier below).
    if (rows < kRows) {
#pragma unroll 1
      for (int i = thread; i < kStages * kRows * kStageWords; i += kThreads) {
        const int r = (i / kStageWords) % kRows;
        if (r >= rows) smem.a[i / (kRows * kStageWords)][r][i % kStageWords] = detail::Words4{0u, 0u, 0u, 0u};
      }
    }
    for (int s = 0; s < stages; ++s) {
      detail::async_copy::wait<kStages - 2>();
      __syncthreads();  // the block's copies of stage s are visible; everyone is done with stage s - 1's slot
      const int next = s + kStages - 1;
      if (next < stages) {
        copy_weights(p, smem, next % kStages, next_copy, has_cols);
        if constexpr (kActOrder)
          gather(p, next, k_begin, k_end, m0, rows, gathered);  // plain loads, stored after this stage's multiply
        else
          copy_activations<kRows>(p, smem, next % kStages, k_begin + next * Tile::kStageRows, k_end, m0, rows,
                                  next_copy);
        next_copy.advance();
      }
      detail::async_copy::commit();
      multiply_stage<kRows, kActOrder>(p, smem, s, s % kStages, k_begin, k_end, groups, lane, col, has_cols, gc, acc);
      if constexpr (kActOrder)
        if (next < stages) store_gathered(smem, next % kStages, rows, gathered);
    }
    detail::async_copy::wait<0>();  // nothing may land in the ring once the epilogue reuses it

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

  /// A thread's activation vectors of a stage, in the common case (kThreads a multiple of the stage's vectors per
  /// row): each thread copies the same vector `v` of rows r0, r0 + kRowStep, ..., so its sources are one pointer
  /// and fixed offsets.
  static constexpr bool kFixedVectorPerThread = kThreads % kStageWords == 0;
  static constexpr int kRowStep = kFixedVectorPerThread ? kThreads / kStageWords : 1;

  /// Where the next stage's copies read: the lane's weight vector of its first chunk and the thread's first activation
  /// vector, with the rows of K left from each. Advanced by one stage per stage copied, so that a stage's copies cost
  /// their cp.async and a compare each: the 64-bit products of their addresses (~100 instructions per stage and warp
  /// measured on sm_90, 17% of the stall samples at M = 8) are made once per block.
  struct CopyCursor {
    const std::uint32_t* q;     ///< the lane's 16-byte weight vector of chunk 0 of the next stage
    std::int64_t chunk_stride;  ///< elements of qweight from one chunk's vector to the next's (32 rows of K)
    int q_rows_left;            ///< k_end minus the first row of that vector (a chunk u is inside if 32 u < this)
    const half* a;              ///< the thread's first activation vector of the next stage (kFixedVectorPerThread)
    std::int64_t a_row_stride;  ///< elements of A from one of the thread's rows to its next (kRowStep rows)
    int a_rows_left;            ///< k_end minus the first row of K of that vector (inside if > 0)

    OPT4GPTQ_DEVICE CopyCursor(const KernelParams& p, int k_begin, int k_end, int word, int col, int m0)
        : q(p.qweight + static_cast<std::int64_t>(k_begin / 8 + word) * p.ldq + col),
          chunk_stride(4 * static_cast<std::int64_t>(p.ldq)),
          q_rows_left(k_end - (k_begin + 8 * word)),
          a(p.a + static_cast<std::int64_t>(m0 + static_cast<int>(threadIdx.x) / kStageWords) * p.lda + k_begin +
            8 * (static_cast<int>(threadIdx.x) % kStageWords)),
          a_row_stride(static_cast<std::int64_t>(kRowStep) * p.lda),
          a_rows_left(k_end - (k_begin + 8 * (static_cast<int>(threadIdx.x) % kStageWords))) {}

    OPT4GPTQ_DEVICE void advance() {
      q += kChunks * chunk_stride;
      q_rows_left -= Tile::kStageRows;
      a += Tile::kStageRows;
      a_rows_left -= Tile::kStageRows;
    }
  };

  /// The lane's weights of the stage `at` points to: word `word` of each chunk for its 4 columns, zeros past k_end or
  /// past N.
  template <int kRows>
  OPT4GPTQ_DEVICE static void copy_weights(const KernelParams& p, SharedStorage<kRows>& smem, int slot,
                                           const CopyCursor& at, bool has_cols) {
#pragma unroll
    for (int u = 0; u < kChunks; ++u) {
      const bool inside = has_cols && 32 * u < at.q_rows_left;
      detail::async_copy::copy16(&smem.b[slot][u][threadIdx.x], inside ? at.q + u * at.chunk_stride : p.qweight,
                                 inside);
    }
  }

  /// The block's rows of A for the stage starting at row `k0` (rows [0, rows) of the M chunk; `at` points to it), 16
  /// bytes per copy, zeros past k_end.
  template <int kRows>
  OPT4GPTQ_DEVICE static void copy_activations(const KernelParams& p, SharedStorage<kRows>& smem, int slot, int k0,
                                               int k_end, int m0, int rows, const CopyCursor& at) {
    if constexpr (kFixedVectorPerThread) {
      const int r0 = static_cast<int>(threadIdx.x) / kStageWords;
      const int v = static_cast<int>(threadIdx.x) % kStageWords;
      const bool inside = at.a_rows_left > 0;  // k_end and k0 + 8 v are multiples of 8: all of the vector or none
#pragma unroll
      for (int j = 0; j < (kRows + kRowStep - 1) / kRowStep; ++j) {
        const int r = r0 + j * kRowStep;
        if (r < rows)
          detail::async_copy::copy16(&smem.a[slot][r][v], inside ? at.a + j * at.a_row_stride : p.a, inside);
      }
    } else {
      for (int i = static_cast<int>(threadIdx.x); i < rows * kStageWords; i += kThreads) {
        const int r = i / kStageWords;
        const int v = i % kStageWords;
        const int k = k0 + 8 * v;
        const bool inside = k < k_end;
        detail::async_copy::copy16(&smem.a[slot][r][v],
                                   inside ? p.a + static_cast<std::int64_t>(m0 + r) * p.lda + k : p.a, inside);
      }
    }
  }

  /// Act-order: the stage's activations gathered through the prepared permutation (a gather cannot be copied 16
  /// bytes at a time), and the group of each of its 8-row words; held in registers between the loads and the store.
  static constexpr int kGatherPerThread = (Tile::kStageRows + kThreads - 1) / kThreads;
  template <int kRows>
  struct Gather {
    half a[kGatherPerThread][kRows];
    int word_group;
  };

  template <int kRows>
  OPT4GPTQ_DEVICE static void gather(const KernelParams& p, int s, int k_begin, int k_end, int m0, int rows,
                                     Gather<kRows>& g) {
    const int k0 = k_begin + s * Tile::kStageRows;
    const half zero = platform::bit_cast<half>(static_cast<unsigned short>(0));
#pragma unroll
    for (int e = 0; e < kGatherPerThread; ++e) {
      const int kk = static_cast<int>(threadIdx.x) + e * kThreads;
      const int src = kk < Tile::kStageRows && k0 + kk < k_end ? p.perm[k0 + kk] : -1;
      const bool valid = src >= 0 && src < p.act_order_k;
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        g.a[e][r] = valid && r < rows ? p.a[static_cast<std::int64_t>(m0 + r) * p.lda + src] : zero;
    }
    const int w = static_cast<int>(threadIdx.x);
    g.word_group = w < kStageWords && k0 + 8 * w < k_end ? p.word_group[k0 / 8 + w] : 0;
  }

  template <int kRows>
  OPT4GPTQ_DEVICE static void store_gathered(SharedStorage<kRows>& smem, int slot, int rows, const Gather<kRows>& g) {
#pragma unroll
    for (int e = 0; e < kGatherPerThread; ++e) {
      const int kk = static_cast<int>(threadIdx.x) + e * kThreads;
      if (kk < Tile::kStageRows) {
#pragma unroll
        for (int r = 0; r < kRows; ++r)
          if (r < rows) reinterpret_cast<half*>(&smem.a[slot][r][0])[kk] = g.a[e][r];
      }
    }
    if (static_cast<int>(threadIdx.x) < kStageWords) smem.word_group[slot][threadIdx.x] = g.word_group;
  }

  OPT4GPTQ_DEVICE static std::uint32_t component(const detail::Words4& v, int c) {
    return c == 0 ? v.x : c == 1 ? v.y : c == 2 ? v.z : v.w;
  }

  /// One stage: every chunk is computed, also past k_end (its weights and activations were copied as zeros, so it adds
  /// nothing), so that the chunks are one branch-free block the compiler interleaves: a branch between chunks made
  /// each chunk's dependent chain (shared load, dequantization, mma) run alone. Group constants change per stage when
  /// a stage lies in one group (group sizes that are multiples of the stage, without act-order: uniform over the
  /// block), else per chunk and lane.
  template <int kRows, bool kActOrder, class Accumulators>
  OPT4GPTQ_DEVICE static void multiply_stage(const KernelParams& p, const SharedStorage<kRows>& smem, int s, int slot,
                                             int k_begin, int k_end, int groups, int lane, int col, bool has_cols,
                                             GroupConstants& gc, Accumulators& acc) {
    const int word = Shape::b_word(lane);
    const int stage_row = k_begin + s * Tile::kStageRows;
    if (!kActOrder && p.group_size % Tile::kStageRows == 0) {
      if (has_cols && stage_row >= gc.next_row) {
        const int group = gc.group >= 0 ? gc.group + 1 : stage_row / p.group_size;
        gc.enter(p, group, groups, col);
        gc.next_row = (group + 1) * p.group_size;
      }
#pragma unroll
      for (int u = 0; u < kChunks; ++u) multiply_chunk<kRows>(smem, slot, u, lane, gc, acc);
    } else {
#pragma unroll
      for (int u = 0; u < kChunks; ++u) {
        // The lane's word lies in one group (group sizes are multiples of 8); lanes of one wave may be in different
        // groups when the group size is below 32.
        const int row = stage_row + 32 * u + 8 * word;
        if (has_cols && row < k_end) {
          if constexpr (kActOrder) {
            const int group = smem.word_group[slot][4 * u + word];
            if (group != gc.group) gc.enter(p, group, groups, col);
          } else if (row >= gc.next_row) {
            // A lane's rows advance by 32 per chunk: with groups of >= 32 rows it enters the next group, so only the
            // first group (and groups below 32 rows) cost a division.
            const int group = gc.group >= 0 && p.group_size >= 32 ? gc.group + 1 : row / p.group_size;
            gc.enter(p, group, groups, col);
            gc.next_row = (group + 1) * p.group_size;
          }
        }
        multiply_chunk<kRows>(smem, slot, u, lane, gc, acc);
      }
    }
  }

  /// Chunk u of a stage: the lane's 4 words dequantized into B of the 4 n-tiles, then per M tile its staged A vectors
  /// (interleaved on the way) and 2 K steps x 4 n-tiles of the instruction.
  template <int kRows, class Accumulators>
  OPT4GPTQ_DEVICE static void multiply_chunk(const SharedStorage<kRows>& smem, int slot, int u, int lane,
                                             const GroupConstants& gc, Accumulators& acc) {
    constexpr int kMTiles = kMTilesOf<kRows>;
    const detail::Words4 wv = smem.b[slot][u][threadIdx.x];
    const std::uint32_t words[4] = {wv.x, wv.y, wv.z, wv.w};
    std::uint32_t b[Tile::kNTiles][4];
#pragma unroll
    for (int i = 0; i < Tile::kNTiles; ++i) detail::dequant_b(words[i], gc, i, b[i]);
#pragma unroll
    for (int t = 0; t < kMTiles; ++t) {
      detail::Words4 v[Shape::kAVectors];
#pragma unroll
      for (int j = 0; j < Shape::kAVectors; ++j) {
        const int row = t * Shape::kM + Shape::a_vector_row(lane, j);
        v[j] = kRows % Shape::kM != 0 && row >= kRows
                   ? detail::Words4{0u, 0u, 0u, 0u}  // the zero half of a half tile
                   : detail::interleave_pairs(smem.a[slot][row][4 * u + Shape::a_vector_word(lane)]);
      }
#pragma unroll
      for (int step = 0; step < 2; ++step) {
        std::uint32_t a[Shape::kARegisters];
#pragma unroll
        for (int r = 0; r < Shape::kARegisters; ++r)
          a[r] = component(v[Shape::a_vector(r)], Shape::a_component(step, r));
#pragma unroll
        for (int i = 0; i < Tile::kNTiles; ++i) {
          const std::uint32_t bb[Shape::kBRegisters] = {b[i][2 * step], b[i][2 * step + 1]};
          if constexpr (kBf16)
            Instruction::run_bf16(acc[t][i], a, bb);
          else
            Instruction::run(acc[t][i], a, bb);
        }
      }
    }
  }
};

/// @ingroup kernel
/// MainloopMmaPipelined of fp16 activations and outputs (MainloopMmaPipelinedOf<ElementFp16, ...>: a type of its own, so that the fp16 kernels'
/// names, and their generated code, are those they had before bf16 existed).
template <class Load, class Tile, class Codec_ = CodecInt4>
struct MainloopMmaPipelined : MainloopMmaPipelinedOf<ElementFp16, Load, Tile, Codec_> {};

namespace detail {
/// The mainloop of an element type: MainloopMmaPipelined itself for fp16.
template <class Element, class Load, class Tile, class Codec>
struct mma_pipelined_mainloop_of {
  using type = MainloopMmaPipelinedOf<Element, Load, Tile, Codec>;
};
template <class Load, class Tile, class Codec>
struct mma_pipelined_mainloop_of<ElementFp16, Load, Tile, Codec> {
  using type = MainloopMmaPipelined<Load, Tile, Codec>;
};
}  // namespace detail

OPT4GPTQ_NAMESPACE_END
