#pragma once
/// @file
/// What a mainloop that reads 4 columns per 16-byte qweight load needs of a problem, beyond check_problem(): the
/// activations' alignment for its LoadPolicy, 16-byte rows of qweight, 8-byte groups of 4 scales, and C written in
/// pairs. Both shipped mainloops (SIMT and MMA) read the weights this way.
/// @ingroup kernel

#include "../detail/checks.hpp"
#include "../problem.hpp"
#include "../status.hpp"
#include "../weights.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace detail {

/// The message names the argument.
template <class Load, class Codec>
Status check_quad_column_layout(const GemmProblem& p) {
  const QuantizedWeights& w = *p.weights;
  if (w.bits != Codec::kBits)
    return Status::error(StatusCode::kUnsupported, "weights.bits: this kernel's codec reads another bit width");
  constexpr int kVectorHalves = Load::kVectorHalves;
  if (!aligned_to(p.a, 2 * kVectorHalves))
    return misaligned(
        "problem.a: not aligned for the LoadPolicy: the address must be a multiple of "
        "2 * LoadPolicy::kVectorHalves bytes");
  if (p.lda_or_dense() % kVectorHalves != 0)
    return misaligned("problem.lda: must be a multiple of LoadPolicy::kVectorHalves (each row is read in vectors)");
  if (!aligned_to(w.packed(), 16))
    return misaligned("weights.qweight: must be 16-byte aligned (one load reads 4 columns of a packed row)");
  if (w.ldq_or_dense() % 4 != 0) return misaligned("weights.ldq: must be a multiple of 4 (16-byte rows of 4 words)");
  if (!aligned_to(w.scales, 8)) return misaligned("weights.scales: must be 8-byte aligned (4 scales are read at once)");
  if (w.lds_or_dense() % 4 != 0) return misaligned("weights.lds: must be a multiple of 4");
  if (!aligned_to(w.qzeros, 4)) return misaligned("weights.qzeros: must be 4-byte aligned");
  if (!aligned_to(p.c, 4)) return misaligned("problem.c: must be 4-byte aligned (outputs are written in pairs)");
  if (p.ldc_or_dense() % 2 != 0) return misaligned("problem.ldc: must be even (outputs are written in pairs)");
  return Status::success();
}

}  // namespace detail
OPT4GPTQ_NAMESPACE_END
