#pragma once
/// @file
/// DequantGemm: the one 4-bit dequant-GEMM kernel, composed of a LoadPolicy, a ReducePolicy, a MathPolicy and a
/// TileShape. This header holds the device side only; host/launch.hpp validates problems and launches it.
///
/// Per block (see tile.hpp for the layout):
///  1. stage: the block's activation rows for the next kStageRows rows of K go to shared memory (LoadPolicy; with
///     act-order, gathered through the prepared permutation), interleaved per 8 rows to match the codec's order
///     (codec/int4.hpp);
///  2. multiply: each thread streams its 4 columns × kChunkK rows of qweight with 16-byte loads, kUnroll words in
///     flight, dequantizes 8 rows per int32 (MathPolicy) and accumulates 8-term dot products × scale in fp32;
///     scales and zero points are re-read whenever the rows cross into a new group;
///  3. reduce: the ReducePolicy turns the threads' partial sums into C.
/// No thread leaves early once a block has started work: ReducePolicies may synchronize the block.

#include <type_traits>

#include "../codec/int4.hpp"
#include "../detail/checks.hpp"
#include "../platform.hpp"
#include "../policy/traits.hpp"
#include "../problem.hpp"
#include "../status.hpp"
#include "../tile.hpp"
#include "dot_product.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// Everything the device needs, resolved on the host (strides applied, defaults filled in). Passed by value.
struct KernelParams {
  const half* a;
  std::int64_t lda;
  const std::uint32_t* qweight;
  std::int64_t ldq;
  const std::uint32_t* qzeros;
  std::int64_t ldz;
  const half* scales;
  std::int64_t lds;
  half* c;
  std::int64_t ldc;
  int m;
  int n;
  int k_rows;      ///< rows of qweight covered by the grid: k, or the prepared act-order layout's k_rows_max
  int group_size;  ///< rows per group (a group size of -1 arrives as a value >= k_rows: one group)
  std::uint32_t zero_word_offset;  ///< added to every qzeros word: format::zero_word_offset (v1 0x11111111, v2 0)
  int rows_per_block;              ///< rows of K per block along grid z, a multiple of the tile's kStageRows
  int whole_k;                     ///< 1 when the grid has one block along K
  const int* perm;                 ///< act-order: source row of A for each sorted row (-1: padding)
  const int* word_group;           ///< act-order: group of each sorted 8-row word
  const int* act_order_info;       ///< act-order: the prepared buffer's header (ActOrderInfo)
  int act_order_k;                 ///< act-order: rows of the layer (A's columns) the view says it was prepared for
  int act_order_groups;            ///< act-order: num_groups the view says it was prepared for
  void* workspace;                 ///< the ReducePolicy's workspace, when it needs one
};

namespace detail {
/// 16 bytes: 8 halves of activations, or 4 columns' words of qweight. A plain aggregate so that it can live in a
/// union in shared memory (HIP's uint4 has constructors); alignas(16) lets the compilers use 128-bit accesses.
struct alignas(16) Words4 {
  std::uint32_t x, y, z, w;
};

/// The tile a DequantGemm gets when none is named: the exllama tile for per-thread atomics (the paper's baseline
/// structure), the split-K tile for everything else. Specialize it for your own ReducePolicy to change its default.
template <class Reduce>
struct default_tile {
  using type = SplitKTile;
};
template <>
struct default_tile<ReduceGlobalAtomic> {
  using type = ExllamaTile;
};

/// The ReducePolicy's shared storage, or nothing when the policies failed their checks (so that a broken policy
/// yields its static_assert message and no follow-up errors).
template <class Reduce, class Tile, int kRows, bool kValid>
struct reduce_storage {
  using type = typename Reduce::template SharedStorage<Tile, kRows>;
};
template <class Reduce, class Tile, int kRows>
struct reduce_storage<Reduce, Tile, kRows, false> {
  struct type {};
};
}  // namespace detail

/// @ingroup kernel
/// The kernel composed of one policy of each family. `kPoliciesValid` is false (after readable static_assert messages)
/// when a policy breaks its contract; the body is then not instantiated, so no other errors follow.
template <class Load, class Reduce, class Math, class Tile = typename detail::default_tile<Reduce>::type,
          class Codec_ = CodecInt4>
