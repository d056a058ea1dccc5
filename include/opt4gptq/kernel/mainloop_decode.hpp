#pragma once
/// @file
/// MainloopDecode: the decode mainloop on CUDA cores / SIMD lanes (M = 1..8), for GPUs without matrix instructions
/// (gfx906, the HYGON DCU Z100, first) and as the SIMT reference of the decode path. It keeps the SIMT mainloop's
/// thread layout (each thread owns 4 columns; the block's K sub-slices are its waves) and its ReducePolicy contract,
/// and changes what limits a weight stream at small M:
///  - the weights of the next stage are in flight while a stage is multiplied (two batches per thread in registers),
///    across stage and window boundaries, and so are the next stage's group constants;
///  - activations are staged once per window of many stages (up to 16 KiB: the whole K range of a block at M = 1 on
///    most layers), so a block pays a barrier and a staging latency per window, not per stage;
///  - each wave (AMD) or pair of warps (NVIDIA) is one K sub-slice: all its lanes read the same staged 16-byte vector
///    of activations at once (one address per wave: a broadcast, free of bank conflicts by construction);
///  - with a MathPolicy that has a `dot8` (MathDot2F32: `v_dot2_f32_f16` on gfx9) the 8 products of a word are summed
///    in fp32, then one fma applies the column's scale: no fp16 partial sums, so no fp16 overflow. Without one (the
///    fp16 chain, which NVIDIA runs faster: its fp32 products cost conversions) each window of activations is range
///    scaled per row by a power of two (range_scaling.hpp), so that the chain's 4-product fp16 partial sums cannot
///    overflow either, whatever the activations;
///  - bf16 activations are staged as they are and converted once per window to range-scaled fp16 (exact for every
///    value down to 2^-26 of its row's largest, range_scaling.hpp); from there the arithmetic is the fp16 kernel's, with
///    the same MathPolicy, and only the output is rounded to bf16. Measured on an H200 (bench/NOTES.md), this runs
///    at the fp16 kernel's speed, where fp32 products of bf16 values (detail::WordArithmetic<ElementBf16>, the SIMT
///    mainloop's bf16 path) took 1.36x its time at M = 1.
/// The K split across blocks is the scheduler's; ReduceSharedSerial combines it inside the launch (no zero-fill).
/// @ingroup kernel

#include <type_traits>
#include <utility>

#include "../codec/int4.hpp"
#include "../element.hpp"
#include "../platform.hpp"
#include "../policy/reduce.hpp"
#include "../policy/traits.hpp"
#include "../problem.hpp"
#include "../status.hpp"
#include "../tile.hpp"
#include "act_order_rows.hpp"
#include "activation_staging.hpp"
#include "params.hpp"
#include "quad_column_checks.hpp"
#include "range_scaling.hpp"
#include "thread_output.hpp"
#include "word_arithmetic.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

namespace detail {
/// A register budget for the compiler (GemmKernel::kBoundedRegisters), stated only when asked for (MinBlocks > 0).
template <int MinBlocks>
struct DecodeMinBlocks {
  static constexpr int kMinBlocksPerMultiprocessor = MinBlocks;
};
template <>
struct DecodeMinBlocks<0> {};

/// A decode tile's kWholeBatchMinRows (see MainloopDecodeOf), or `Default` when it states none.
template <class Tile, int Default, class = void>
struct whole_batch_min_rows : std::integral_constant<int, Default> {};
template <class Tile, int Default>
struct whole_batch_min_rows<Tile, Default, std::void_t<decltype(Tile::kWholeBatchMinRows)>>
    : std::integral_constant<int, Tile::kWholeBatchMinRows> {};
}  // namespace detail

/// @ingroup kernel
/// The block shape of MainloopDecode: TileShape's layout (`Threads` threads = K sub-slices x `LanesN` column lanes of 4
/// columns) with stages of one batch of `Unroll` packed words per sub-slice (kChunkK = 8 x Unroll rows), `Ahead`
/// batches per thread in flight while one is multiplied (each costs Unroll x 4 registers for its words, plus its group
/// constants), and `StagingBatch` activation loads in flight per thread while a window is staged (each costs 4
/// registers: on gfx906 1, to stay at 3 waves per SIMD). `MinBlocks` > 0 asks the compiler to fit that many blocks per
/// multiprocessor (a register budget of 64K / (Threads x MinBlocks) on NVIDIA); 0 leaves it free. A tile derived from
/// it may state `kWholeBatchMinRows` (MainloopDecodeOf: from how many rows of M per block whole batches run a word
/// loop without guards).
template <int Threads = 256, int LanesN = 32, int Unroll = 4, int StagingBatch = 4, int MinBlocks = 0, int Ahead = 1>
struct DecodeTileShape : TileShape<Threads, LanesN, 8 * Unroll, 0, Unroll, Ahead + 1>,
                         detail::DecodeMinBlocks<MinBlocks> {
  /// The split-K plan counts a block's fixed cost (first loads, staging, reduction) as this many stages.
  static constexpr int kBlockOverheadStages = 2;
  static constexpr int kStagingBatch = StagingBatch;
  static_assert(StagingBatch >= 1 && StagingBatch <= 8, "DecodeTileShape: 1 .. 8 staging loads in flight");
  static_assert(Ahead >= 0 && Ahead <= 3, "DecodeTileShape: 0 .. 3 batches in flight ahead of the one multiplied");
};

