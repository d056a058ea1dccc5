#pragma once
/// @file
/// MainloopSimt: the mainloop of the paper's kernel, on CUDA cores / SIMD lanes. It hosts the paper's LoadPolicy
/// (how activations are read) and MathPolicy (which packed-fp16 instructions), walks a block's range of K in stages
/// of the TileShape, and leaves each thread with fp32 partial sums `float[kRows][4]` for its 4 columns, which the
/// kernel's ReducePolicy turns into C (kernel/gemm_kernel.hpp composes the three).
///
/// Per block (see tile.hpp for the layout):
///  1. stage: the block's activation rows for the next kStageRows rows of K go to shared memory (LoadPolicy; with
///     act-order, gathered through the prepared permutation), interleaved per 8 rows to match the codec's order
///     (codec/int4.hpp);
///  2. multiply: each thread streams its 4 columns × kChunkK rows of qweight with 16-byte loads, kUnroll words in
///     flight, dequantizes 8 rows per int32 (MathPolicy) and accumulates 8-term dot products × scale in fp32;
///     scales and zero points are re-read whenever the rows cross into a new group.
/// A mainloop provides (this one is the model; a new one goes in its own header):
/// @code
/// struct MyMainloop {
///   using TileShape = ...;  using Codec = ...;       // the tile the ReducePolicy sees; the bit width it reads
///   static constexpr int kThreads, kMaxRows;          // threads per block; rows of M per block, at most
///   using EntryRows = std::integer_sequence<int, ...>;  // the rows-per-block entry points that exist
///   static constexpr int rows_per_block(int m);       // the entry point a call of m >= 1 rows uses
///   template <class Reduce> static constexpr bool reduce_policy_valid();  // the ReducePolicy contract it serves
///   static constexpr bool kPoliciesValid;             // false after a policy's static_assert: body not instantiated
///   template <int kRows> struct SharedStorage;        // overlaid with the ReducePolicy's storage
///   static Status can_implement(const GemmProblem&);  // its alignments; the message names the argument
///   template <int kRows, bool kActOrder, class Work, class Epilogue>  // Work: the scheduler's answer (m0(), ...)
///   __device__ static void run(const KernelParams&, const Work&, SharedStorage<kRows>&, Epilogue&& epilogue);
///   // ends with epilogue(acc, where): its partial sums float[kRows][4] in place; where() returns their ThreadOutput
///   // Optional, for accumulators the ReducePolicy contract does not take (MainloopMma's fragments):
///   static constexpr bool kOwnsReduceStep = true;  // GemmKernel then calls reduce<Reduce, kRows>(storage, acc, out)
/// };
/// @endcode
/// @ingroup kernel

#include <type_traits>
#include <utility>

#include "../codec/int4.hpp"
#include "../detail/checks.hpp"
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
#include "thread_output.hpp"
#include "word_arithmetic.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup kernel
/// The SIMT mainloop of one LoadPolicy, MathPolicy, TileShape and codec.
template <class Element_, class Load, class Math, class Tile, class Codec_ = CodecInt4>
struct MainloopSimtOf {
  using Element = Element_;  ///< of A and C: ElementFp16 or ElementBf16 (detail::WordArithmetic)
  using LoadPolicy = Load;
  using MathPolicy = Math;
  using TileShape = Tile;
  using Codec = Codec_;
  using Arithmetic = detail::WordArithmetic<Element, Codec, Math>;
  static_assert(Codec::kRowsPerWord == 8,
                "MainloopSimt stages activations as 16-byte vectors of 8 rows, one per packed word: it needs a codec "
                "with 8 rows per word (CodecInt4)");
  static_assert(Tile::kPipeline <= 2,
                "MainloopSimt: TileShape's Pipeline must be 1 (load, then use) or 2 (double buffer); deeper rings are "
                "MainloopDecode's (DecodeTileShape's Ahead)");

  static constexpr bool kPoliciesValid = check_load_policy<Load>() && check_math_policy<Math>();
  static constexpr int kThreads = Tile::kThreads;
  static constexpr int kMaxRows = 8;  ///< rows of M per block; larger M runs in chunks along grid y
  /// The entry points that exist (rows of M per block), and the one a call of m rows uses: exact row counts up to 8
  /// (no wasted rows in the common decode sizes); larger M runs in chunks of 8, the last padded with zero rows that
  /// are computed but never written.
  using EntryRows = std::integer_sequence<int, 1, 2, 3, 4, 5, 6, 7, 8>;
  static constexpr int rows_per_block(int m) { return m < kMaxRows ? m : kMaxRows; }
  /// The ReducePolicy contract this mainloop's accumulators meet: per thread float[kRows][4] and a ThreadOutput.
  template <class Reduce>
  static constexpr bool reduce_policy_valid() {
    if constexpr (Element::kType == ElementType::kBf16)
      return check_bf16_reduce_policy<Reduce>();
    else
      return check_reduce_policy<Reduce>();
  }

  template <int kRows>
  struct SharedStorage {
    detail::Words4 a[kRows][Tile::kStageRows / 8];  ///< activations of the stage, interleaved per 8 rows
    int word_group[Tile::kStageRows / 8];           ///< act-order: group of each 8-row word of the stage
  };

