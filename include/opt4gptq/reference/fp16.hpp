#pragma once
/// @file
/// IEEE binary16 conversions on the host, as bit patterns (`std::uint16_t`), so that host tools need no GPU headers.
/// float -> half rounds to nearest, ties to even, like __float2half_rn; NaN stays NaN, overflow goes to infinity.

#include <cstdint>
#include <cstring>

#include "../version.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace reference {

inline float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu;
  std::uint32_t mantissa = h & 0x3FFu;
  std::uint32_t bits;
  if (exponent == 0x1Fu) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf / nan
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;  // zero
  } else {        // subnormal: normalize
    int e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while ((mantissa & 0x400u) == 0);
    bits = sign | (static_cast<std::uint32_t>(112 - e) << 23) | ((mantissa & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

inline std::uint16_t float_to_half_bits(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t abs = x & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u);   // NaN
  if (abs >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds to >= 65520: infinity
  if (abs >= 0x38800000u) {                                                   // normal half
    const std::uint32_t rounded = abs + 0x0FFFu + ((abs >> 13) & 1u);         // round to nearest even at bit 13
    return static_cast<std::uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
  }
  if (abs < 0x33000000u) return sign;  // below half the smallest subnormal: zero
  // Subnormal half: value = mantissa * 2^-24.
  const int exponent = static_cast<int>(abs >> 23);
  const std::uint32_t mantissa = (abs & 0x7FFFFFu) | 0x800000u;
  const int shift = 126 - exponent;  // 14..24
  const std::uint32_t kept = mantissa >> shift;
  const std::uint32_t rest = mantissa & ((1u << shift) - 1);
  const std::uint32_t half_way = 1u << (shift - 1);
  const std::uint32_t result = kept + ((rest > half_way || (rest == half_way && (kept & 1u))) ? 1u : 0u);
  return static_cast<std::uint16_t>(sign | result);
}

inline float round_to_half(float f) { return half_bits_to_float(float_to_half_bits(f)); }

}  // namespace reference
OPT4GPTQ_NAMESPACE_END