/// @ingroup kernel
/// The decode mainloop of one LoadPolicy (how A is staged), MathPolicy (the dot products), DecodeTileShape and codec.
template <class Element_, class Load, class Math, class Tile, class Codec_ = CodecInt4>
struct MainloopDecodeOf {
  using Element = Element_;  ///< of A and C: ElementFp16, or ElementBf16 (staged, then converted to fp16)
  using LoadPolicy = Load;
  using MathPolicy = Math;
  using TileShape = Tile;
  using Codec = Codec_;
  static constexpr bool kBf16 = Element::kType == ElementType::kBf16;
  /// fp16 arithmetic for both element types: bf16 windows become range-scaled fp16 before they are used.
  using Arithmetic = detail::WordArithmetic<ElementFp16, Codec, Math>;
  static_assert(Codec::kRowsPerWord == 8,
                "MainloopDecode stages activations as 16-byte vectors of 8 rows, one per packed word: it needs a codec "
                "with 8 rows per word (CodecInt4)");

  static constexpr bool kPoliciesValid = check_load_policy<Load>() && check_math_policy<Math>();
  static constexpr int kThreads = Tile::kThreads;
  /// Whether every window of activations is range scaled (range_scaling.hpp): when the products are summed in fp16 (a
  /// MathPolicy without `dot8`), so that no fp16 partial sum can overflow, and always for bf16 activations, which are
  /// converted to fp16 on the way (bf16's range is fp32's).
  static constexpr bool kRangeScaled = kBf16 || !traits::has_dot8<Math>::value;
  static constexpr int kMaxRows = 8;  ///< rows of M per block; larger M runs in chunks along grid y
  using EntryRows = std::integer_sequence<int, 1, 2, 3, 4, 5, 6, 7, 8>;
  static constexpr int rows_per_block(int m) { return m < kMaxRows ? m : kMaxRows; }
  template <class Reduce>
  static constexpr bool reduce_policy_valid() {
    if constexpr (kBf16)
      return check_bf16_reduce_policy<Reduce>();
    else
      return check_reduce_policy<Reduce>();
  }

  /// Batches in flight ahead of the one being multiplied (DecodeTileShape's Ahead).
  static constexpr int kAhead = Tile::kPipeline - 1;
  /// From how many rows of M per block a whole batch inside one group runs a word loop of its own, without a guard
  /// per word: the tile's kWholeBatchMinRows if it states one, else the measured choice (H200, bench/NOTES.md): NVIDIA
  /// from 1 row (with the shift per batch, M = 1 6% faster: 51.8 -> 54.9% of the read reference), for bf16 too (its
  /// arithmetic is fp16's). AMD never: gfx906's budget for 3 waves per SIMD (84 VGPRs) has no room for a second copy
  /// of the loop (it measured 101).
#if defined(OPT4GPTQ_BACKEND_CUDA)
  static constexpr int kDefaultWholeBatchMinRows = 1;
#else
  static constexpr int kDefaultWholeBatchMinRows = kMaxRows + 1;
#endif
  static constexpr int kWholeBatchMinRows = detail::whole_batch_min_rows<Tile, kDefaultWholeBatchMinRows>::value;

  /// Rows of K whose activations are staged at once: as many whole stages as 16 KiB holds at this many rows of M, at
  /// most 8192 (so that LDS leaves room for 3-4 blocks per multiprocessor on gfx906).
  static constexpr int window_rows(int rows_of_m) {
    const int budget = 8192 / rows_of_m < 8192 ? 8192 / rows_of_m : 8192;
    const int rows = budget / Tile::kStageRows * Tile::kStageRows;
    return rows > Tile::kStageRows ? rows : Tile::kStageRows;
  }

