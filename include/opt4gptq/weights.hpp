#pragma once
/// @file
/// One quantized layer as an engine holds it from load time on: the checkpoint tensors (or their prepared act-order
/// copy), the group size, the zero-point format, the bit width and the shape. Built and checked once per layer;
/// every call (GemmProblem, problem.hpp) refers to it. Plain C++ (no GPU header): a loader built with g++ can fill
/// and check it.

#include <cstdint>

#include "detail/checks.hpp"
#include "format.hpp"
#include "status.hpp"
#include "version.hpp"

// The fp16 type of cuda_fp16.h and hip_fp16.h (a struct in both). The weights only point to fp16 data, so they need
// no GPU header.
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
/// into it and is cheap to copy. Point a QuantizedWeights' `act_order` at it and leave its `qweight` null.
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

/// One quantized layer: `W[k, n] = scales[g][n] * (q[k][n] - z[g][n])`, stored as GPTQ saves it (format.hpp).
/// Pointers are device pointers; strides are in elements of the tensor's own type and 0 means "dense" (the row
/// length). Nothing is owned: the struct points into the engine's tensors and is cheap to copy.
/// @ingroup host_api
struct QuantizedWeights {
  int k = 0;     ///< input features: rows of W, columns of A (multiple of 8)
  int n = 0;     ///< output features: columns of W and C (multiple of 8)
  int bits = 4;  ///< bits per weight; a kernel's codec says which widths it reads (4: codec/int4.hpp)

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

  // Resolved values (the defaults above applied).
  constexpr std::int64_t ldq_or_dense() const { return ldq ? ldq : n; }
  constexpr std::int64_t ldz_or_dense() const { return ldz ? ldz : n / format::kPackFactor; }
  constexpr std::int64_t lds_or_dense() const { return lds ? lds : n; }
  constexpr int groups() const { return num_groups ? num_groups : format::num_groups(k, group_size); }
  /// The packed weights the kernels read: the prepared act-order copy, or the checkpoint's qweight.
  constexpr const std::int32_t* packed() const { return act_order ? act_order->qweight : qweight; }
  /// Rows of packed weights the kernels cover: k, or the prepared act-order layout's padded k_rows_max.
  constexpr int packed_rows() const { return act_order ? act_order->k_rows_max : k; }
};

/// The rules of the format for one layer, whatever kernel runs it: shape, bit width, group size, zero-point format,
/// the act-order layout's consistency, null pointers and strides. Plain C++, so an engine's loader can check a layer
/// once at load time; check_problem() repeats it per call (it is a few comparisons). The message names the first
/// argument at fault.
/// @ingroup host_api
inline Status check_weights(const QuantizedWeights& w) {
  using detail::invalid;
  using detail::null;
  if (w.bits != format::kBits)
    return Status::error(StatusCode::kUnsupported,
                         "weights.bits: unsupported; 4 is the only width with a codec (codec/int4.hpp)");
  if (w.n < 8 || w.n % format::kPackFactor != 0)
    return invalid("weights.n: must be a positive multiple of 8 (qzeros packs 8 columns per int32)");
  if (w.k < 8 || w.k % format::kPackFactor != 0)
    return invalid("weights.k: must be a positive multiple of 8 (qweight packs 8 rows per int32)");
  if (w.group_size != -1 && (w.group_size < 8 || w.group_size % 8 != 0))
    return Status::error(StatusCode::kUnsupported,
                         "weights.group_size: unsupported; use -1 (one group) or a positive multiple of 8 "
                         "(32, 64, 128, ...)");
  if (w.zero_format != ZeroPointFormat::kGptqV1 && w.zero_format != ZeroPointFormat::kGptqV2)
    return invalid("weights.zero_format: must be ZeroPointFormat::kGptqV1 (\"gptq\") or kGptqV2 (\"gptq_v2\")");
  if (w.num_groups < 0) return invalid("weights.num_groups: must be >= 0 (0 = ceil(k / group_size))");

  if (w.act_order == nullptr) {
    if (w.group_size > 0 && w.k % w.group_size != 0)
      return invalid(
          "weights.k: must be a multiple of weights.group_size (without act-order, group g is rows "
          "g*group_size .. (g+1)*group_size-1); a layer with g_idx must go through prepare_act_order()");
    if (w.num_groups != 0 && w.num_groups != format::num_groups(w.k, w.group_size))
      return invalid("weights.num_groups: must be k / group_size (or 0) without act-order");
    if (w.qweight == nullptr) return null("weights.qweight: null");
  } else {
    const PreparedActOrder& ao = *w.act_order;
    if (ao.qweight == nullptr || ao.perm == nullptr || ao.word_group == nullptr || ao.info == nullptr)
      return null("weights.act_order: incomplete; fill it with prepare_act_order()");
    if (w.qweight != nullptr && w.qweight != ao.qweight)
      return invalid(
          "weights.qweight: must be null when weights.act_order is set (the kernel reads the prepared "
          "copy)");
    if (ao.k != w.k) return invalid("weights.act_order: prepared for a different k");
    if (ao.num_groups < 1 || ao.k_rows_max != PreparedActOrder::rows_max(ao.k, ao.num_groups))
      return invalid(
          "weights.act_order: inconsistent (num_groups < 1, or k_rows_max is not rows_max(k, num_groups)); "
          "fill it with prepare_act_order() or act_order_view()");
    if (ao.n != w.n) return invalid("weights.act_order: prepared for a different n");
    if (w.num_groups != 0 && w.num_groups != ao.num_groups)
      return invalid("weights.num_groups: differs from the num_groups the act-order layout was prepared with");
    if (w.ldq != 0 && w.ldq != w.n)
      return invalid("weights.ldq: must be 0 (or n) with act-order: the prepared copy is dense");
  }
  if (w.qzeros == nullptr) return null("weights.qzeros: null");
  if (w.scales == nullptr) return null("weights.scales: null");

  if (w.ldq_or_dense() < w.n) return invalid("weights.ldq: must be >= n (or 0 for dense rows)");
  if (w.ldz_or_dense() < w.n / 8) return invalid("weights.ldz: must be >= n / 8 (or 0 for dense rows)");
  if (w.lds_or_dense() < w.n) return invalid("weights.lds: must be >= n (or 0 for dense rows)");
  return Status::success();
}

OPT4GPTQ_NAMESPACE_END
