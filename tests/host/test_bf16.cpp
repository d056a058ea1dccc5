// bf16 on the host: the codec's magic-number model (every nibble, every position, every zero point, and random
// words against format::unpack), and the reference conversions that the GPU tests and the reference use.

#include <opt4gptq/codec/int4.hpp>
#include <opt4gptq/format.hpp>
#include <opt4gptq/reference/bf16.hpp>
#include <opt4gptq/reference/fp16.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

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

namespace {
/// The device's fma.rn.bf16x2 on one half, modelled: a · b + c in double (exact for the small operands here) rounded
/// once to bf16; valid when the exact result is an fp32 value, which `inexact` counts the failures of.
std::uint16_t fma_bf16_model(std::uint16_t a, std::uint16_t b, std::uint16_t c, long long& inexact) {
  const double exact = static_cast<double>(ref::bf16_bits_to_float(a)) * ref::bf16_bits_to_float(b) +
                       static_cast<double>(ref::bf16_bits_to_float(c));
  inexact += static_cast<double>(static_cast<float>(exact)) != exact;
  return ref::float_to_bf16_bits(static_cast<float>(exact));
}
std::uint16_t low(std::uint32_t pair) { return static_cast<std::uint16_t>(pair & 0xFFFFu); }
}  // namespace

TEST_CASE("bf16 B values by packed bf16 arithmetic: the exact product (q - z)·scale rounded once, for every fp16 scale",
          "[host][bf16]") {
  // CodecInt4::dequant_scaled_bf16 on NVIDIA: qz = fma(128 + q, 1, -(128 + z)); t = fma(qz, lo, -0);
  // b = fma(qz, hi, t) with the scale split s = hi + lo (CodecInt4::scaled_zero_bf16). Modelled here for every finite
  // fp16 scale (both signs, subnormals included), nibble and zero point, against the bf16 nearest to the exact
  // product (the sign of a zero product included); and the function's own host path (fp32) against the same.
  long long wrong_packed = 0, wrong_fp32 = 0, checked = 0, inexact = 0;
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    if ((h & 0x7C00u) == 0x7C00u) continue;  // inf and NaN scales
    const float scale = ref::half_bits_to_float(static_cast<std::uint16_t>(h));
    for (std::uint32_t z = 0; z < 16; ++z) {
      const ScaledZeroInt4Bf16 c = CodecInt4::scaled_zero_bf16(scale, z);
      REQUIRE(static_cast<double>(ref::bf16_bits_to_float(low(c.scale_hi))) +
                  ref::bf16_bits_to_float(low(c.scale_lo)) ==
              static_cast<double>(scale));  // the split is exact
      for (std::uint32_t q = 0; q < 16; ++q) {
        const std::uint16_t want =
            ref::float_to_bf16_bits(static_cast<float>((static_cast<double>(q) - static_cast<double>(z)) * scale));
        const std::uint16_t pair = static_cast<std::uint16_t>(0x4300u | q);
        const std::uint16_t qz = fma_bf16_model(pair, 0x3F80u, low(c.minus_128_z), inexact);
        const std::uint16_t t = fma_bf16_model(qz, low(c.scale_lo), 0x8000u, inexact);
        const std::uint16_t b = fma_bf16_model(qz, low(c.scale_hi), t, inexact);
        wrong_packed += b != want;
        // The host path of the codec function, on a word of 8 copies of q (every pair is (q, q)).
        std::uint32_t out[4];
        CodecInt4::dequant_scaled_bf16(0x11111111u * q, c, out);
        for (const std::uint32_t o : out) wrong_fp32 += low(o) != want || (o >> 16) != want;
        ++checked;
      }
    }
  }
  CHECK(checked == 63488LL * 256);
  CHECK(inexact == 0);  // every step's exact result is an fp32 value (the model is the instruction)
  CHECK(wrong_packed == 0);
  CHECK(wrong_fp32 == 0);
}

TEST_CASE("bf16 checkpoint scales to fp16 at load time: every bf16 value, exact in [2^-17, 65504], errors named",
          "[host][bf16][scales]") {
  using opt4gptq::format::scale_bf16_to_fp16;
  using opt4gptq::format::scales_bf16_to_fp16;
  using opt4gptq::reference::float_to_half_bits;
  using opt4gptq::reference::half_bits_to_float;
  int exact_checked = 0;
  for (std::uint32_t bits = 0; bits <= 0xFFFFu; ++bits) {
    const auto bf16 = static_cast<std::uint16_t>(bits);
    std::uint32_t wide = bits << 16;
    float value;
    std::memcpy(&value, &wide, sizeof(value));
    bool beyond = false;
    const std::uint16_t got = scale_bf16_to_fp16(bf16, &beyond);
    if (std::isnan(value)) {
      CHECK(std::isnan(half_bits_to_float(got)));
      CHECK_FALSE(beyond);
      continue;
    }
    // The independent conversion (float to fp16, round to nearest even) of the same value.
    if (got != float_to_half_bits(value)) FAIL("bf16 bits " << bits << ": got " << got);
    if (beyond != (std::fabs(value) > 65504.0f)) FAIL("bf16 bits " << bits << ": range flag");
    const float magnitude = std::fabs(value);
    if (magnitude >= std::ldexp(1.0f, -17) && magnitude <= 65504.0f) {
      if (half_bits_to_float(got) != value) FAIL("bf16 bits " << bits << ": not exact");
      ++exact_checked;
    }
  }
  CHECK(exact_checked > 2 * 128 * 30);  // both signs, 128 mantissas, ~33 exponents

  // The array form: converted in place, a count of 0 needs no pointers, nulls and out-of-range scales are named.
  std::uint16_t scales[4] = {0x3C00u /* bf16 2^-7 */, 0xBB80u, 0x477Fu /* 65280 */, 0x3F80u /* 1 */};
  REQUIRE(scales_bf16_to_fp16(scales, scales, 4).ok());
  CHECK(half_bits_to_float(scales[0]) == 0.0078125f);
  CHECK(half_bits_to_float(scales[1]) == -0.00390625f);
  CHECK(half_bits_to_float(scales[2]) == 65280.0f);
  CHECK(half_bits_to_float(scales[3]) == 1.0f);
  CHECK(scales_bf16_to_fp16(nullptr, nullptr, 0).ok());
  const opt4gptq::Status null = scales_bf16_to_fp16(nullptr, scales, 1);
  CHECK(null.code == opt4gptq::StatusCode::kNullPointer);
  CHECK(std::string(null.message).rfind("scales:", 0) == 0);
  const std::uint16_t big[2] = {0x3F80u, 0x4780u /* 65536 */};
  std::uint16_t out[2] = {0, 0};
  const opt4gptq::Status beyond = scales_bf16_to_fp16(big, out, 2);
  CHECK(beyond.code == opt4gptq::StatusCode::kInvalidArgument);
  CHECK(std::string(beyond.message).find("scales: a bf16 scale beyond fp16's range") == 0);
  CHECK(out[0] == 0x3C00u);  // fp16 1.0: the values before the bad one are converted
}
