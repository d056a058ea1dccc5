#pragma once
/// @file
/// The GPTQ 4-bit checkpoint format, as AutoGPTQ, GPTQModel and Hugging Face transformers save it (`pack_dtype` int32).
///
/// | tensor    | dtype | shape      | meaning                                                                    |
/// |-----------|-------|------------|----------------------------------------------------------------------------|
/// | `qweight` | int32 | [K/8, N]   | 8 values along K per word; row k is nibble k % 8 of word k / 8 (bits 4j..4j+3) |
/// | `qzeros`  | int32 | [G, N/8]   | zero points packed along N the same way: column n is nibble n % 8 of word n / 8 |
/// | `scales`  | fp16  | [G, N]     | one scale per group and column                                             |
/// | `g_idx`   | int32 | [K]        | group of each input row: k / group_size, unless act-order permuted it      |
///
/// `w[k][n] = scales[g][n] * (q[k][n] - z[g][n])` with `g = g_idx[k]`; G = ceil(K / group_size), 1 for group_size -1.
/// This header has no GPU code: host tools, tests and engines' loaders use it as is.

#include <cstddef>
#include <cstdint>

#include "status.hpp"
#include "version.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// How `qzeros` stores a zero point. There is no safe default: reading one convention as the other shifts every weight
/// by one scale step, which gives plausible-looking garbage. Take it from the checkpoint's `checkpoint_format`.
/// @ingroup host_api
enum class ZeroPointFormat : int {
  /// `"gptq"` (v1, AutoGPTQ / GPTQModel): the toolkits pack the v2 word (nibble j = zero point of column j) and
  /// subtract 0x11111111 from the whole 32-bit word, so a zero point of 0 borrows from the next nibble. Readers add
  /// 0x11111111 back to the whole word (mod 2^32) before splitting it: format::zero_word() does that.
  kGptqV1 = 1,
  /// `"gptq_v2"` (GPTQModel): the nibble holds z itself.
  kGptqV2 = 2,
};

constexpr const char* to_string(ZeroPointFormat format) {
  return format == ZeroPointFormat::kGptqV1 ? "gptq (v1)" : format == ZeroPointFormat::kGptqV2 ? "gptq_v2" : "invalid";
}

