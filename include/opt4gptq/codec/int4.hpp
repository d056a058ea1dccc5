#pragma once
/// @file
/// The 4-bit codec: everything that depends on the bit width, in one place, so that other widths (8, then 2 and 3
/// bits) are new codecs rather than edits across kernel/ and host/. A codec says how many rows of K one packed int32
/// of qweight holds, how a stored qzeros word becomes per-column zero-point constants, and how one packed word
/// becomes exact fp16 values q - z. The host side of the format (pack/unpack, the v1/v2 zero words) is format.hpp;
/// the codec uses it and adds the device arithmetic.
///
/// The magic-number trick (as in the exllama kernels): OR-ing a nibble into the mantissa of the fp16 constant 1024
/// (0x6400) gives the half 1024 + q exactly, so one AND-OR per pair of values turns packed nibbles into halves:
///   (word & 0x000F000F) | 0x64006400  ->  (1024 + q0, 1024 + q4)
///   (word & 0x00F000F0) | 0x64006400  ->  (1024 + 16·q1, 1024 + 16·q5)
/// and the same on word >> 8 for (q2, q6), (q3, q7). One `add2` with -(1024 + z), or one `fma2` with 1/16 and
/// -(64 + z), then yields q - z exactly (all intermediates are integers below 2048, exact in fp16).
/// The pairs come out as (q0,q4) (q1,q5) (q2,q6) (q3,q7); instead of shuffling the weights at load time (which vLLM
/// does), the kernel stores the activations in shared memory in the same interleaved order
/// (CodecInt4::interleaved_position), so that checkpoints are used exactly as saved.
///
/// bf16 (kernels built with ElementBf16) has a 7-bit mantissa, so the fp16 trick's second pair, whose nibble sits at
/// bits 4..7 (16·q), would run into bf16's exponent. Its magic number is 0x4300 = 128.0 (exponent 7: the mantissa's
/// last bit is worth 1), and every pair is taken from the word shifted down by 4·s instead:
///   ((word >> 4s) & 0x000F000F) | 0x43004300  ->  bf16 pair (128 + q_s, 128 + q_{s+4}),  s = 0..3
/// which is the same interleaved order (q0,q4) (q1,q5) (q2,q6) (q3,q7), so the activations are staged alike. A bf16
/// is the upper half of an fp32: the pair's low value widens to fp32 with a shift by 16, its high one with a mask,
/// and one fp32 add of -(128 + z) gives q - z exactly (integers below 2^8, exact in fp32). The bf16 dot products are
/// fp32 (dequant_bf16).
///
/// bf16 B values ((q - z)·scale rounded once to bf16: the matrix-core mainloops' operands and dequantize()'s output)
/// come from packed bf16 arithmetic where the ISA has it (NVIDIA sm_80+: fma.rn.bf16x2), rounding exactly as the fp32
/// product rounded to bf16 would. The fp16 scale s (11 significant bits) is split as s = hi + lo, hi its upper 16
/// bits (s truncated to bf16) and lo = s - hi (at most 3 significant bits, s's sign, exact in bf16). Per pair:
///   qz = fma(pair, 1, -(128 + z))   = q - z                   exact (integers below 2^8)
///   t  = fma(qz, lo, -0)            = (q - z)·lo              exact (4 x 3 significant bits)
///   b  = fma(qz, hi, t)             = round((q - z)·hi + t)   = round((q - z)·s): one rounding of the exact product
/// (the signs of zero agree too: hi and lo carry s's sign). Three packed instructions per pair against two widenings,
/// two fp32 adds, two fp32 multiplies and a narrowing conversion (dequant_scaled_bf16; tests/host/test_bf16.cpp
/// checks the algebra for every fp16 scale, nibble and zero point).
/// @ingroup kernel

#include <cstdint>

