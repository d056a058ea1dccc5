// The GPTQ format helpers and the host fp16 conversions, against hand-made words and the compiler's own conversions.

#include <opt4gptq/format.hpp>
#include <opt4gptq/platform.hpp>
#include <opt4gptq/reference/fp16.hpp>

#include <cmath>
#include <cstdint>
#include <random>

#include <catch2/catch.hpp>

using namespace opt4gptq;
namespace ref = opt4gptq::reference;

TEST_CASE("unpack reads nibble j from bits 4j..4j+3, lowest first", "[host][format]") {
  const std::uint32_t word = 0x76543210u;  // nibble j holds j
  for (int j = 0; j < 8; ++j) CHECK(format::unpack(word, j) == j);
  CHECK(format::unpack(0xF0000000u, 7) == 15);
  CHECK(format::unpack(0xF0000000u, 6) == 0);
  CHECK(format::unpack(0x0000000Au, 0) == 10);
}

TEST_CASE("pack writes one nibble and keeps the others", "[host][format]") {
  std::uint32_t word = 0;
  for (int j = 0; j < 8; ++j) word = format::pack(word, j, 7 - j);
  CHECK(word == 0x01234567u);
  CHECK(format::pack(0xFFFFFFFFu, 3, 0) == 0xFFFF0FFFu);
  CHECK(format::pack(0u, 2, 0x1F) == 0x00000F00u);  // only the low 4 bits of the value are used
  std::mt19937 rng(7);
  for (int trial = 0; trial < 1000; ++trial) {
    int values[8];
    std::uint32_t w = rng();
    for (int j = 0; j < 8; ++j) w = format::pack(w, j, values[j] = static_cast<int>(rng() % 16));
    for (int j = 0; j < 8; ++j) REQUIRE(format::unpack(w, j) == values[j]);
  }
}

TEST_CASE("zero point conventions: v2 stores z, v1 the whole word minus 0x11111111", "[host][format]") {
  CHECK(format::zero_word_offset(ZeroPointFormat::kGptqV1) == 0x11111111u);
  CHECK(format::zero_word_offset(ZeroPointFormat::kGptqV2) == 0u);
  // A symmetric 4-bit v1 checkpoint stores 7 in every nibble of qzeros: 0x77777777 means zero 8 (no borrow).
  CHECK(format::zero_word(0x77777777u, ZeroPointFormat::kGptqV1) == 0x88888888u);
  CHECK(format::stored_zero_word(0x88888888u, ZeroPointFormat::kGptqV1) == 0x77777777u);
  CHECK(format::zero_word(0x12345678u, ZeroPointFormat::kGptqV2) == 0x12345678u);
}

TEST_CASE("v1 zero points of 0 borrow from the next nibble, and read back exactly", "[host][format]") {
  // True zero points, nibble j = column j: a 0 in the lowest, a middle and the highest nibble.
  struct Case {
    std::uint32_t zeros;   // the v2 word
    std::uint32_t stored;  // what GPTQModel writes for v1: zeros - 0x11111111 (mod 2^32)
  };
  const Case cases[] = {
      {0x87654320u, 0x7654320Fu},  // z0 = 0: nibble 0 reads F, and nibble 1 lost one more (3 - 1 - 1 = 1)
      {0x88808888u, 0x776F7777u},  // z3 = 0 (a middle nibble): nibble 3 reads F, nibble 4 is 8 - 1 - 1 = 6
      {0x08888888u, 0xF7777777u},  // z7 = 0: the borrow leaves the word (mod 2^32)
      {0x00000000u, 0xEEEEEEEFu},  // every zero point 0: the borrow runs through the whole word
      {0xF0F0F0F0u, 0xDFDFDFDFu},  // zero points 15 and 0 alternating
  };
  for (const Case& c : cases) {
    INFO("zeros 0x" << std::hex << c.zeros);
    CHECK(format::stored_zero_word(c.zeros, ZeroPointFormat::kGptqV1) == c.stored);
    CHECK(format::zero_word(c.stored, ZeroPointFormat::kGptqV1) == c.zeros);
    // Nibble by nibble ("stored nibble + 1"), the same stored word means other zero points: the reading this
    // library used before, which gave 16 for a stored 15 and missed the borrow in the next nibble.
    int differ = 0;
    for (int j = 0; j < 8; ++j) differ += format::unpack(c.stored, j) + 1 != format::unpack(c.zeros, j);
    CHECK(differ >= 1);
  }
  // Words without a zero point of 0 read the same either way.
  std::mt19937 rng(3);
  for (int trial = 0; trial < 1000; ++trial) {
    std::uint32_t zeros = 0;
    for (int j = 0; j < 8; ++j) zeros = format::pack(zeros, j, 1 + static_cast<int>(rng() % 15));
    const std::uint32_t stored = format::stored_zero_word(zeros, ZeroPointFormat::kGptqV1);
    for (int j = 0; j < 8; ++j) REQUIRE(format::unpack(stored, j) + 1 == format::unpack(zeros, j));
  }
}

TEST_CASE("number of groups", "[host][format]") {
  CHECK(format::num_groups(4096, 128) == 32);
  CHECK(format::num_groups(4096, -1) == 1);
  CHECK(format::num_groups(1000, 128) == 8);  // ceil
  CHECK(format::num_groups(96, 32) == 3);
}

TEST_CASE("fp16 conversions: every half survives half -> float -> half, and matches the compiler's", "[host][fp16]") {
  for (std::uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const auto h = static_cast<std::uint16_t>(bits);
    const float f = ref::half_bits_to_float(h);
    const float expected = __half2float(platform::bit_cast<__half>(h));
    if (std::isnan(expected)) {
      REQUIRE(std::isnan(f));
      continue;
    }
    REQUIRE(platform::bit_cast<std::uint32_t>(f) == platform::bit_cast<std::uint32_t>(expected));
    REQUIRE(ref::float_to_half_bits(f) == h);
  }
}

TEST_CASE("fp16 conversions: float -> half rounds to nearest even like __float2half_rn", "[host][fp16]") {
  std::mt19937 rng(11);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  int checked = 0;
  for (int trial = 0; trial < 2000000; ++trial) {
    // Random bit patterns cover subnormals, overflow and ties; scale them into the interesting exponent range.
    std::uint32_t bits = any_bits(rng);
    bits = (bits & 0x807FFFFFu) | ((100u + (bits >> 23) % 60u) << 23);
    const float f = platform::bit_cast<float>(bits);
    const std::uint16_t expected = platform::bit_cast<std::uint16_t>(__float2half_rn(f));
    REQUIRE(ref::float_to_half_bits(f) == expected);
    ++checked;
  }
  CHECK(ref::float_to_half_bits(65504.0f) == 0x7BFF);
  CHECK(ref::float_to_half_bits(65520.0f) == 0x7C00);  // ties away from the largest finite value go to infinity
  CHECK(ref::float_to_half_bits(-0.0f) == 0x8000);
  CHECK(ref::float_to_half_bits(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(ref::float_to_half_bits(std::ldexp(1.0f, -25)) == 0x0000);  // tie to even (zero)
  CHECK(checked == 2000000);
}
