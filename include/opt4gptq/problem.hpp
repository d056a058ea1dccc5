#pragma once
/// @file
/// The description of one dequant-GEMM call: `C[m, n] = A[m, k] · dequant(W)[k, n]`, W given as GPTQ checkpoint tensors.

#include <cstdint>

#include "detail/checks.hpp"
#include "format.hpp"
#include "status.hpp"
#include "version.hpp"

// The fp16 type of cuda_fp16.h and hip_fp16.h (a struct in both). The problem only points to fp16 data, so it needs
// no GPU header: a plain C++ translation unit (an engine's loader built with g++) can fill and check a GemmProblem.
struct __half;

OPT4GPTQ_NAMESPACE_BEGIN

using half = ::__half;  ///< the same alias as platform.hpp's

/// The header that prepare_act_order() writes at offset 0 of its buffer, in int32 words: what the layout was prepared
/// for and what the sort found. The GEMM compares it with the view it was given (a view of another layer's buffer, or
/// one built with another num_groups, makes every output NaN instead of reading through a wrong permutation), and
/// check_act_order() reports the reason on the host.
/// @ingroup host_api
struct ActOrderInfo {
  enum : int { kRowsUsed = 0, kInvalid = 1, kK = 2, kN = 3, kGroups = 4, kRowsMax = 5, kWords = 8 };
};

/// Weights of an act-order (desc_act) layer after `prepare_act_order()`: rows sorted by group, so each group is one
/// contiguous run of K again, plus the permutation that gathers the matching activation columns at run time.
/// The arrays live in one device buffer owned by the caller (see `act_order_buffer_bytes()`); this struct only points
/// into it and is cheap to copy. Fill a GemmProblem's `act_order` with its address; leave `qweight` null.
/// @ingroup host_api
struct PreparedActOrder {
  const std::int32_t* qweight = nullptr;     ///< [k_rows_max / 8, n]: rows sorted by group, groups padded to 8 rows
  const std::int32_t* perm = nullptr;        ///< [k_rows_max]: source row of A for each sorted row, -1 for padding
  const std::int32_t* word_group = nullptr;  ///< [k_rows_max / 8]: group of each sorted 8-row word
  const std::int32_t* info = nullptr;        ///< [ActOrderInfo::kWords] device: the buffer's header (ActOrderInfo)
  int k = 0;                                 ///< rows of the original layer (or row shard)
  int n = 0;                                 ///< columns
  int num_groups = 0;                        ///< rows of scales and qzeros that g_idx may refer to
  int k_rows_max = 0;                        ///< allocated sorted rows: rows_max(k, num_groups)

