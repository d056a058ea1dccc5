#pragma once
/// @file
/// Library version. The CMake package uses SameMinorVersion compatibility: while the major version is 0, a new minor
/// version may change the API.

#define OPT4GPTQ_VERSION_MAJOR 0
#define OPT4GPTQ_VERSION_MINOR 1
#define OPT4GPTQ_VERSION_PATCH 0
#define OPT4GPTQ_VERSION (OPT4GPTQ_VERSION_MAJOR * 10000 + OPT4GPTQ_VERSION_MINOR * 100 + OPT4GPTQ_VERSION_PATCH)
