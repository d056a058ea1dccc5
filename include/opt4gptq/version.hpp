#pragma once
/// @file
/// Library version. The CMake package uses SameMinorVersion compatibility: while the major version is 0, a new minor
/// version may change the API.

#define OPT4GPTQ_VERSION_MAJOR 0
#define OPT4GPTQ_VERSION_MINOR 1
#define OPT4GPTQ_VERSION_PATCH 0
#define OPT4GPTQ_VERSION (OPT4GPTQ_VERSION_MAJOR * 10000 + OPT4GPTQ_VERSION_MINOR * 100 + OPT4GPTQ_VERSION_PATCH)

/// Everything the library declares lives in `opt4gptq::v<major>_<minor>`, an inline namespace: user code names
/// `opt4gptq::X` as before, but two shared libraries built against different opt4gptq versions get different symbols,
/// so the linker cannot merge one's kernels or function-local caches with the other's (the trap CUB closed the same
/// way). Bump it with the version.
#define OPT4GPTQ_ABI_NAMESPACE v0_1
#define OPT4GPTQ_NAMESPACE_BEGIN \
  namespace opt4gptq {           \
  inline namespace OPT4GPTQ_ABI_NAMESPACE {
#define OPT4GPTQ_NAMESPACE_END \
  }                            \
  }