  /// Sorted rows allocated for k rows in `num_groups` groups: each group present is padded by at most 7 rows.
  static constexpr std::int64_t rows_max(int k, int num_groups) {
    const std::int64_t groups_present = num_groups < k ? num_groups : k;
    return (static_cast<std::int64_t>(k) + 7 * groups_present + 7) / 8 * 8;
  }
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
  const std::int32_t* qzeros = nullptr;  ///< [num_groups, n / 8] packed zero points, row stride `ldz` words
  std::int64_t ldz = 0;
  const half* scales = nullptr;  ///< [num_groups, n] scales, row stride `lds`
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

/// The rules of the format and of the problem itself, whatever kernel runs it: sizes, group size, zero-point format,
/// the act-order layout's consistency, null pointers, strides, and that C aliases no input. Plain C++ (no GPU
/// header), so an engine's loader can check a layer without a GPU compiler; validate<Gemm>() adds the kernel's own
/// limits (Gemm::can_implement). The message names the first argument at fault.
/// @ingroup host_api
inline Status check_problem(const GemmProblem& p) {
  using detail::invalid;
  using detail::null;
  if (p.m < 0) return invalid("problem.m: must be >= 0 (rows of A and C; 0 is a no-op)");
  if (p.n < 8 || p.n % format::kPackFactor != 0)
    return invalid("problem.n: must be a positive multiple of 8 (qzeros packs 8 columns per int32)");
  if (p.k < 8 || p.k % format::kPackFactor != 0)
    return invalid("problem.k: must be a positive multiple of 8 (qweight packs 8 rows per int32)");
  if (p.group_size != -1 && (p.group_size < 8 || p.group_size % 8 != 0))
    return Status::error(StatusCode::kUnsupported,
                         "problem.group_size: unsupported; use -1 (one group) or a positive multiple of 8 "
                         "(32, 64, 128, ...)");
  if (p.zero_format != ZeroPointFormat::kGptqV1 && p.zero_format != ZeroPointFormat::kGptqV2)
    return invalid("problem.zero_format: must be ZeroPointFormat::kGptqV1 (\"gptq\") or kGptqV2 (\"gptq_v2\")");
  if (p.num_groups < 0) return invalid("problem.num_groups: must be >= 0 (0 = ceil(k / group_size))");

  if (p.act_order == nullptr) {
    if (p.group_size > 0 && p.k % p.group_size != 0)
      return invalid(
          "problem.k: must be a multiple of problem.group_size (without act-order, group g is rows "
          "g*group_size .. (g+1)*group_size-1); a layer with g_idx must go through prepare_act_order()");
    if (p.num_groups != 0 && p.num_groups != format::num_groups(p.k, p.group_size))
      return invalid("problem.num_groups: must be k / group_size (or 0) without act-order");
    if (p.qweight == nullptr) return null("problem.qweight: null");
  } else {
    const PreparedActOrder& ao = *p.act_order;
    if (ao.qweight == nullptr || ao.perm == nullptr || ao.word_group == nullptr || ao.info == nullptr)
      return null("problem.act_order: incomplete; fill it with prepare_act_order()");
    if (p.qweight != nullptr && p.qweight != ao.qweight)
      return invalid(
          "problem.qweight: must be null when problem.act_order is set (the kernel reads the prepared "
          "copy)");
    if (ao.k != p.k) return invalid("problem.act_order: prepared for a different k");
    if (ao.num_groups < 1 || ao.k_rows_max != PreparedActOrder::rows_max(ao.k, ao.num_groups))
      return invalid(
          "problem.act_order: inconsistent (num_groups < 1, or k_rows_max is not rows_max(k, num_groups)); "
          "fill it with prepare_act_order() or act_order_view()");
    if (ao.n != p.n) return invalid("problem.act_order: prepared for a different n");
    if (p.num_groups != 0 && p.num_groups != ao.num_groups)
      return invalid("problem.num_groups: differs from the num_groups the act-order layout was prepared with");
    if (p.ldq != 0 && p.ldq != p.n)
      return invalid("problem.ldq: must be 0 (or n) with act-order: the prepared copy is dense");
  }
  if (p.m > 0 && p.a == nullptr) return null("problem.a: null");
  if (p.qzeros == nullptr) return null("problem.qzeros: null");
  if (p.scales == nullptr) return null("problem.scales: null");
  if (p.m > 0 && p.c == nullptr) return null("problem.c: null");

  if (p.lda_or_dense() < p.k) return invalid("problem.lda: must be >= k (or 0 for dense rows)");
  if (p.ldq_or_dense() < p.n) return invalid("problem.ldq: must be >= n (or 0 for dense rows)");
  if (p.ldz_or_dense() < p.n / 8) return invalid("problem.ldz: must be >= n / 8 (or 0 for dense rows)");
  if (p.lds_or_dense() < p.n) return invalid("problem.lds: must be >= n (or 0 for dense rows)");
  if (p.ldc_or_dense() < p.n) return invalid("problem.ldc: must be >= n (or 0 for dense rows)");

  if (p.m > 0) {
    // C is written (and, for accumulating policies, zero-filled first): it must not share a byte with an input.
    const detail::ByteRange c = detail::matrix_bytes(p.c, p.m, p.n, p.ldc_or_dense(), 2);
    const int groups = p.groups();
    if (c.overlaps(detail::matrix_bytes(p.a, p.m, p.k, p.lda_or_dense(), 2)))
      return invalid("problem.c: overlaps problem.a (the output must not alias an input)");
    if (c.overlaps(p.act_order ? detail::matrix_bytes(p.act_order->qweight, p.act_order->k_rows_max / 8, p.n, p.n, 4)
                               : detail::matrix_bytes(p.qweight, p.k / 8, p.n, p.ldq_or_dense(), 4)))
      return invalid("problem.c: overlaps problem.qweight (the output must not alias an input)");
    if (c.overlaps(detail::matrix_bytes(p.scales, groups, p.n, p.lds_or_dense(), 2)))
      return invalid("problem.c: overlaps problem.scales (the output must not alias an input)");
    if (c.overlaps(detail::matrix_bytes(p.qzeros, groups, p.n / 8, p.ldz_or_dense(), 4)))
      return invalid("problem.c: overlaps problem.qzeros (the output must not alias an input)");
  }
  return Status::success();
}

OPT4GPTQ_NAMESPACE_END