  /// What this mainloop can run, beyond the problem's own rules (check_problem): the widths it loads with (A through
  /// the LoadPolicy, 16-byte qweight loads of 4 columns, 8-byte loads of 4 scales, half2 stores of C) and the bit
  /// width of its codec. The message names the argument.
  static Status can_implement(const GemmProblem& p) { return detail::check_quad_column_layout<Load, Codec>(p); }

  /// The block's work (the scheduler's Work: m0(), block_col(), k_begin(), k_end()): partial sums over rows
  /// [k_begin, k_end) of K for the thread's 4 columns and the chunk's kRows rows, handed in place to
  /// `epilogue(acc, where)` (the kernel's ReducePolicy step); `where()` returns the ThreadOutput saying where they
  /// belong, built when the epilogue asks (after its barrier, so nothing is kept live across it).
  template <int kRows, bool kActOrder, class Work, class Epilogue>
  OPT4GPTQ_DEVICE static void run(const KernelParams& p, const Work& work, SharedStorage<kRows>& smem,
                                  Epilogue&& epilogue) {
    const ThreadPlace place = Tile::place(threadIdx.x);
    const int block_col = work.block_col();
    const int col = block_col + 4 * place.lane;
    const int m0 = work.m0();
    const int rows = min(kRows, p.m - m0);

    const detail::RowsInUse in_use = detail::rows_in_use<kActOrder>(p);
    const int k_begin = work.k_begin();
    const int k_end = min(in_use.k_rows, work.k_end());
    // Act-order grids cover the padded maximum: blocks past the rows in use have nothing to add, but they still
    // reach the ReducePolicy with zero partials (a split-K policy counts every K block).

    float acc[kRows][4];
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[r][j] = 0.0f;

    GroupConstants gc;
    gc.group = -1;
    for (int stage = k_begin; stage < k_end; stage += Tile::kStageRows) {
      const int begin = stage + place.split * Tile::kChunkK;
      const int end = min(k_end, begin + Tile::kChunkK);
      const int words = col < p.n && begin < end ? (end - begin) / 8 : 0;
      const std::uint32_t* q = p.qweight + (begin / 8) * p.ldq + col;
      // Put the stage's first weights and its first group's constants in flight before the activations are staged:
      // they do not depend on them, and the staging (a global load, a shared store and a barrier) hides their latency.
      detail::Words4 batch[Tile::kUnroll];
      if (words > 0) {
        load_batch(q, p.ldq, 0, words, batch);
        const int group = group_of<kActOrder>(p, begin, 0);
        if (group != gc.group) load_group(p, group, col, gc);
      }
      if (stage != k_begin) __syncthreads();  // everyone is done with the previous stage's activations
      detail::stage_activations<Load, Codec, kThreads, Tile::kStageRows, Tile::kStageRows, kRows, kActOrder>(
          p, reinterpret_cast<half*>(&smem.a[0][0]), smem.word_group, stage, min(k_end, stage + Tile::kStageRows), m0,
          rows);
      __syncthreads();
      if (words > 0) multiply<kRows, kActOrder>(p, smem, stage, begin, words, q, col, batch, gc, acc);
    }

    // prepare_act_order found a g_idx entry outside [0, num_groups), or the view is not the buffer's: every output is
    // NaN rather than a plausible number.
    if (!in_use.data_valid) detail::fill_nan(acc);

    epilogue(acc, [&] {
      return detail::element_output<Element>(
          detail::thread_output(p, m0, rows, col, block_col, place.lane, place.split));
    });
  }

 private:
  /// Scale and zero-point constants of the current group for the thread's 4 columns.
  struct GroupConstants {
    int group;
    float scale[4];
    typename Arithmetic::ZeroTerms zero[4];
  };

  OPT4GPTQ_DEVICE static void load_group(const KernelParams& p, int group, int col, GroupConstants& gc) {
    gc.group = group;
    const uint2 s = *reinterpret_cast<const uint2*>(p.scales + group * p.lds + col);
    const half2 s01 = platform::bit_cast<half2>(s.x);
    const half2 s23 = platform::bit_cast<half2>(s.y);
    gc.scale[0] = __low2float(s01);
    gc.scale[1] = __high2float(s01);
    gc.scale[2] = __low2float(s23);
    gc.scale[3] = __high2float(s23);
    // col is a multiple of 4: its 4 zero points are nibbles 0..3 or 4..7 of one qzeros word. v1 adds 0x11111111 to
    // the whole word first, undoing the toolkits' borrowing subtraction (format::zero_word).
    // One variable shift brings the thread's 4 nibbles down; the 4 extractions then shift by constants.
    const std::uint32_t zeros = (p.qzeros[group * p.ldz + col / Codec::kColumnsPerZeroWord] + p.zero_word_offset) >>
                                (Codec::kBits * (col % Codec::kColumnsPerZeroWord));
#pragma unroll
    for (int j = 0; j < 4; ++j) gc.zero[j] = Arithmetic::zero_terms(Codec::zero_of(zeros, j));
  }

