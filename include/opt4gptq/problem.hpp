#pragma once
/// @file
/// One dequant-GEMM call: `C[m, n] = A[m, k] · dequant(W)[k, n]`. The call holds what changes per call (M, A, C)
/// and refers to the layer's QuantizedWeights (weights.hpp), which are fixed at load time.

#include <cstdint>

#include "detail/checks.hpp"
#include "element.hpp"
#include "status.hpp"
#include "version.hpp"
#include "weights.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// One call. Pointers are device pointers; strides are in elements and 0 means "dense" (the row length). Nothing here
/// is owned: the struct is cheap to build per call.
/// A and C hold 16-bit elements of the type `dtype` names (fp16 unless set): an fp16 call assigns `half` pointers as
/// before, a bf16 call its bf16 tensors' pointers (`__nv_bfloat16*`, `hip_bfloat16*`, a framework's data pointer)
/// and sets `dtype = ElementType::kBf16`. The kernel must be built for the same type (validate() says so).
/// @ingroup host_api
struct GemmProblem {
  int m = 0;  ///< rows of A and C: tokens in flight (0 is a no-op)

  const void* a = nullptr;  ///< activations [m, weights->k] of `dtype`, row stride `lda`
  std::int64_t lda = 0;
  void* c = nullptr;  ///< output [m, weights->n] of `dtype`, row stride `ldc`; overwritten (never read)
  std::int64_t ldc = 0;
  ElementType dtype = ElementType::kFp16;  ///< the type of A's and C's elements (the scales stay fp16)

  const QuantizedWeights* weights = nullptr;  ///< the layer (load-time data); must outlive the call's launch

  // Resolved values (the defaults above applied); only meaningful once `weights` is set.
  constexpr std::int64_t lda_or_dense() const { return lda ? lda : weights->k; }
  constexpr std::int64_t ldc_or_dense() const { return ldc ? ldc : weights->n; }
};

namespace detail {
/// `p` advanced by `elements` 16-bit elements (fp16 or bf16 alike), for row offsets into A and C.
inline const void* element_offset(const void* p, std::int64_t elements) {
  return static_cast<const char*>(p) + 2 * elements;
}
inline void* element_offset(void* p, std::int64_t elements) { return static_cast<char*>(p) + 2 * elements; }
}  // namespace detail

/// The rules of the call itself, whatever kernel runs it: the layer's rules (check_weights()), M, null pointers,
/// strides, and that C aliases no input. Plain C++ (no GPU header), so an engine can check a call without a GPU
/// compiler; validate<Gemm>() adds the kernel's own limits (Gemm::can_implement). The message names the first
/// argument at fault.
/// @ingroup host_api
inline Status check_problem(const GemmProblem& p) {
  using detail::invalid;
  using detail::null;
  if (p.weights == nullptr) return null("problem.weights: null (point it at the layer's QuantizedWeights)");
  const Status s = check_weights(*p.weights);
  if (!s.ok()) return s;
  const QuantizedWeights& w = *p.weights;
  if (p.m < 0) return invalid("problem.m: must be >= 0 (rows of A and C; 0 is a no-op)");
  if (p.dtype != ElementType::kFp16 && p.dtype != ElementType::kBf16)
    return invalid("problem.dtype: not an ElementType (ElementType::kFp16 or ElementType::kBf16)");
  if (p.m > 0 && p.a == nullptr) return null("problem.a: null");
  if (p.m > 0 && p.c == nullptr) return null("problem.c: null");
  if (p.lda_or_dense() < w.k) return invalid("problem.lda: must be >= k (or 0 for dense rows)");
  if (p.ldc_or_dense() < w.n) return invalid("problem.ldc: must be >= n (or 0 for dense rows)");

  if (p.m > 0) {
    // C is written (and, for accumulating policies, zero-filled first): it must not share a byte with an input.
    const detail::ByteRange c = detail::matrix_bytes(p.c, p.m, w.n, p.ldc_or_dense(), 2);
    const int groups = w.groups();
    if (c.overlaps(detail::matrix_bytes(p.a, p.m, w.k, p.lda_or_dense(), 2)))
      return invalid("problem.c: overlaps problem.a (the output must not alias an input)");
    if (c.overlaps(w.act_order ? detail::matrix_bytes(w.act_order->qweight, w.act_order->k_rows_max / 8, w.n, w.n, 4)
                               : detail::matrix_bytes(w.qweight, w.k / 8, w.n, w.ldq_or_dense(), 4)))
      return invalid("problem.c: overlaps weights.qweight (the output must not alias an input)");
    if (c.overlaps(detail::matrix_bytes(w.scales, groups, w.n, w.lds_or_dense(), 2)))
      return invalid("problem.c: overlaps weights.scales (the output must not alias an input)");
    if (c.overlaps(detail::matrix_bytes(w.qzeros, groups, w.n / 8, w.ldz_or_dense(), 4)))
      return invalid("problem.c: overlaps weights.qzeros (the output must not alias an input)");
  }
  return Status::success();
}

OPT4GPTQ_NAMESPACE_END
