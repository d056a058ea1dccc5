// bf16 on the host: the codec's magic-number model (every nibble, every position, every zero point, and random
// words against format::unpack), and the reference conversions that the GPU tests and the reference use.

#include <opt4gptq/codec/int4.hpp>
#include <opt4gptq/format.hpp>
#include <opt4gptq/reference/bf16.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

#include <catch2/catch.hpp>

using namespace opt4gptq;
namespace ref = opt4gptq::reference;

namespace {
/// A bf16 decoded from its fields (sign, 8-bit exponent, 7-bit mantissa), independently of the shift the codec uses.
double decode_bf16(std::uint16_t b) {
  const int exponent = (b >> 7) & 0xFF;
  const int mantissa = b & 0x7F;
  const double sign = (b & 0x8000) ? -1.0 : 1.0;
  REQUIRE(exponent != 0);
  REQUIRE(exponent != 0xFF);
  return sign * std::ldexp(1.0 + mantissa / 128.0, exponent - 127);
}
}  // namespace

TEST_CASE("bf16 magic number: 0x4300 | q is 128 + q for every nibble, in both halves of every pair", "[host][bf16]") {
  CHECK(decode_bf16(0x4300) == 128.0);
  for (std::uint32_t q = 0; q < 16; ++q) {
    for (int index = 0; index < 8; ++index) {
      const std::uint32_t word = CodecInt4::place_value(q, index) | CodecInt4::place_value(15 - q, (index + 3) % 8);
      // Value `index` is in pair index % 4, half index / 4 (the interleaved order (q0,q4) (q1,q5) (q2,q6) (q3,q7)).
      const std::uint32_t pair = CodecInt4::magic_pair_bf16(word, index % 4);
      const std::uint16_t bits = static_cast<std::uint16_t>(index < 4 ? pair & 0xFFFFu : pair >> 16);
      CHECK(decode_bf16(bits) == 128.0 + q);
      CHECK(static_cast<double>(CodecInt4::widen_bf16(pair, index >= 4)) == 128.0 + q);
    }
  }
  // The fp16 codec's shortcut (the high nibble of a byte read in place, as 16·q) does not fit: bit 7 of a bf16 is the
  // exponent's lowest bit, so 0x4300 | (q << 4) is not 128 + 16·q for q = 9..15 (q = 8 lands on 256 by chance).
  // Hence the shifts.
  for (std::uint32_t q = 9; q < 16; ++q)
    CHECK(decode_bf16(static_cast<std::uint16_t>(0x4300u | (q << 4))) != 128.0 + 16 * q);
}

TEST_CASE("bf16 dequantization gives q - z exactly, in the order the activations are staged", "[host][bf16]") {
  std::mt19937 rng(13);
  std::uniform_int_distribution<std::uint32_t> any;
  for (int trial = 0; trial < 20000; ++trial) {
    const std::uint32_t word = trial < 16 ? 0x11111111u * static_cast<std::uint32_t>(trial) : any(rng);
    const std::uint32_t z = trial % 16;
    float out[8];
    CodecInt4::dequant_bf16(word, CodecInt4::zero_terms_bf16(z), out);
    for (int index = 0; index < 8; ++index) {
      const int position = CodecInt4::interleaved_position(index);
      CHECK(out[position] == static_cast<float>(static_cast<int>(format::unpack(word, index)) - static_cast<int>(z)));
    }
  }
}

TEST_CASE("bf16 reference conversions: exact widening, round to nearest even, NaN and overflow", "[host][bf16]") {
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const std::uint16_t bits = static_cast<std::uint16_t>(b);
    const float f = ref::bf16_bits_to_float(bits);
    if (std::isnan(f))
      CHECK(std::isnan(ref::bf16_bits_to_float(ref::float_to_bf16_bits(f))));
    else
      CHECK(ref::float_to_bf16_bits(f) == bits);  // every bf16 survives bf16 -> float -> bf16
  }
  CHECK(ref::round_to_bf16(1.0f + 1.0f / 256) == 1.0f);               // a tie: to the even mantissa (1.0)
  CHECK(ref::round_to_bf16(1.0f + 3.0f / 256) == 1.0f + 4.0f / 256);  // a tie: to the even mantissa (1 + 2/128)
  CHECK(ref::round_to_bf16(1.0f + 1.0f / 256 + 1.0f / 4096) == 1.0f + 1.0f / 128);  // above the tie: up
  CHECK(std::isinf(ref::round_to_bf16(std::numeric_limits<float>::max())));
  CHECK(ref::round_to_bf16(3.0e38f) == ref::bf16_bits_to_float(0x7F62));
}