namespace format {

inline constexpr int kBits = 4;
inline constexpr int kPackFactor = 32 / kBits;  ///< values per int32 word
inline constexpr int kMaxQ = (1 << kBits) - 1;  ///< largest stored value

/// Number of groups for `k` input rows: ceil(k / group_size), or 1 when group_size is -1 (one group over all of K).
constexpr int num_groups(int k, int group_size) { return group_size <= 0 ? 1 : (k + group_size - 1) / group_size; }

/// Value `index` (0..7) of a packed word, as stored (0..15).
constexpr int unpack(std::uint32_t word, int index) { return static_cast<int>((word >> (kBits * index)) & kMaxQ); }

/// `word` with value `index` replaced by `value` (only the low 4 bits of `value` are used).
constexpr std::uint32_t pack(std::uint32_t word, int index, int value) {
  const std::uint32_t mask = static_cast<std::uint32_t>(kMaxQ) << (kBits * index);
  return (word & ~mask) | ((static_cast<std::uint32_t>(value) & kMaxQ) << (kBits * index));
}

/// What v1 subtracted from every packed zero-point word (one in each nibble), and what a reader adds back.
inline constexpr std::uint32_t kV1ZeroWordOffset = 0x11111111u;

/// The amount to add to a stored qzeros word, modulo 2^32, to get the word of true zero points (one per nibble).
constexpr std::uint32_t zero_word_offset(ZeroPointFormat format) {
  return format == ZeroPointFormat::kGptqV1 ? kV1ZeroWordOffset : 0u;
}

/// The word of true zero points (nibble j = z of column j, 0..15) from a stored qzeros word: v1 adds 0x11111111 to
/// the whole word (undoing the toolkits' borrowing subtraction), v2 is stored as is.
constexpr std::uint32_t zero_word(std::uint32_t stored, ZeroPointFormat format) {
  return stored + zero_word_offset(format);
}

/// The stored qzeros word for a word of true zero points, as the toolkits write it (v1: minus 0x11111111, mod 2^32).
constexpr std::uint32_t stored_zero_word(std::uint32_t zeros, ZeroPointFormat format) {
  return zeros - zero_word_offset(format);
}

/// The fp16 bits of one bf16 scale (bits as stored), rounded to nearest even; `*beyond` is set when |s| > 65504 (the
/// result is then inf, as a conversion gives). Exact for every |s| in [2^-17, 65504] (bf16 has 8 significant bits,
/// fp16 11, and fp16 subnormals keep 8 of them down to 2^-17); smaller values lose bits, below 2^-25 they become 0.
/// NaN stays NaN.
constexpr std::uint16_t scale_bf16_to_fp16(std::uint16_t bf16, bool* beyond) {
  const std::uint16_t sign = bf16 & 0x8000u;
  const int exponent = (bf16 >> 7) & 0xFF;  // biased by 127; fp16's bias is 15
  const std::uint32_t mantissa = bf16 & 0x7Fu;
  *beyond = false;
  if (exponent == 0xFF && mantissa != 0) return static_cast<std::uint16_t>(sign | 0x7E00u);  // NaN
  if (exponent >= 127 + 16) {  // 2^16 and above, inf included: fp16's largest finite value is 65504
    *beyond = true;
    return static_cast<std::uint16_t>(sign | 0x7C00u);
  }
  if (exponent >= 127 - 14)  // an fp16 normal: the 7 mantissa bits move up by 3
    return static_cast<std::uint16_t>(sign | ((exponent - 127 + 15) << 10) | (mantissa << 3));
  if (exponent == 0) return sign;  // zero, or a bf16 subnormal (below 2^-126): 0
  // An fp16 subnormal: value = (128 + mantissa) * 2^(exponent - 134) = m * 2^-24, m = (128 + mantissa) * 2^(exponent
  // - 110): a left shift down to exponent 110 (exact), a right shift rounded to nearest even below it.
  const std::uint32_t significand = 0x80u | mantissa;
  if (exponent >= 110) return static_cast<std::uint16_t>(sign | (significand << (exponent - 110)));
  const int shift = 110 - exponent;
  if (shift > 9) return sign;  // m below 1/4: 0
  const std::uint32_t kept = significand >> shift;
  const std::uint32_t rest = significand & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1);
  const std::uint32_t rounded = kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
  return static_cast<std::uint16_t>(sign | rounded);
}

/// A bf16 checkpoint's scales as the fp16 scales every kernel reads (GPTQModel saves bf16 scales for bf16 models):
/// once, at load time, on the host, `count` values from `bf16` (bf16 bits) to `fp16` (fp16 bits; it may be `bf16`
/// itself, converted in place). Exact for |s| in [2^-17, 65504] (scale_bf16_to_fp16), so the outputs are those of the
/// bf16 scales. kInvalidArgument naming `scales` when a scale is beyond fp16's range (its group's outputs would be
/// inf or NaN); the values before it are converted.
inline Status scales_bf16_to_fp16(const std::uint16_t* bf16, std::uint16_t* fp16, std::size_t count) {
  if (count == 0) return Status{};
  if (bf16 == nullptr || fp16 == nullptr)
    return Status::error(StatusCode::kNullPointer, "scales: null (scales_bf16_to_fp16's bf16 or fp16 pointer)");
  for (std::size_t i = 0; i < count; ++i) {
    bool beyond = false;
    fp16[i] = scale_bf16_to_fp16(bf16[i], &beyond);
    if (beyond)
      return Status::error(StatusCode::kInvalidArgument,
                           "scales: a bf16 scale beyond fp16's range (|s| > 65504): the kernels read fp16 scales, so "
                           "this layer cannot run on them");
  }
  return Status{};
}

}  // namespace format
OPT4GPTQ_NAMESPACE_END
