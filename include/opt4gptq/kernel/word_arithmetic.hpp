#pragma once
/// @file
/// WordArithmetic: what the SIMT mainloops do with one packed word of one column, per element type of A and C: the
/// group's zero-point terms, the word's 8 values q - z, and their dot product with 8 staged activations (interleaved
/// in the codec's order), as an fp32 sum. One struct per element type, so that the mainloops are written once.
///  - fp16: the codec's fp16 magic numbers and the MathPolicy's dot8 (packed fp16, or fp32 with MathDot2F32), as
///    before bf16 existed (the fp16 kernels' generated code is unchanged).
///  - bf16: the codec's bf16 magic numbers widened to fp32 (CodecInt4::dequant_bf16) and fp32 products: a bf16 is the
///    upper half of an fp32, so each activation widens with one shift or mask; no packed bf16 arithmetic (bf16
///    partial sums would keep 8 bits), so the MathPolicy is not used.
/// Not API.
/// @ingroup kernel

#include <cstdint>

#include "../element.hpp"
#include "../platform.hpp"
#include "activation_staging.hpp"
#include "dot_product.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace detail {

template <class Element, class Codec, class Math>
struct WordArithmetic;

template <class Codec, class Math>
struct WordArithmetic<ElementFp16, Codec, Math> {
  using ZeroTerms = typename Codec::ZeroTerms;
  using Values = half2[4];  ///< q - z in the interleaved order (q0,q4) (q1,q5) (q2,q6) (q3,q7)

  OPT4GPTQ_DEVICE static ZeroTerms zero_terms(std::uint32_t z) { return Codec::zero_terms(z); }
  OPT4GPTQ_DEVICE static void dequant(std::uint32_t word, const ZeroTerms& zero, Values& w) {
    Codec::template dequant<Math>(word, zero, w);
  }
  /// The 8 products of the staged activations `av` (one 16-byte vector) with `w`, summed.
  OPT4GPTQ_DEVICE static float dot(const Words4& av, const Values& w) {
    const half2 a[4] = {platform::bit_cast<half2>(av.x), platform::bit_cast<half2>(av.y),
                        platform::bit_cast<half2>(av.z), platform::bit_cast<half2>(av.w)};
    return dot8<Math>(a, w);
  }
};

template <class Codec, class Math>
struct WordArithmetic<ElementBf16, Codec, Math> {
  using ZeroTerms = typename Codec::ZeroTermsBf16;
  using Values = float[8];  ///< q - z in the interleaved order q0 q4 q1 q5 q2 q6 q3 q7

  OPT4GPTQ_DEVICE static ZeroTerms zero_terms(std::uint32_t z) { return Codec::zero_terms_bf16(z); }
  OPT4GPTQ_DEVICE static void dequant(std::uint32_t word, const ZeroTerms& zero, Values& w) {
    Codec::dequant_bf16(word, zero, w);
  }
  OPT4GPTQ_DEVICE static float dot(const Words4& av, const Values& w) {
    const std::uint32_t pairs[4] = {av.x, av.y, av.z, av.w};
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      sum = fmaf(platform::bit_cast<float>(pairs[i] << 16), w[2 * i], sum);
      sum = fmaf(platform::bit_cast<float>(pairs[i] & 0xFFFF0000u), w[2 * i + 1], sum);
    }
    return sum;
  }
};

}  // namespace detail
OPT4GPTQ_NAMESPACE_END
