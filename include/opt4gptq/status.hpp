#pragma once
/// @file
/// The result of every host call: a code and a static message that names the offending argument.
/// Nothing in the library throws, prints or allocates to report an error, so engines built with -fno-exceptions can use
/// it and a hot path pays nothing for the message.

#include "version.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup host_api
enum class StatusCode : int {
  kSuccess = 0,
  kInvalidArgument,    ///< a size, stride, group size or flag is outside what the kernel accepts
  kNullPointer,        ///< a required pointer is null
  kMisalignedPointer,  ///< a pointer or stride breaks the alignment the chosen policies load with
  kUnsupported,        ///< a valid problem this build or preset cannot run (e.g. too many groups for prepare)
  kWorkspaceTooSmall,  ///< the caller's buffer is smaller than the size query asked for
  kInvalidData,        ///< tensor contents are wrong (g_idx entry out of range), found by a device-side check
  kRuntimeError,       ///< a HIP/CUDA runtime call failed; `native_error` holds its code
  kLaunchFailed,       ///< the kernel launch was rejected; `native_error` holds the runtime's code
};

/// The outcome of a host call: a code, a message naming the argument at fault, and the runtime's error code if any.
/// `message` always points to a string with static storage duration (a literal, or the runtime's own error string).
/// @ingroup host_api
struct Status {
  StatusCode code = StatusCode::kSuccess;
  const char* message = "success";
  int native_error = 0;

  constexpr bool ok() const { return code == StatusCode::kSuccess; }

  static constexpr Status success() { return Status{}; }
  static constexpr Status error(StatusCode code, const char* message, int native_error = 0) {
    return Status{code, message, native_error};
  }
};

/// Stable name of a status code, for logs.
constexpr const char* to_string(StatusCode code) {
  switch (code) {
    case StatusCode::kSuccess: return "success";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kNullPointer: return "null pointer";
    case StatusCode::kMisalignedPointer: return "misaligned pointer";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kWorkspaceTooSmall: return "workspace too small";
    case StatusCode::kInvalidData: return "invalid data";
    case StatusCode::kRuntimeError: return "runtime error";
    case StatusCode::kLaunchFailed: return "launch failed";
  }
  return "unknown";
}

OPT4GPTQ_NAMESPACE_END