struct DequantGemm {
  using LoadPolicy = Load;
  using ReducePolicy = Reduce;
  using MathPolicy = Math;
  using TileShape = Tile;
  using Codec = Codec_;
  static_assert(Codec::kRowsPerWord == 8,
                "DequantGemm (the SIMT mainloop) stages activations as 16-byte vectors of 8 rows, one per packed word: "
                "it needs a codec with 8 rows per word (CodecInt4)");

  static constexpr bool kPoliciesValid =
      check_load_policy<Load>() && check_reduce_policy<Reduce>() && check_math_policy<Math>();
  static constexpr int kThreads = Tile::kThreads;
  static constexpr int kMaxRows = 8;  ///< rows of M per block; larger M runs in chunks along grid y

  template <int kRows>
  struct Staging {
    detail::Words4 a[kRows][Tile::kStageRows / 8];  ///< activations of the stage, interleaved per 8 rows
    int word_group[Tile::kStageRows / 8];           ///< act-order: group of each 8-row word of the stage
  };
  /// The ReducePolicy's storage overlays the staging buffer: the reduction starts after the last stage.
  template <int kRows>
  union SharedStorage {
    Staging<kRows> staging;
    typename detail::reduce_storage<Reduce, Tile, kRows, kPoliciesValid>::type reduce;
  };

  /// Static shared memory is limited to 48 KiB per block on NVIDIA (AMD allows 64 KiB); say so before ptxas does.
  static constexpr std::size_t kSharedBytes = sizeof(SharedStorage<kMaxRows>);
  static_assert(!kPoliciesValid || kSharedBytes <= 48 * 1024,
                "DequantGemm: the tile needs more than 48 KiB of shared memory at 8 rows of M (staging: 16 bytes per "
                "8 rows of K per row of M; the ReducePolicy's storage on top): use a smaller kChunkK or fewer threads");

  /// What this kernel can run, beyond the problem's own rules (check_problem): the widths it loads with (A through
  /// the LoadPolicy, 16-byte qweight loads of 4 columns, 8-byte loads of 4 scales, half2 stores of C) and the grid's
  /// limit on M chunks. The message names the argument. validate<DequantGemm>() calls it after check_problem().
  static Status can_implement(const GemmProblem& p) {
    using detail::invalid;
    using detail::misaligned;
    static_assert(detail::kMaxGridYZ * kMaxRows == 524280, "the message below names the row limit");
    if (p.m > detail::kMaxGridYZ * kMaxRows)
      return invalid("problem.m: too large for one launch (more than 524280 rows)");
    constexpr int kVectorHalves = Load::kVectorHalves;
    if (!detail::aligned_to(p.a, 2 * kVectorHalves))
      return misaligned(
          "problem.a: not aligned for the LoadPolicy: the address must be a multiple of "
          "2 * LoadPolicy::kVectorHalves bytes");
    if (p.lda_or_dense() % kVectorHalves != 0)
      return misaligned("problem.lda: must be a multiple of LoadPolicy::kVectorHalves (each row is read in vectors)");
    const void* weights = p.act_order ? static_cast<const void*>(p.act_order->qweight) : p.qweight;
    if (!detail::aligned_to(weights, 16))
      return misaligned("problem.qweight: must be 16-byte aligned (one load reads 4 columns of a packed row)");
    if (p.ldq_or_dense() % 4 != 0) return misaligned("problem.ldq: must be a multiple of 4 (16-byte rows of 4 words)");
    if (!detail::aligned_to(p.scales, 8))
      return misaligned("problem.scales: must be 8-byte aligned (4 scales are read at once)");
    if (p.lds_or_dense() % 4 != 0) return misaligned("problem.lds: must be a multiple of 4");
    if (!detail::aligned_to(p.qzeros, 4)) return misaligned("problem.qzeros: must be 4-byte aligned");
    if (!detail::aligned_to(p.c, 4))
      return misaligned("problem.c: must be 4-byte aligned (outputs are written in pairs)");
    if (p.ldc_or_dense() % 2 != 0) return misaligned("problem.ldc: must be even (outputs are written in pairs)");
    return Status::success();
  }