  template <int kRows>
  OPT4GPTQ_DEVICE static void multiply_word(const detail::Words4& q, const detail::Words4* a_word,
                                            const GroupConstants& gc, float (&acc)[kRows][4]) {
    // Dequantize the 4 columns once, then stream the rows' activations past them. (Dequantizing one column at a time
    // for M <= 2 was tried: ptxas allocates the same registers either way.)
    const std::uint32_t words[4] = {q.x, q.y, q.z, q.w};
    typename Arithmetic::Values w[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) Arithmetic::dequant(words[j], gc.zero[j], w[j]);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const detail::Words4 av = a_word[r * (Tile::kStageRows / 8)];
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[r][j] = fmaf(Arithmetic::dot(av, w[j]), gc.scale[j], acc[r][j]);
    }
  }

  /// The weights of words `first` .. `first + kUnroll - 1` for the thread's 4 columns (none past `words`). `q` points
  /// at word `first`: callers advance it, so that no 64-bit multiply is spent per load.
  OPT4GPTQ_DEVICE static void load_batch(const std::uint32_t* q, std::int64_t ldq, int first, int words,
                                         detail::Words4 (&batch)[Tile::kUnroll]) {
#pragma unroll
    for (int u = 0; u < Tile::kUnroll; ++u)
      if (first + u < words) batch[u] = *reinterpret_cast<const detail::Words4*>(q + u * ldq);
  }

  /// The group of word `w` of a split starting at row `begin` (act-order: from the prepared word_group; the staged
  /// copy once the stage is in shared memory).
  template <bool kActOrder>
  OPT4GPTQ_DEVICE static int group_of(const KernelParams& p, int begin, int w) {
    if constexpr (kActOrder)
      return p.word_group[begin / 8 + w];
    else
      return (begin + 8 * w) / p.group_size;
  }

  /// Words [0, words) of the split starting at row `begin` of the stage starting at `stage`, for the thread's 4
  /// columns. `batch` already holds the first kUnroll words (issued before the stage's activations were staged).
  /// With Tile::kPipeline == 2 the next batch is in flight while the current one is dequantized and multiplied (a
  /// register double buffer); with 1 each batch is loaded, then used, and more warps fit on a multiprocessor.
  template <int kRows, bool kActOrder>
  OPT4GPTQ_DEVICE static void multiply(const KernelParams& p, const SharedStorage<kRows>& s, int stage, int begin,
                                       int words, const std::uint32_t* q, int col,
                                       detail::Words4 (&batch)[Tile::kUnroll], GroupConstants& gc,
                                       float (&acc)[kRows][4]) {
    const detail::Words4* a_words = &s.a[0][(begin - stage) / 8];
    // Groups: without act-order they are runs of group_size rows (a word never straddles two: group_size % 8 == 0);
    // with it, the prepared word_group says (groups are padded to whole words).
    int next_group_row = (gc.group + 1) * p.group_size;
    const std::int64_t batch_stride = Tile::kUnroll * p.ldq;
    for (int w = 0; w < words; w += Tile::kUnroll) {
      detail::Words4 next[Tile::kUnroll];
      const bool more = w + Tile::kUnroll < words;
      if (Tile::kPipeline == 1 && w > 0) load_batch(q, p.ldq, w, words, batch);
      if (more) q += batch_stride;  // now at word w + kUnroll
      if (Tile::kPipeline == 2 && more) load_batch(q, p.ldq, w + Tile::kUnroll, words, next);
#pragma unroll
      for (int u = 0; u < Tile::kUnroll; ++u) {
        if (w + u < words) {
          if constexpr (kActOrder) {
            const int group = s.word_group[(begin - stage) / 8 + w + u];
            if (group != gc.group) load_group(p, group, col, gc);
          } else if (begin + 8 * (w + u) >= next_group_row) {
            load_group(p, gc.group + 1, col, gc);
            next_group_row += p.group_size;
          }
          multiply_word<kRows>(batch[u], a_words + w + u, gc, acc);
        }
      }
      if (Tile::kPipeline == 2 && more) {
#pragma unroll
        for (int u = 0; u < Tile::kUnroll; ++u) batch[u] = next[u];
      }
    }
  }
};

/// @ingroup kernel
/// The SIMT mainloop of fp16 activations and outputs (MainloopSimtOf<ElementFp16, ...>: a type of its own, so that the fp16 kernels'
/// names, and their generated code, are those they had before bf16 existed).
template <class Load, class Math, class Tile, class Codec_ = CodecInt4>
struct MainloopSimt : MainloopSimtOf<ElementFp16, Load, Math, Tile, Codec_> {};

namespace detail {
/// The mainloop of an element type: MainloopSimt itself for fp16.
template <class Element, class Load, class Math, class Tile, class Codec>
struct simt_mainloop_of {
  using type = MainloopSimtOf<Element, Load, Math, Tile, Codec>;
};
template <class Load, class Math, class Tile, class Codec>
struct simt_mainloop_of<ElementFp16, Load, Math, Tile, Codec> {
  using type = MainloopSimt<Load, Math, Tile, Codec>;
};
}  // namespace detail

OPT4GPTQ_NAMESPACE_END