  /// The range scaling's reduction, a base of SharedStorage so that it takes no byte without the scaling.
  template <int kRows, bool kWithScaling = kRangeScaled>
  struct RangeSlot {
    detail::RangeScaleStorage<kThreads, kRows> range;
  };
  template <int kRows>
  struct RangeSlot<kRows, false> {};

  template <int kRows>
  struct SharedStorage : RangeSlot<kRows> {
    static constexpr int kWindowRows = window_rows(kRows);
    detail::Words4 a[kRows][kWindowRows / 8];  ///< activations of the window, interleaved per 8 rows
    int word_group[kWindowRows / 8];           ///< act-order: group of each 8-row word of the window
  };

  static Status can_implement(const GemmProblem& p) { return detail::check_quad_column_layout<Load, Codec>(p); }

  template <int kRows, bool kActOrder, class Work, class Epilogue>
  OPT4GPTQ_DEVICE static void run(const KernelParams& p, const Work& work, SharedStorage<kRows>& smem,
                                  Epilogue&& epilogue) {
    using Storage = SharedStorage<kRows>;
    const ThreadPlace place = Tile::place(threadIdx.x);
    const int block_col = work.block_col();
    const int col = block_col + 4 * place.lane;
    const int m0 = work.m0();
    const int rows = min(kRows, p.m - m0);
    const detail::RowsInUse in_use = detail::rows_in_use<kActOrder>(p);
    const int k_begin = work.k_begin();
    const int k_end = min(in_use.k_rows, work.k_end());
    const bool has_cols = col < p.n;

    float acc[kRows][4];
    float unit[kRows];  // the range scaling's 2^s per row: acc holds sums in these units (1 without it)
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      unit[r] = 1.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[r][j] = 0.0f;
    }

    GroupConstants gc;
    gc.group = -1;
    gc.next_row = 0;
    // A ring of kAhead + 1 batches: ring[0] is the stage multiplied next, ring[1 .. kAhead] are in flight (the first
    // kAhead issued before the first window's staging and barriers). The ring moves down by one slot per stage; the
    // compiler renames rather than copies where it can (with kAhead = 1 this is the plain register double buffer).
    RingBatch ring[kAhead + 1];
#pragma unroll
    for (int d = 0; d < kAhead; ++d)
      issue_batch<kActOrder>(p, k_begin + d * Tile::kStageRows, k_end, place.split, col, has_cols, ring[d]);
    // Up to Tile::kStagingBatch staging loads in flight per thread.
    constexpr int kVectorsPerThread = (kRows * Storage::kWindowRows / 8 + kThreads - 1) / kThreads;
    constexpr int kStagingBatch = kVectorsPerThread < Tile::kStagingBatch ? kVectorsPerThread : Tile::kStagingBatch;
    for (int window = k_begin; window < k_end; window += Storage::kWindowRows) {
      const int window_end = min(k_end, window + Storage::kWindowRows);
      if (window != k_begin) __syncthreads();  // everyone is done with the previous window's activations
      detail::stage_activations<Load, Codec, kThreads, Storage::kWindowRows, Storage::kWindowRows, kRows, kActOrder,
                                kStagingBatch>(p, reinterpret_cast<half*>(&smem.a[0][0]), smem.word_group, window,
                                               window_end, m0, rows);
      __syncthreads();
      if constexpr (kRangeScaled)
        detail::range_scale_window<kThreads, kRows, Storage::kWindowRows / 8, 4, kBf16>(smem.a, smem.range, acc, unit);
      for (int stage = window; stage < window_end; stage += Tile::kStageRows) {
        // The weights and group constants kAhead stages on go in flight before this stage is used (across windows
        // too: before the next window's staging and barriers).
        issue_batch<kActOrder>(p, stage + kAhead * Tile::kStageRows, k_end, place.split, col, has_cols, ring[kAhead]);
        multiply<kRows, kActOrder>(p, smem, window, stage, k_end, place.split, has_cols, ring[0], col, gc, acc);
#pragma unroll
        for (int d = 0; d < kAhead; ++d) ring[d] = ring[d + 1];
      }
    }

    if constexpr (kRangeScaled) {
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[r][j] *= unit[r];
    }
    // prepare_act_order found a g_idx entry outside [0, num_groups), or the view is not the buffer's: NaN outputs.
    if (!in_use.data_valid) detail::fill_nan(acc);