  template <int kRows, bool kActOrder>
  OPT4GPTQ_DEVICE static void run(const KernelParams& p, SharedStorage<kRows>& smem) {
    if constexpr (kPoliciesValid) run_valid<kRows, kActOrder>(p, smem);
  }

 private:
  /// Scale and zero-point constants of the current group for the thread's 4 columns.
  struct GroupConstants {
    int group;
    float scale[4];
    typename Codec::ZeroTerms zero[4];
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
    for (int j = 0; j < 4; ++j) gc.zero[j] = Codec::zero_terms(Codec::zero_of(zeros, j));
  }

  template <int kRows>
  OPT4GPTQ_DEVICE static void multiply_word(const detail::Words4& q, const detail::Words4* a_word,
                                            const GroupConstants& gc, float (&acc)[kRows][4]) {
    // Dequantize the 4 columns once, then stream the rows' activations past them. (Dequantizing one column at a time
    // for M <= 2 was tried: ptxas allocates the same registers either way.)
    const std::uint32_t words[4] = {q.x, q.y, q.z, q.w};
    half2 w[4][4];
#pragma unroll
    for (int j = 0; j < 4; ++j) Codec::template dequant<Math>(words[j], gc.zero[j], w[j]);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const detail::Words4 av = a_word[r * (Tile::kStageRows / 8)];
      const half2 a[4] = {platform::bit_cast<half2>(av.x), platform::bit_cast<half2>(av.y),
                          platform::bit_cast<half2>(av.z), platform::bit_cast<half2>(av.w)};
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[r][j] = fmaf(detail::dot8<Math>(a, w[j]), gc.scale[j], acc[r][j]);
    }
  }

  /// Copies rows [stage, stage_end) of the block's activation rows into shared memory, interleaved per 8 rows.
  /// Rows of the M chunk past `rows` (only in the last chunk when M > 8) and rows past stage_end are zero.
  template <int kRows, bool kActOrder>
  OPT4GPTQ_DEVICE static void stage_activations(const KernelParams& p, Staging<kRows>& s, int stage, int stage_end,
                                                int m0, int rows) {
    half* dst = reinterpret_cast<half*>(&s.a[0][0]);
    const int len = stage_end - stage;
    const half zero = platform::bit_cast<half>(static_cast<unsigned short>(0));
    if constexpr (!kActOrder) {
      constexpr int kVector = Load::kVectorHalves;
      constexpr int kVectorsPerRow = Tile::kStageRows / kVector;
      for (int i = threadIdx.x; i < kRows * kVectorsPerRow; i += kThreads) {
        const int r = i / kVectorsPerRow;
        const int kk = (i % kVectorsPerRow) * kVector;
        half v[kVector];
        if (r < rows && kk < len) {
          Load::load(p.a + (m0 + r) * p.lda + stage + kk, v);
        } else {
#pragma unroll
          for (int e = 0; e < kVector; ++e) v[e] = zero;
        }
        half* row = dst + r * Tile::kStageRows;
        if constexpr (kVector == 8) {
          // One 16-byte store: (v0,v4) (v1,v5) (v2,v6) (v3,v7).
          *reinterpret_cast<detail::Words4*>(row + kk) =
              detail::Words4{platform::bit_cast<std::uint32_t>(__halves2half2(v[0], v[4])),
                             platform::bit_cast<std::uint32_t>(__halves2half2(v[1], v[5])),
                             platform::bit_cast<std::uint32_t>(__halves2half2(v[2], v[6])),
                             platform::bit_cast<std::uint32_t>(__halves2half2(v[3], v[7]))};
        } else {
#pragma unroll
          for (int e = 0; e < kVector; ++e) {
            const int j = kk + e;
            row[(j & ~7) + Codec::interleaved_position(j & 7)] = v[e];
          }
        }
      }
    } else {
      // Act-order: gather column perm[k] of A for sorted row k (a gather cannot be vectorized).
      for (int kk = threadIdx.x; kk < Tile::kStageRows; kk += kThreads) {
        const int src = kk < len ? p.perm[stage + kk] : -1;
        const int pos = (kk & ~7) + Codec::interleaved_position(kk & 7);
#pragma unroll
        for (int r = 0; r < kRows; ++r)
          dst[r * Tile::kStageRows + pos] =
              (r < rows && src >= 0 && src < p.act_order_k) ? p.a[(m0 + r) * p.lda + src] : zero;
      }
      for (int w = threadIdx.x; w < Tile::kStageRows / 8; w += kThreads)
        s.word_group[w] = 8 * w < len ? p.word_group[stage / 8 + w] : 0;
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
  OPT4GPTQ_DEVICE static void multiply(const KernelParams& p, const Staging<kRows>& s, int stage, int begin, int words,
                                       const std::uint32_t* q, int col, detail::Words4 (&batch)[Tile::kUnroll],
                                       GroupConstants& gc, float (&acc)[kRows][4]) {
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

  template <int kRows, bool kActOrder>
  OPT4GPTQ_DEVICE static void run_valid(const KernelParams& p, SharedStorage<kRows>& smem) {
    const ThreadPlace place = Tile::place(threadIdx.x);
    const int block_col = blockIdx.x * Tile::kBlockCols;
    const int col = block_col + 4 * place.lane;
    const int m0 = blockIdx.y * kRows;
    const int rows = min(kRows, p.m - m0);

    int k_rows = p.k_rows;
    bool data_valid = true;
    if constexpr (kActOrder) {
      // The buffer's header says what it was prepared for: a view that disagrees (another layer's buffer, another
      // num_groups) would gather A through a wrong permutation, so it reads nothing and produces NaN instead.
      const int* info = p.act_order_info;
      const bool same_layout = info[ActOrderInfo::kK] == p.act_order_k && info[ActOrderInfo::kN] == p.n &&
                               info[ActOrderInfo::kGroups] == p.act_order_groups &&
                               info[ActOrderInfo::kRowsMax] == p.k_rows;
      k_rows = same_layout ? min(k_rows, info[ActOrderInfo::kRowsUsed]) : 0;
      data_valid = same_layout && info[ActOrderInfo::kInvalid] == 0;
    }
    const int k_begin = blockIdx.z * p.rows_per_block;
    const int k_end = min(k_rows, k_begin + p.rows_per_block);
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
      stage_activations<kRows, kActOrder>(p, smem.staging, stage, min(k_end, stage + Tile::kStageRows), m0, rows);
      __syncthreads();
      if (words > 0) multiply<kRows, kActOrder>(p, smem.staging, stage, begin, words, q, col, batch, gc, acc);
    }

    if (!data_valid) {
      // prepare_act_order found a g_idx entry outside [0, num_groups), or the view is not the buffer's: make every
      // output NaN rather than a plausible number (check_act_order() reports the reason on the host).
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[r][j] = __int_as_float(0x7fc00000);
    }

    using ReduceStorage = typename detail::reduce_storage<Reduce, Tile, kRows, true>::type;
    if constexpr (!std::is_empty_v<ReduceStorage>) __syncthreads();  // the reduce storage overlays the staging
    ThreadOutput out;
    out.c = p.c + m0 * p.ldc;
    out.ldc = p.ldc;
    out.rows = rows;
    out.n = p.n;
    out.col = col;
    out.block_col = block_col;
    out.lane = place.lane;
    out.split = place.split;
    out.thread = static_cast<int>(threadIdx.x);
    out.whole_k = p.whole_k != 0;
    out.tile = static_cast<int>(blockIdx.y * gridDim.x + blockIdx.x);
    out.tiles = static_cast<int>(gridDim.x * gridDim.y);
    out.k_block = static_cast<int>(blockIdx.z);
    out.k_blocks = static_cast<int>(gridDim.z);
    out.workspace = p.workspace;
    Reduce::template reduce<Tile, kRows>(smem.reduce, acc, out);
  }
};

/// The `__global__` entry point: one per (kernel, rows of M per block, act-order).
template <class Gemm, int kRows, bool kActOrder>
__global__ static void __launch_bounds__(Gemm::kThreads) dequant_gemm_kernel(const KernelParams params) {
  __shared__ typename Gemm::template SharedStorage<kRows> smem;
  Gemm::template run<kRows, kActOrder>(params, smem);
}

OPT4GPTQ_NAMESPACE_END
