#pragma once
/// @file
/// The element type of activations and outputs (A and C): fp16 or bf16. A kernel is built for one (a compile-time
/// tag, ElementFp16 by default, so that every kernel written before bf16 existed is unchanged); a call says which one
/// its tensors hold (GemmProblem::dtype, a run-time field), and validate() refuses a call whose type is not its
/// kernel's, naming both. The weights' scales stay as the checkpoint stores them (fp16) for either element type: the
/// kernels widen them to fp32 once per group, so a bf16 kernel reads the same scales tensor as an fp16 one.
/// Plain C++ (no GPU header): a loader built with g++ can set and check the type.

#include <cstdint>

#include "status.hpp"
#include "version.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// The type of A's and C's elements, as a call states it.
/// @ingroup host_api
enum class ElementType : std::uint8_t {
  kFp16 = 0,  ///< IEEE binary16 (5-bit exponent, 10-bit mantissa): the library's type from the start
  kBf16 = 1,  ///< bfloat16 (8-bit exponent, 7-bit mantissa): the upper half of an fp32
};

/// The type's short name ("fp16", "bf16"), as messages and tests spell it; "unknown" for a value of neither.
constexpr const char* element_name(ElementType t) {
  switch (t) {
    case ElementType::kFp16: return "fp16";
    case ElementType::kBf16: return "bf16";
  }
  return "unknown";
}

/// The compile-time tags a kernel is built with (its `Element`), one per ElementType.
/// @ingroup kernel
struct ElementFp16 {
  static constexpr ElementType kType = ElementType::kFp16;
};
/// @ingroup kernel
struct ElementBf16 {
  static constexpr ElementType kType = ElementType::kBf16;
};

namespace detail {

/// Whether a call of element type `given` can run on a kernel built for `built`; the message names the call's field,
/// its value and the kernel's type (static strings: a Status never allocates).
constexpr Status check_element(ElementType given, ElementType built) {
  if (given != ElementType::kFp16 && given != ElementType::kBf16)
    return Status::error(StatusCode::kInvalidArgument,
                         "problem.dtype: not an ElementType (ElementType::kFp16 or ElementType::kBf16)");
  if (given == built) return Status::success();
  if (given == ElementType::kBf16)
    return Status::error(StatusCode::kUnsupported,
                         "problem.dtype: bf16, but the kernel was built for fp16 (use a bf16 kernel: presets::Bf16*, "
                         "or a kernel built with ElementBf16)");
  return Status::error(StatusCode::kUnsupported,
                       "problem.dtype: fp16, but the kernel was built for bf16 (use an fp16 kernel, e.g. the presets "
                       "without the Bf16 prefix)");
}

}  // namespace detail
OPT4GPTQ_NAMESPACE_END
