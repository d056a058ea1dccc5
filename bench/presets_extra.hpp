#pragma once
// Kernels to measure beside the shipped presets, e.g. tuning candidates: define OPT4GPTQ_BENCH_EXTRA_PRESETS as a
// list of `, Named<Type>{"name"}` entries (see bench/NOTES.md for the tiles tried so far). Empty by default.
#include <opt4gptq/opt4gptq.hpp>

#define OPT4GPTQ_BENCH_EXTRA_PRESETS
