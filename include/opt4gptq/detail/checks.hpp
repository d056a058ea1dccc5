#pragma once
/// @file
/// Small helpers of the host-side argument checks. Not API.

#include <cstddef>
#include <cstdint>

#include "../status.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace detail {

inline bool aligned_to(const void* p, std::uintptr_t bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }
constexpr Status invalid(const char* message) { return Status::error(StatusCode::kInvalidArgument, message); }
constexpr Status null(const char* message) { return Status::error(StatusCode::kNullPointer, message); }
constexpr Status misaligned(const char* message) { return Status::error(StatusCode::kMisalignedPointer, message); }

/// The largest grid dimension y or z a launch may have, on CUDA and HIP alike.
inline constexpr int kMaxGridYZ = 65535;

/// The bytes [begin, end) a pointer argument reaches; empty for a null pointer.
struct ByteRange {
  std::uintptr_t begin = 0, end = 0;
  constexpr bool overlaps(const ByteRange& o) const { return begin < o.end && o.begin < end; }
};

/// The bytes a row-major matrix of `rows` x `cols` elements of `element_bytes`, row stride `ld` elements, spans.
inline ByteRange matrix_bytes(const void* p, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                              std::size_t element_bytes) {
  if (p == nullptr || rows <= 0 || cols <= 0) return ByteRange{};
  const auto begin = reinterpret_cast<std::uintptr_t>(p);
  return ByteRange{begin, begin + static_cast<std::uintptr_t>(((rows - 1) * ld + cols) * element_bytes)};
}

}  // namespace detail
OPT4GPTQ_NAMESPACE_END
