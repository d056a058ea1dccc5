#pragma once
/// @file
/// The dispatcher's rules as data: which shipped kernel is fastest for a call of M rows on a layer of a given size,
/// per architecture, as a small table measured by the benchmark (bench/make_dispatch_table.py turns a results.csv
/// into one) and committed with the device it was measured on. Plain C++ (no GPU header): a loader or a log can
/// ask what would run. choose_kernel() reads a table; the tables are in dispatch/.
/// @ingroup host_api

#include <cstdint>

#include "version.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup host_api
/// The kernels a dispatch table chooses among (presets.hpp).
enum class KernelChoice : int {
  kBaseline = 0,
  kOpt4Gptq = 1,
  kDeterministic = 2,
  kTensorCore = 3,
  kTensorCoreDeterministic = 4,
};

/// @ingroup host_api
/// The preset's name, as the benchmark's CSV and logs spell it.
constexpr const char* kernel_name(KernelChoice k) {
  switch (k) {
    case KernelChoice::kBaseline: return "Baseline";
    case KernelChoice::kOpt4Gptq: return "Opt4GPTQ";
    case KernelChoice::kDeterministic: return "Deterministic";
    case KernelChoice::kTensorCore: return "TensorCore";
    case KernelChoice::kTensorCoreDeterministic: return "TensorCoreDeterministic";
  }
  return "?";
}

/// @ingroup host_api
/// One rule: calls of at most `m_max` rows on layers of at most `weight_bytes_max` bytes (int4 weights, scales and
/// zeros) with the given act-order run `kernel`. Rules are tried in order; the first that matches decides.
struct DispatchRule {
  int m_max;
  std::int64_t weight_bytes_max;  ///< -1: any size
  int act_order;                  ///< 0: without, 1: with, -1: either
  KernelChoice kernel;
};

/// @ingroup host_api
/// A table for one architecture, and where it was measured.
struct DispatchTable {
  const char* measured_on;  ///< device, date and results folder of the measurement
  int arch_major;           ///< the compute capability major (NVIDIA) or gfx major the table is for
  const DispatchRule* rules;
  int rule_count;
  KernelChoice fallback;  ///< when no rule matches (M above every rule's m_max)
};

/// @ingroup host_api
/// The kernel `table` chooses for a call of `m` rows on a layer of `weight_bytes` bytes.
constexpr KernelChoice choose_kernel(const DispatchTable& table, int m, std::int64_t weight_bytes, bool act_order) {
  for (int i = 0; i < table.rule_count; ++i) {
    const DispatchRule& r = table.rules[i];
    if (m <= r.m_max && (r.weight_bytes_max < 0 || weight_bytes <= r.weight_bytes_max) &&
        (r.act_order < 0 || r.act_order == (act_order ? 1 : 0)))
      return r.kernel;
  }
  return table.fallback;
}

/// @ingroup host_api
/// The bytes a layer streams per call, as the tables count them: int4 weights, fp16 scales and 4-bit zeros.
constexpr std::int64_t layer_weight_bytes(int k, int n, int num_groups) {
  return static_cast<std::int64_t>(k) / 8 * n * 4 + static_cast<std::int64_t>(num_groups) * n * 2 +
         static_cast<std::int64_t>(num_groups) * (n / 8) * 4;
}

OPT4GPTQ_NAMESPACE_END
