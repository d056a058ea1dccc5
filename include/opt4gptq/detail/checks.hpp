#pragma once
/// @file
/// Small helpers of the host-side argument checks. Not API.

#include <cstdint>

#include "../status.hpp"

namespace opt4gptq::detail {

inline bool aligned_to(const void* p, std::uintptr_t bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }
constexpr Status invalid(const char* message) { return Status::error(StatusCode::kInvalidArgument, message); }
constexpr Status null(const char* message) { return Status::error(StatusCode::kNullPointer, message); }
constexpr Status misaligned(const char* message) { return Status::error(StatusCode::kMisalignedPointer, message); }

}  // namespace opt4gptq::detail