    epilogue(acc, [&] {
      return detail::element_output<Element>(
          detail::thread_output(p, m0, rows, col, block_col, place.lane, place.split));
    });
  }

 private:
  /// Scales and zero-point terms of the current group for the thread's 4 columns.
  struct GroupConstants {
    int group;
    int next_row;  ///< first row past the current group (without act-order)
    float scale[4];
    typename Arithmetic::ZeroTerms zero[4];
  };

  /// Where a thread's words of one stage lie: rows `begin` .. `begin` + 8 x `words` (words = 0 past the end, past N or
  /// past K).
  struct BatchRows {
    int begin;
    int words;
    BatchRows() = default;
    OPT4GPTQ_DEVICE BatchRows(int stage, int k_end, int split, bool has_cols) : begin(stage + split * Tile::kChunkK) {
      const int end = min(k_end, begin + Tile::kChunkK);
      words = has_cols && begin < end ? eighth(end - begin) : 0;
    }
    /// n / 8 of an n >= 0, as one shift (a signed division by 8 takes three instructions).
    OPT4GPTQ_DEVICE static int eighth(int n) { return static_cast<int>(static_cast<unsigned>(n) / 8u); }
  };

  /// Whether a batch's rows travel with it through the ring (AMD) or are recomputed where the batch is used (NVIDIA).
  /// Measured by the compilers: hipcc allocates 7 more VGPRs when they are recomputed (gfx906 at M = 2: 89 instead of
  /// 82, one wave per SIMD less); ptxas allocates the same, and the recomputing form is the one the H200 measured.
#if defined(OPT4GPTQ_BACKEND_CUDA)
  static constexpr bool kRowsTravel = false;
#else
  static constexpr bool kRowsTravel = true;
