#pragma once
/// @file
/// The description of one dequant-GEMM call: `C[m, n] = A[m, k] · dequant(W)[k, n]`, W given as GPTQ checkpoint tensors.

#include <cstdint>

#include "format.hpp"
#include "platform.hpp"

namespace opt4gptq {

/// Weights of an act-order (desc_act) layer after `prepare_act_order()`: rows sorted by group, so each group is one
/// contiguous run of K again, plus the permutation that gathers the matching activation columns at run time.
/// The arrays live in one device buffer owned by the caller (see `act_order_buffer_bytes()`); this struct only points
/// into it and is cheap to copy. Fill a GemmProblem's `act_order` with its address; leave `qweight` null.
/// @ingroup host_api
struct PreparedActOrder {
  const std::int32_t* qweight = nullptr;     ///< [k_rows_max / 8, n]: rows sorted by group, groups padded to 8 rows
  const std::int32_t* perm = nullptr;        ///< [k_rows_max]: source row of A for each sorted row, -1 for padding
  const std::int32_t* word_group = nullptr;  ///< [k_rows_max / 8]: group of each sorted 8-row word
  const std::int32_t* info = nullptr;        ///< [2] device: rows in use, and 0 / 1 = g_idx valid / out of range
  int k = 0;           ///< rows of the original layer (or row shard)
  int n = 0;           ///< columns
  int num_groups = 0;  ///< rows of scales and qzeros that g_idx may refer to
  int k_rows_max = 0;  ///< allocated sorted rows: k plus at most 7 padding rows per group
};

/// One call. Pointers are device pointers; strides are in elements of the tensor's own type and 0 means "dense"
/// (the row length). Nothing here is owned: the struct is cheap to build per call.
/// @ingroup host_api
struct GemmProblem {
  int m = 0;  ///< rows of A and C: tokens in flight (>= 1)
  int n = 0;  ///< output features: columns of W and C (multiple of 8)
  int k = 0;  ///< input features: columns of A, rows of W (multiple of 8)

  const half* a = nullptr;  ///< activations [m, k], row stride `lda`
  std::int64_t lda = 0;

  const std::int32_t* qweight = nullptr;  ///< [k / 8, n] packed weights, row stride `ldq` int32 words
  std::int64_t ldq = 0;
  const std::int32_t* qzeros = nullptr;   ///< [num_groups, n / 8] packed zero points, row stride `ldz` words
  std::int64_t ldz = 0;
  const half* scales = nullptr;           ///< [num_groups, n] scales, row stride `lds`
  std::int64_t lds = 0;

  int group_size = 128;  ///< rows per group: -1 (one group) or a positive multiple of 8; 32, 64, 128 are usual
  int num_groups = 0;    ///< rows of scales/qzeros; 0 means ceil(k / group_size). With act-order: as g_idx refers
  ZeroPointFormat zero_format = ZeroPointFormat::kGptqV1;  ///< "gptq" (v1) or "gptq_v2": take it from the checkpoint

  const PreparedActOrder* act_order = nullptr;  ///< act-order layers: the prepared weights (then `qweight` is null)

  half* c = nullptr;  ///< output [m, n], row stride `ldc`; overwritten (never read)
  std::int64_t ldc = 0;

  // Resolved values (the defaults above applied).
  constexpr std::int64_t lda_or_dense() const { return lda ? lda : k; }
  constexpr std::int64_t ldq_or_dense() const { return ldq ? ldq : n; }
  constexpr std::int64_t ldz_or_dense() const { return ldz ? ldz : n / format::kPackFactor; }
  constexpr std::int64_t lds_or_dense() const { return lds ? lds : n; }
  constexpr std::int64_t ldc_or_dense() const { return ldc ? ldc : n; }
  constexpr int groups() const { return num_groups ? num_groups : format::num_groups(k, group_size); }
};

}  // namespace opt4gptq