#include "../format.hpp"
#include "../platform.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// Per group and column: the constants that turn magic-number halves into q - z.
struct ZeroTermsInt4 {
  half2 minus_1024_z;  ///< -(1024 + z) in both halves
  half2 minus_64_z;    ///< -(64 + z) in both halves
};

/// Per group and column, for bf16 elements: the fp32 constant that turns a widened magic-number bf16 into q - z.
struct ZeroTermsInt4Bf16 {
  float minus_128_z;  ///< -(128 + z)
};

/// Per group and column, for bf16 B values (q - z)·scale: the scale split for packed bf16 arithmetic and the zero
/// term, each as a bf16 pair (both halves equal). See the file comment.
struct ScaledZeroInt4Bf16 {
  std::uint32_t scale_hi;     ///< hi: the scale's upper 16 bits (truncated to bf16)
  std::uint32_t scale_lo;     ///< lo = scale - hi, exact in bf16, with the scale's sign
  std::uint32_t minus_128_z;  ///< -(128 + z)
  /// The same in fp32, for targets without packed bf16 arithmetic (unused where it exists: no register is kept).
  float scale;
  ZeroTermsInt4Bf16 zero;
};

/// @ingroup kernel
/// GPTQ 4-bit: 8 rows of K per qweight word, 8 columns per qzeros word, nibble j in bits 4j..4j+3.
struct CodecInt4 {
  static constexpr int kBits = format::kBits;
  static constexpr int kRowsPerWord = format::kPackFactor;         ///< rows of K in one int32 of qweight
  static constexpr int kColumnsPerZeroWord = format::kPackFactor;  ///< columns of N in one int32 of qzeros
  static constexpr std::uint32_t kMask = format::kMaxQ;
  using ZeroTerms = ZeroTermsInt4;
  using ZeroTermsBf16 = ZeroTermsInt4Bf16;
  using ScaledZeroBf16 = ScaledZeroInt4Bf16;
  static constexpr std::uint32_t kMagic128Bf16 = 0x43004300u;  ///< bf16 pair (128, 128)

  /// Position of row j (0..7) of a word in the interleaved activation order a0 a4 a1 a5 a2 a6 a3 a7: the order in
  /// which dequant() produces the values.
  OPT4GPTQ_HOST_DEVICE static constexpr int interleaved_position(int j) { return 2 * (j & 3) + (j >> 2); }

  /// Stored value `index` (0..7) of a packed qweight word (row 8w + index of its column), 0..15.
  OPT4GPTQ_HOST_DEVICE static constexpr std::uint32_t value_of(std::uint32_t word, int index) {
    return (word >> (kBits * index)) & kMask;
  }

  /// `value` (0..15) in position `index` (0..7) of an otherwise empty word: OR several to pack a word.
  OPT4GPTQ_HOST_DEVICE static constexpr std::uint32_t place_value(std::uint32_t value, int index) {
    return (value & kMask) << (kBits * index);
  }

  /// Zero point of column `index` (0..7) of a qzeros word, after format::zero_word() (v1's 0x11111111 added back).
  OPT4GPTQ_HOST_DEVICE static constexpr std::uint32_t zero_of(std::uint32_t zero_word, int index) {
    return (zero_word >> (kBits * index)) & kMask;
  }

  /// -(1024 + z) and -(64 + z) as fp16 bit patterns, built with integer operations (z <= 15, so both are exact):
  /// 1024 + z has exponent 10 and mantissa z; 64 + z has exponent 6 and mantissa 16·z.
  OPT4GPTQ_DEVICE static ZeroTerms zero_terms(std::uint32_t z) {
    const std::uint32_t m1024 = 0xE400u + z;
    const std::uint32_t m64 = 0xD400u + 16u * z;
    return ZeroTerms{platform::bit_cast<half2>(m1024 | (m1024 << 16)), platform::bit_cast<half2>(m64 | (m64 << 16))};
  }