#endif

  /// One stage's work of a thread, in flight: its words, and the raw constants of the group of its first word.
  struct Batch {
    detail::Words4 w[Tile::kUnroll];
    int group;  ///< group of the first word
    uint2 scales;
    std::uint32_t zeros;
  };
  /// A Batch with its rows, where they travel with it (kRowsTravel).
  struct BatchWithRows : Batch {
    BatchRows rows;
  };
  /// What the ring holds: NVIDIA's batch has no rows field (even an empty base changes what ptxas makes of the ring).
  using RingBatch = std::conditional_t<kRowsTravel, BatchWithRows, Batch>;

  OPT4GPTQ_DEVICE static void load_raw(const KernelParams& p, int group, int col, uint2& scales, std::uint32_t& zeros) {
    scales = *reinterpret_cast<const uint2*>(p.scales + static_cast<std::int64_t>(group) * p.lds + col);
    zeros = p.qzeros[static_cast<std::int64_t>(group) * p.ldz + col / Codec::kColumnsPerZeroWord];
  }

  /// Makes `group` current from its raw constants (loaded ahead, with the batch): the same arithmetic as
  /// MainloopSimt::load_group, which loads them where it uses them.
  OPT4GPTQ_DEVICE static void set_group(const KernelParams& p, int group, uint2 s, std::uint32_t z, int col,
                                        GroupConstants& gc) {
    gc.group = group;
    gc.next_row = (group + 1) * p.group_size;
    const half2 s01 = platform::bit_cast<half2>(s.x);
    const half2 s23 = platform::bit_cast<half2>(s.y);
    gc.scale[0] = __low2float(s01);
    gc.scale[1] = __high2float(s01);
    gc.scale[2] = __low2float(s23);
    gc.scale[3] = __high2float(s23);
    // col is a multiple of 4: its 4 zero points are nibbles 0..3 or 4..7 of one qzeros word (v1's offset first).
    const std::uint32_t zeros = (z + p.zero_word_offset) >> (Codec::kBits * (col % Codec::kColumnsPerZeroWord));
#pragma unroll
    for (int j = 0; j < 4; ++j) gc.zero[j] = Arithmetic::zero_terms(Codec::zero_of(zeros, j));
  }

  /// The group of row `row` (without act-order): a shift for the usual power-of-two group sizes, a division otherwise.
  OPT4GPTQ_DEVICE static int group_of_row(const KernelParams& p, int row) {
    const int g = p.group_size;
    return (g & (g - 1)) == 0 ? row >> (__ffs(g) - 1) : row / g;
  }

  /// The rows of batch `b`, of the stage starting at row `stage`: carried with it, or recomputed (kRowsTravel).
  OPT4GPTQ_DEVICE static BatchRows batch_rows(const RingBatch& b, int stage, int k_end, int split, bool has_cols) {
    if constexpr (kRowsTravel)
      return b.rows;
    else
      return BatchRows(stage, k_end, split, has_cols);
  }

  /// Issues the loads of the thread's words of the stage starting at row `stage`, and of its first group's constants.
  template <bool kActOrder>
  OPT4GPTQ_DEVICE static void issue_batch(const KernelParams& p, int stage, int k_end, int split, int col,
                                          bool has_cols, RingBatch& b) {
    const BatchRows rows(stage, k_end, split, has_cols);
    if constexpr (kRowsTravel) b.rows = rows;
    if (rows.words > 0) {
      const std::uint32_t* q = p.qweight + static_cast<std::int64_t>(BatchRows::eighth(rows.begin)) * p.ldq + col;
#pragma unroll
      for (int u = 0; u < Tile::kUnroll; ++u)
        if (u < rows.words) b.w[u] = *reinterpret_cast<const detail::Words4*>(q + u * p.ldq);
      // (The act-order index stays a division: as a shift it costs gfx906's act-order entry a VGPR, 82 instead of 81.)
      b.group = kActOrder ? p.word_group[rows.begin / 8] : group_of_row(p, rows.begin);
      load_raw(p, b.group, col, b.scales, b.zeros);
    }
  }

  /// Multiplies the thread's words of the stage starting at row `stage` (`b`) with the staged activations of the
  /// window starting at row `window`, into acc.
  template <int kRows, bool kActOrder>
  OPT4GPTQ_DEVICE static void multiply(const KernelParams& p, const SharedStorage<kRows>& s, int window, int stage,
                                       int k_end, int split, bool has_cols, const RingBatch& b, int col,
                                       GroupConstants& gc, float (&acc)[kRows][4]) {
    const BatchRows rows = batch_rows(b, stage, k_end, split, has_cols);
    if (rows.words <= 0) return;
    if (b.group != gc.group) set_group(p, b.group, b.scales, b.zeros, col, gc);
    const int word0 = BatchRows::eighth(rows.begin - window);  // the batch's first word in the window
    if (kRows >= kWholeBatchMinRows && !kActOrder && rows.words == Tile::kUnroll && p.group_size % Tile::kChunkK == 0) {
      // The common case, without a guard per word: a whole batch (kChunkK rows from a multiple of kChunkK) inside one
      // group, since groups then start at multiples of kChunkK too.
#pragma unroll
      for (int u = 0; u < Tile::kUnroll; ++u) multiply_word<kRows>(b.w[u], &s.a[0][word0 + u], gc, acc);
      return;
    }
#pragma unroll
    for (int u = 0; u < Tile::kUnroll; ++u) {
      if (u < rows.words) {
        // Groups below the batch's length (e.g. 8 or 16 rows) change inside it: their constants are loaded here.
        if constexpr (kActOrder) {
          const int group = s.word_group[word0 + u];
          if (group != gc.group) {
            uint2 sc;
            std::uint32_t z;
            load_raw(p, group, col, sc, z);
            set_group(p, group, sc, z, col, gc);
          }
        } else if (rows.begin + 8 * u >= gc.next_row) {
          uint2 sc;
          std::uint32_t z;
          load_raw(p, gc.group + 1, col, sc, z);
          set_group(p, gc.group + 1, sc, z, col, gc);
        }
        multiply_word<kRows>(b.w[u], &s.a[0][word0 + u], gc, acc);
      }
    }
  }

  template <int kRows>
  OPT4GPTQ_DEVICE static void multiply_word(const detail::Words4& q, const detail::Words4* a_word,
                                            const GroupConstants& gc, float (&acc)[kRows][4]) {
    constexpr int kWindowWords = SharedStorage<kRows>::kWindowRows / 8;
    const std::uint32_t words[4] = {q.x, q.y, q.z, q.w};
    typename Arithmetic::Values w[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) Arithmetic::dequant(words[j], gc.zero[j], w[j]);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const detail::Words4 av = a_word[r * kWindowWords];
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[r][j] = fmaf(Arithmetic::dot(av, w[j]), gc.scale[j], acc[r][j]);
    }
  }
};

/// @ingroup kernel
/// The decode mainloop of fp16 activations and outputs (MainloopDecodeOf<ElementFp16, ...>: a type of its own, so that the fp16 kernels'
/// names, and their generated code, are those they had before bf16 existed).
template <class Load, class Math, class Tile, class Codec_ = CodecInt4>
struct MainloopDecode : MainloopDecodeOf<ElementFp16, Load, Math, Tile, Codec_> {};

namespace detail {
/// The mainloop of an element type: MainloopDecode itself for fp16.
template <class Element, class Load, class Math, class Tile, class Codec>
struct decode_mainloop_of {
  using type = MainloopDecodeOf<Element, Load, Math, Tile, Codec>;
};
template <class Load, class Math, class Tile, class Codec>
struct decode_mainloop_of<ElementFp16, Load, Math, Tile, Codec> {
  using type = MainloopDecode<Load, Math, Tile, Codec>;
};
}  // namespace detail

OPT4GPTQ_NAMESPACE_END
