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

#include <cstdint>

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

}  // namespace format
OPT4GPTQ_NAMESPACE_END