  /// (word & mask) | bits in one instruction: NVIDIA's lop3 (nvcc emits an AND and an OR for two constants; the
  /// inline form lets ptxas keep one of them in a register); gfx9's v_and_or_b32 (clang 15 does not form it: VOP3
  /// takes no literal, so it emitted an AND and an OR), with the mask in an SGPR and the magic bits in a VGPR (VOP3
  /// reads one scalar operand on gfx9).
  template <std::uint32_t kMask, std::uint32_t kBits>
  OPT4GPTQ_DEVICE static std::uint32_t and_or(std::uint32_t word) {
#if defined(OPT4GPTQ_BACKEND_CUDA) && defined(__CUDA_ARCH__)
    std::uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, 0xea;\n" : "=r"(r) : "r"(word), "n"(kMask), "n"(kBits));  // (a & b) | c
    return r;
#elif defined(OPT4GPTQ_BACKEND_HIP) && defined(__HIP_DEVICE_COMPILE__) && defined(__GFX9__)
    std::uint32_t r;
    asm("v_and_or_b32 %0, %1, %2, %3" : "=v"(r) : "v"(word), "s"(kMask), "v"(kBits));
    return r;
#else
    return (word & kMask) | kBits;
#endif
  }

  /// -(128 + z) for the bf16 path (exact in fp32).
  OPT4GPTQ_HOST_DEVICE static ZeroTermsBf16 zero_terms_bf16(std::uint32_t z) {
    return ZeroTermsBf16{-128.0f - static_cast<float>(z)};
  }

  /// The constants of dequant_scaled_bf16 for a column whose group has scale `scale` (an fp16 value, widened) and zero
  /// point `z`.
  OPT4GPTQ_HOST_DEVICE static ScaledZeroBf16 scaled_zero_bf16(float scale, std::uint32_t z) {
    const std::uint32_t bits = platform::bit_cast<std::uint32_t>(scale);
    const std::uint32_t hi = bits >> 16;
    // Exact: an fp16 value has 11 significant bits, hi holds its first 8. The sign is set for lo = 0 too, so that a
    // zero product keeps the scale's sign, as the fp32 product does.
    const float lo = scale - platform::bit_cast<float>(bits & 0xFFFF0000u);
    const std::uint32_t lo16 = (platform::bit_cast<std::uint32_t>(lo) >> 16) | ((bits >> 16) & 0x8000u);
    const ZeroTermsBf16 zero = zero_terms_bf16(z);
    const std::uint32_t minus_128_z = platform::float_to_bf16_bits(zero.minus_128_z);  // exact
    return ScaledZeroBf16{hi | (hi << 16), lo16 | (lo16 << 16), minus_128_z | (minus_128_z << 16), scale, zero};
  }

