#pragma once
/// @file
/// Umbrella header of the dispatcher: one entry point for every M (host/dispatcher.hpp: Dispatcher, presets::Auto),
/// the kernel list it chooses from (host/dispatch_kernels.hpp) and the prefill path (host/dequant_cublas.hpp), with
/// everything of <opt4gptq/opt4gptq.hpp>. Its non-template functions launch every kernel of the list, so including it
/// compiles all of them: include it in the translation unit that calls the dispatcher, not everywhere.

#include "host/cublas.hpp"
#include "host/dequant_cublas.hpp"
#include "host/dispatch_kernels.hpp"
#include "host/dispatcher.hpp"
#include "opt4gptq.hpp"
