#pragma once
// A second mainloop, written only against the mainloop slot's contract (kernel/mainloop_simt.hpp's file comment),
// in a file of its own: each thread reads its weights, scales and zero points one by one with plain loads and
// accumulates in fp32, with no shared memory and no policy. Composed with the library's GemmKernel, ReducePolicy and
// scheduler (tests/test_kernels.def), it runs the whole GPU matrix through the unchanged host API: the proof that a
// mainloop can be added without touching MainloopSimt, and a second, independent device implementation.

#include <opt4gptq/opt4gptq.hpp>

#include <utility>

namespace test {

template <class Tile, class Codec_ = opt4gptq::CodecInt4>
struct MainloopScalar {
  using TileShape = Tile;
  using Codec = Codec_;
  static constexpr int kThreads = Tile::kThreads;
  static constexpr int kMaxRows = 8;
  using EntryRows = std::integer_sequence<int, 1, 2, 3, 4, 5, 6, 7, 8>;
  static constexpr int rows_per_block(int m) { return m < kMaxRows ? m : kMaxRows; }
  template <class Reduce>
  static constexpr bool reduce_policy_valid() {
    return opt4gptq::check_reduce_policy<Reduce>();
  }
  static constexpr bool kPoliciesValid = true;

  template <int kRows>
  struct SharedStorage {
    int unused;  // nothing is staged
  };

  /// Scalar loads need only natural alignment; the ReducePolicies write C in pairs.
  static opt4gptq::Status can_implement(const opt4gptq::GemmProblem& p) {
    if (p.weights->bits != Codec::kBits)
      return opt4gptq::Status::error(opt4gptq::StatusCode::kUnsupported, "weights.bits: not this codec's width");
    if (reinterpret_cast<std::uintptr_t>(p.c) % 4 != 0 || p.ldc_or_dense() % 2 != 0)
      return opt4gptq::Status::error(
          opt4gptq::StatusCode::kMisalignedPointer,
          "problem.c: must be 4-byte aligned, with an even ldc (outputs are written in pairs)");
    return opt4gptq::Status::success();
  }

  template <int kRows, bool kActOrder, class Work, class Epilogue>
  OPT4GPTQ_DEVICE static void run(const opt4gptq::KernelParams& p, const Work& work, SharedStorage<kRows>&,
                                  Epilogue&& epilogue) {
    using opt4gptq::ActOrderInfo;
    const opt4gptq::ThreadPlace place = Tile::place(threadIdx.x);
    const int col = work.block_col() + 4 * place.lane;
    const int m0 = work.m0();
    const int rows = min(kRows, p.m - m0);
    int k_rows = p.k_rows;
    bool valid = true;
    if constexpr (kActOrder) {  // the prepared buffer's header must describe the view (as in MainloopSimt)
      const int* info = p.act_order_info;
      valid = info[ActOrderInfo::kK] == p.act_order_k && info[ActOrderInfo::kN] == p.n &&
              info[ActOrderInfo::kGroups] == p.act_order_groups && info[ActOrderInfo::kRowsMax] == p.k_rows &&
              info[ActOrderInfo::kInvalid] == 0;
      k_rows = valid ? min(k_rows, info[ActOrderInfo::kRowsUsed]) : 0;
    }
    const int k_end = min(k_rows, work.k_end());

    float acc[kRows][4] = {};
    // The block's K sub-slices take every kSplitK-th row: any split works, the ReducePolicy sums them.
    for (int row = work.k_begin() + place.split; col < p.n && row < k_end; row += Tile::kSplitK) {
      const int src = kActOrder ? p.perm[row] : row;  // act-order: the activation column of this sorted row
      if (src < 0) continue;                          // padding of a group to whole words
      const int group = kActOrder ? p.word_group[row / Codec::kRowsPerWord] : row / p.group_size;
      float w[4];
      for (int j = 0; j < 4; ++j) {
        const int n = col + j;
        const std::uint32_t word = p.qweight[(row / Codec::kRowsPerWord) * p.ldq + n];
        const std::uint32_t zeros = p.qzeros[group * p.ldz + n / Codec::kColumnsPerZeroWord] + p.zero_word_offset;
        const float q = static_cast<float>(Codec::value_of(word, row % Codec::kRowsPerWord));
        const float z = static_cast<float>(Codec::zero_of(zeros, n % Codec::kColumnsPerZeroWord));
        w[j] = __half2float(p.scales[group * p.lds + n]) * (q - z);
      }
      for (int r = 0; r < rows; ++r) {
        const float a = __half2float(p.a[(m0 + r) * p.lda + src]);
        for (int j = 0; j < 4; ++j) acc[r][j] = fmaf(a, w[j], acc[r][j]);
      }
    }
    if (!valid)
      for (int r = 0; r < kRows; ++r)
        for (int j = 0; j < 4; ++j) acc[r][j] = __int_as_float(0x7fc00000);

    epilogue(acc, [&] {
      opt4gptq::ThreadOutput out;
      out.c = p.c + m0 * p.ldc;
      out.ldc = p.ldc;
      out.rows = rows;
      out.n = p.n;
      out.col = col;
      out.block_col = work.block_col();
      out.lane = place.lane;
      out.split = place.split;
      out.thread = static_cast<int>(threadIdx.x);
      return out;
    });
  }
};

/// The second mainloop composed with the library's own slots: the split-K tile's scheduler and the in-block reduction.
using ScalarMainloopGemm = opt4gptq::GemmKernel<MainloopScalar<opt4gptq::SplitKTile>, opt4gptq::ReduceSharedBuffered,
                                                opt4gptq::SplitKScheduler<opt4gptq::SplitKTile>>;

}  // namespace test
