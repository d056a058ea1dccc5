#pragma once
/// @file
/// From one packed int32 of qweight (8 rows of one column) to the exact values q - z as four half2, and the 8-term
/// dot product with the matching activations. Not API; the MathPolicy supplies the arithmetic.
///
/// The magic-number trick (as in the exllama kernels): OR-ing a nibble into the mantissa of the fp16 constant 1024
/// (0x6400) gives the half 1024 + q exactly, so one AND-OR per pair of values turns packed nibbles into halves:
///   (word & 0x000F000F) | 0x64006400  ->  (1024 + q0, 1024 + q4)
///   (word & 0x00F000F0) | 0x64006400  ->  (1024 + 16·q1, 1024 + 16·q5)
/// and the same on word >> 8 for (q2, q6), (q3, q7). One `add2` with -(1024 + z), or one `fma2` with 1/16 and
/// -(64 + z), then yields q - z exactly (all intermediates are integers below 2048, exact in fp16).
/// The pairs come out as (q0,q4) (q1,q5) (q2,q6) (q3,q7); instead of shuffling the weights at load time (which vLLM
/// does), the kernel stores the activations in shared memory in the same interleaved order, so that checkpoints are
/// used exactly as saved.

#include "../platform.hpp"
#include "../policy/traits.hpp"

namespace opt4gptq::detail {

/// Position of row j (0..7) of an 8-row word in the interleaved activation order a0 a4 a1 a5 a2 a6 a3 a7.
OPT4GPTQ_HOST_DEVICE constexpr int interleaved_position(int j) { return 2 * (j & 3) + (j >> 2); }

/// Per group and column: the constants that turn magic-number halves into q - z.
struct ZeroTerms {
  half2 minus_1024_z;  ///< -(1024 + z) in both halves
  half2 minus_64_z;    ///< -(64 + z) in both halves
};

OPT4GPTQ_DEVICE ZeroTerms make_zero_terms(int zero) {
  const half2 a = __float2half2_rn(static_cast<float>(-1024 - zero));
  const half2 b = __float2half2_rn(static_cast<float>(-64 - zero));
  return ZeroTerms{a, b};
}

template <class Math>
OPT4GPTQ_DEVICE void dequant_word(std::uint32_t word, const ZeroTerms& zero, half2 (&out)[4]) {
  constexpr std::uint32_t kLow = 0x000F000Fu;
  constexpr std::uint32_t kHigh = 0x00F000F0u;
  constexpr std::uint32_t kMagic1024 = 0x64006400u;  // half2(1024, 1024)
  const half2 one_sixteenth = platform::bit_cast<half2>(0x2C002C00u);  // half2(1/16, 1/16)
  const std::uint32_t shifted = word >> 8;
  out[0] = Math::add2(platform::bit_cast<half2>((word & kLow) | kMagic1024), zero.minus_1024_z);
  out[1] = Math::fma2(platform::bit_cast<half2>((word & kHigh) | kMagic1024), one_sixteenth, zero.minus_64_z);
  out[2] = Math::add2(platform::bit_cast<half2>((shifted & kLow) | kMagic1024), zero.minus_1024_z);
  out[3] = Math::fma2(platform::bit_cast<half2>((shifted & kHigh) | kMagic1024), one_sixteenth, zero.minus_64_z);
}

/// Sum of the 8 products of interleaved activations `a` and dequantized values `w`: the policy's own `dot8` when it
/// has one, otherwise an fp16 `fma2` chain (the exllama kernel's precision) added up in fp32.
template <class Math>
OPT4GPTQ_DEVICE float dot8(const half2 (&a)[4], const half2 (&w)[4]) {
  if constexpr (traits::has_dot8<Math>::value) {
    return Math::dot8(a, w);
  } else {
    half2 p = Math::fma2(a[0], w[0], platform::bit_cast<half2>(0u));
    p = Math::fma2(a[1], w[1], p);
    p = Math::fma2(a[2], w[2], p);
    p = Math::fma2(a[3], w[3], p);
    return __low2float(p) + __high2float(p);
  }
}

}  // namespace opt4gptq::detail
