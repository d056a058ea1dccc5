#pragma once
/// @file
/// bfloat16 conversions on the host, as bit patterns (`std::uint16_t`), so that host tools need no GPU headers. A
/// bf16 is the upper half of an fp32: widening is exact; narrowing rounds to nearest, ties to even (as
/// __float2bfloat16_rn and cvt.rn.bf16.f32 do); NaN stays NaN, and values past the largest bf16 go to infinity.

#include <cstdint>
#include <cstring>

#include "../version.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace reference {

inline float bf16_bits_to_float(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

inline std::uint16_t float_to_bf16_bits(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);  // NaN stays NaN
  x += 0x7FFFu + ((x >> 16) & 1u);  // round to nearest even at bit 16 (a carry into the exponent is right)
  return static_cast<std::uint16_t>(x >> 16);
}

inline float round_to_bf16(float f) { return bf16_bits_to_float(float_to_bf16_bits(f)); }

}  // namespace reference
OPT4GPTQ_NAMESPACE_END