  /// The 8 values (q - z)·scale of one packed word rounded to bf16 (to nearest even, once), as 4 bf16 pairs in the
  /// codec's order (q0,q4) (q1,q5) (q2,q6) (q3,q7): three fma.rn.bf16x2 per pair where the ISA has them (see the file
  /// comment), else the fp32 product rounded to bf16 (the same bits).
  OPT4GPTQ_HOST_DEVICE static void dequant_scaled_bf16(std::uint32_t word, const ScaledZeroBf16& c,
                                                       std::uint32_t (&b)[4]) {
#if defined(OPT4GPTQ_PACKED_BF16_FMA)
    constexpr std::uint32_t kOnes = 0x3F803F80u;       // bf16 pair (1, 1)
    constexpr std::uint32_t kMinusZero = 0x80008000u;  // bf16 pair (-0, -0): t = qz · lo keeps the product's sign
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      const std::uint32_t pair = and_or<0x000F000Fu, kMagic128Bf16>(word >> (kBits * s));
      const std::uint32_t qz = platform::fma_bf16x2(pair, kOnes, c.minus_128_z);
      const std::uint32_t t = platform::fma_bf16x2(qz, c.scale_lo, kMinusZero);
      b[s] = platform::fma_bf16x2(qz, c.scale_hi, t);
    }
#else
    float v[8];
    dequant_bf16(word, c.zero, v);
#pragma unroll
    for (int s = 0; s < 4; ++s) {
#if defined(OPT4GPTQ_DEVICE_PASS)
      b[s] = platform::floats_to_bf16x2(v[2 * s] * c.scale, v[2 * s + 1] * c.scale);
#else
      b[s] = platform::float_to_bf16_bits(v[2 * s] * c.scale) |
             (platform::float_to_bf16_bits(v[2 * s + 1] * c.scale) << 16);
#endif
    }
#endif
  }

  /// Pair s (0..3) of a word in bf16 magic form: the bf16 bits of (128 + q_s) in the low half and of (128 + q_{s+4})
  /// in the high half. The host model of what dequant_bf16 computes with and_or on the device.
  OPT4GPTQ_HOST_DEVICE static constexpr std::uint32_t magic_pair_bf16(std::uint32_t word, int s) {
    return ((word >> (kBits * s)) & 0x000F000Fu) | kMagic128Bf16;
  }

  /// The fp32 value of the bf16 in the low (`high` false) or high half of a packed pair: its bits are an fp32's
  /// upper half, so a shift or a mask widens it exactly.
  OPT4GPTQ_HOST_DEVICE static float widen_bf16(std::uint32_t pair, bool high) {
    return platform::bit_cast<float>(high ? pair & 0xFFFF0000u : pair << 16);
  }

  /// The 8 values q - z of one packed word, as fp32, in the interleaved order q0 q4 q1 q5 q2 q6 q3 q7 (the bf16
  /// magic number: one AND-OR per pair on the word shifted by 4·s, two widenings, two fp32 adds).
  OPT4GPTQ_HOST_DEVICE static void dequant_bf16(std::uint32_t word, const ZeroTermsBf16& zero, float (&out)[8]) {
#pragma unroll
    for (int s = 0; s < 4; ++s) {
#if defined(OPT4GPTQ_DEVICE_PASS)
      const std::uint32_t pair = and_or<0x000F000Fu, kMagic128Bf16>(word >> (kBits * s));
#else
      const std::uint32_t pair = magic_pair_bf16(word, s);
#endif
      out[2 * s] = widen_bf16(pair, false) + zero.minus_128_z;
      out[2 * s + 1] = widen_bf16(pair, true) + zero.minus_128_z;
    }
  }

  /// The 8 values q - z of one packed word, as four half2 in the interleaved order (q0,q4) (q1,q5) (q2,q6) (q3,q7).
  template <class Math>
  OPT4GPTQ_DEVICE static void dequant(std::uint32_t word, const ZeroTerms& zero, half2 (&out)[4]) {
    constexpr std::uint32_t kLow = 0x000F000Fu;
    constexpr std::uint32_t kHigh = 0x00F000F0u;
    constexpr std::uint32_t kMagic1024 = 0x64006400u;                    // half2(1024, 1024)
    const half2 one_sixteenth = platform::bit_cast<half2>(0x2C002C00u);  // half2(1/16, 1/16)
    const std::uint32_t shifted = word >> 8;
    out[0] = Math::add2(platform::bit_cast<half2>(and_or<kLow, kMagic1024>(word)), zero.minus_1024_z);
    out[1] = Math::fma2(platform::bit_cast<half2>(and_or<kHigh, kMagic1024>(word)), one_sixteenth, zero.minus_64_z);
    out[2] = Math::add2(platform::bit_cast<half2>(and_or<kLow, kMagic1024>(shifted)), zero.minus_1024_z);
    out[3] = Math::fma2(platform::bit_cast<half2>(and_or<kHigh, kMagic1024>(shifted)), one_sixteenth, zero.minus_64_z);
  }
};

OPT4GPTQ_NAMESPACE_END
