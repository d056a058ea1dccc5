#pragma once
/// @file
/// dequantize(): a layer's dense fp16 or bf16 weights `W[k][n]`, rows in the original order (act-order layers un-permuted),
/// on the caller's stream. The first step of the prefill path (host/dequant_cublas.hpp), and a tool for engines that
/// want the dense weights for a GEMM of their own.
/// @ingroup host_api

#include <cstdint>

#include "../codec/int4.hpp"
#include "../detail/checks.hpp"
#include "../element.hpp"
#include "../kernel/dequantize.hpp"
#include "../kernel/params.hpp"
#include "../platform.hpp"
#include "../status.hpp"
#include "../weights.hpp"
#include "device_info.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

namespace detail {

/// The checks of dequantize() once its arguments are known to be non-null and the layer valid: the widths the kernel
/// loads and stores with. The messages name the argument.
inline Status check_dequantize_layout(const QuantizedWeights& w, const void* out, std::int64_t ldw) {
  if (!aligned_to(w.packed(), 16))
    return misaligned("weights.qweight: must be 16-byte aligned (one load reads 4 columns of a packed row)");
  if (w.ldq_or_dense() % 4 != 0) return misaligned("weights.ldq: must be a multiple of 4 (16-byte rows of 4 words)");
  if (!aligned_to(w.scales, 8)) return misaligned("weights.scales: must be 8-byte aligned (4 scales are read at once)");
  if (w.lds_or_dense() % 4 != 0) return misaligned("weights.lds: must be a multiple of 4");
  if (!aligned_to(w.qzeros, 4)) return misaligned("weights.qzeros: must be 4-byte aligned");
  if (!aligned_to(out, 8)) return misaligned("out: must be 8-byte aligned (4 columns are written at once)");
  if (ldw % 4 != 0) return misaligned("ldw: must be a multiple of 4 (4 columns are written at once)");
  const ByteRange written = matrix_bytes(out, w.k, w.n, ldw, 2);
  const int groups = w.groups();
  if (written.overlaps(matrix_bytes(w.packed(), w.packed_rows() / 8, w.n, w.ldq_or_dense(), 4)))
    return invalid("out: overlaps weights.qweight (the output must not alias an input)");
  if (written.overlaps(matrix_bytes(w.scales, groups, w.n, w.lds_or_dense(), 2)))
    return invalid("out: overlaps weights.scales (the output must not alias an input)");
  if (written.overlaps(matrix_bytes(w.qzeros, groups, w.n / 8, w.ldz_or_dense(), 4)))
    return invalid("out: overlaps weights.qzeros (the output must not alias an input)");
  return Status::success();
}

}  // namespace detail

/// Writes `W[r][c] = T(scale[g][c] · (q[r][c] - z[g][c]))` for every row r < k and column c < n of the layer into
/// `out` (device memory of element type `dtype` = T, fp16 or bf16; row stride `ldw` elements, 0 = n), rows in the
/// original order: with act-order, row r of W is the checkpoint's row r (the prepared layout's permutation undone).
/// q - z is exact; the product is rounded once to T (fp16: one fp16 multiply; bf16: the exact fp32 product rounded to
/// nearest even), as the matrix-core mainloop of that type rounds its weights. An act-order layout whose g_idx was
/// invalid (or a view of another layout) gives a W of NaN. Asynchronous on `stream`; the layer's views (row and column
/// shards through the strides) are read as the GEMM reads them.
/// @ingroup host_api
inline Status dequantize(const QuantizedWeights& weights, void* out, std::int64_t ldw, ElementType dtype,
                         platform::stream_t stream) {
  Status s = check_weights(weights);
  if (!s.ok()) return s;
  if (dtype != ElementType::kFp16 && dtype != ElementType::kBf16)
    return detail::invalid("dtype: not an ElementType (ElementType::kFp16 or ElementType::kBf16)");
  if (out == nullptr) return detail::null("out: null");
  if (ldw == 0) ldw = weights.n;
  if (ldw < weights.n) return detail::invalid("ldw: must be >= n (or 0 for dense rows)");
  s = detail::check_dequantize_layout(weights, out, ldw);
  if (!s.ok()) return s;

  KernelParams p{};
  p.qweight = reinterpret_cast<const std::uint32_t*>(weights.packed());
  p.ldq = weights.ldq_or_dense();
  p.qzeros = reinterpret_cast<const std::uint32_t*>(weights.qzeros);
  p.ldz = weights.ldz_or_dense();
  p.scales = weights.scales;
  p.lds = weights.lds_or_dense();
  p.c = static_cast<half*>(out);  // 16-bit elements of `dtype` (the kernel writes them as bits)
  p.ldc = ldw;
  p.n = weights.n;
  p.k_rows = weights.packed_rows();
  p.group_size = weights.group_size > 0 ? weights.group_size : p.k_rows;
  p.zero_word_offset = format::zero_word_offset(weights.zero_format);
  if (weights.act_order) {
    p.perm = weights.act_order->perm;
    p.word_group = weights.act_order->word_group;
    p.act_order_info = weights.act_order->info;
    p.act_order_k = weights.k;
    p.act_order_groups = weights.act_order->num_groups;
  }
  const int quads = weights.n / 4;
  const int words = p.k_rows / 8;
  const dim3 grid((quads + kDequantizeThreads - 1) / kDequantizeThreads,
                  words < detail::kMaxGridYZ ? words : detail::kMaxGridYZ);
  const bool bf16 = dtype == ElementType::kBf16;
  if (weights.act_order && bf16)
    dequantize_kernel<CodecInt4, true, ElementBf16><<<grid, kDequantizeThreads, 0, stream>>>(p);
  else if (weights.act_order)
    dequantize_kernel<CodecInt4, true, ElementFp16><<<grid, kDequantizeThreads, 0, stream>>>(p);
  else if (bf16)
    dequantize_kernel<CodecInt4, false, ElementBf16><<<grid, kDequantizeThreads, 0, stream>>>(p);
  else
    dequantize_kernel<CodecInt4, false, ElementFp16><<<grid, kDequantizeThreads, 0, stream>>>(p);
  const platform::native_error_t e = platform::last_error();
  if (e != platform::kNativeSuccess) return detail::launch_failed(e);
  return Status::success();
}

/// dequantize() into fp16 (`out` of `half`).
/// @ingroup host_api
inline Status dequantize(const QuantizedWeights& weights, half* out, std::int64_t ldw, platform::stream_t stream) {
  return dequantize(weights, out, ldw, ElementType::kFp16, stream);
}

OPT4GPTQ_NAMESPACE_END
