#pragma once
/// @file
/// DispatchOptions: what an engine asks of the kernels the dispatcher may choose for a layer (overflow safety,
/// determinism, batch invariance, the largest M), and which kernel that leaves for a call. Plain C++: the choice is
/// a function of the options, the table of the device's architecture and the kernels the program has built, so a
/// loader or a test can ask what would run without a GPU. The runtime object is host/dispatcher.hpp's Dispatcher.
/// @ingroup host_api

#include <cstdint>

#include "detail/checks.hpp"
#include "dispatch_table.hpp"
#include "element.hpp"
#include "gpu_arch.hpp"
#include "status.hpp"
#include "version.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup host_api
/// What a Dispatcher's kernels must guarantee. The defaults are overflow-safe and as fast as that allows.
struct DispatchOptions {
  /// The least safe accumulation allowed (dispatch_table.hpp). The default, kFp32PerKBlock, excludes the kernels with
  /// fp16 partial sums of 8 products (Baseline, Opt4Gptq, Deterministic), which return inf from activations of about
  /// |a| >= 1000; kFp16RangeScaled also excludes TensorCore (its K blocks meet through fp16 atomics); kFp32 also
  /// Decode (range-scaled fp16 partial sums: they cannot overflow, but round in fp16); kFp16Partials allows all.
  Accumulation accumulation = Accumulation::kFp32PerKBlock;
  /// The same bits on every run: only kernels without atomics (a fixed order of every addition). On one GPU model:
  /// the K split depends on the SM count (see rows_of_k_per_block), and cuBLAS promises the same bits for one
  /// toolkit version, architecture and SM count.
  bool deterministic = false;
  /// Row i of C bitwise identical for every M and every content of the other rows: one kernel for every M (the
  /// architecture's invariant kernel: TensorCoreDeterministic, or DeterministicF32 without matrix cores) with a K
  /// split fixed for the layer. Implies deterministic; never uses cuBLAS.
  bool batch_invariant = false;
  /// Rows of K per block, fixed for every call (a positive multiple of the kernel's rows per stage: 128 for the
  /// matrix-core kernels, 1024 for the SIMT ones), or 0: chosen by the scheduler per call (batch_invariant: the split
  /// the scheduler chooses at M = 1 on this device, then kept). A fixed value makes the K split, and so the bits,
  /// independent of the GPU's SM count: with batch_invariant, identical bits on every GPU of one architecture.
  int rows_of_k_per_block = 0;
  /// The element type of A and C in the calls (fp16 or bf16): the dispatcher chooses among the kernels built for it
  /// (host/dispatch_kernels.hpp: the bf16 list has no build of the paper's fp16-chain kernels), and refuses a call of
  /// the other type.
  ElementType dtype = ElementType::kFp16;
  /// The largest M the engine will send: Dispatcher::workspace_bytes() covers every M up to it, and larger calls are
  /// refused.
  int max_m = 4096;
};

/// @ingroup host_api
/// The most rows one Dispatcher call takes (the limit of the matrix-core kernels' grid: 65535 chunks of 64 rows).
inline constexpr int kMaxDispatchM = 65535 * 64;

/// @ingroup host_api
/// Checks the options; the message names the field.
constexpr Status check_dispatch_options(const DispatchOptions& o) {
  if (o.accumulation != Accumulation::kFp32 && o.accumulation != Accumulation::kFp16RangeScaled &&
      o.accumulation != Accumulation::kFp32PerKBlock && o.accumulation != Accumulation::kFp16Partials)
    return detail::invalid("options.accumulation: not an Accumulation value");
  if (o.dtype != ElementType::kFp16 && o.dtype != ElementType::kBf16)
    return detail::invalid("options.dtype: not an ElementType (ElementType::kFp16 or ElementType::kBf16)");
  if (o.rows_of_k_per_block < 0)
    return detail::invalid("options.rows_of_k_per_block: must be >= 0 (0: chosen by the scheduler)");
  if (o.max_m < 1) return detail::invalid("options.max_m: must be >= 1 (the largest M the engine will send)");
  if (o.max_m > kMaxDispatchM) return detail::invalid("options.max_m: larger than kMaxDispatchM (4194240 rows)");
  return Status::success();
}

/// @ingroup host_api
/// Whether a kernel (its build for options.dtype) meets the options.
constexpr bool meets_options(KernelChoice k, const DispatchOptions& o) {
  const KernelInfo info = kernel_info(k, o.dtype);
  if (static_cast<int>(info.accumulation) > static_cast<int>(o.accumulation)) return false;
  if ((o.deterministic || o.batch_invariant) && !info.deterministic) return false;
  if (o.batch_invariant && !info.batch_invariant) return false;
  return true;
}

/// @ingroup host_api
/// The kernels of `runnable` (built into the program and supported by the device) that meet the options.
constexpr KernelSet allowed_kernels(const DispatchOptions& o, KernelSet runnable) {
  KernelSet allowed;
  for (int i = 0; i < kKernelChoiceCount; ++i) {
    const auto k = static_cast<KernelChoice>(i);
    if (runnable.contains(k) && meets_options(k, o)) allowed = allowed.with(k);
  }
  return allowed;
}

/// @ingroup host_api
/// The kernels of `built` that a device of architecture `arch` runs (matrix-core kernels need its matrix
/// instructions; cuBLAS needs an NVIDIA GPU).
constexpr KernelSet runnable_kernels(KernelSet built, const GpuArch& arch) {
  KernelSet runnable;
  for (int i = 0; i < kKernelChoiceCount; ++i) {
    const auto k = static_cast<KernelChoice>(i);
    const KernelInfo info = kernel_info(k);
    const bool device_ok = (!info.needs_matrix_cores || arch.has_matrix_cores()) &&
                           (!info.needs_cublas || arch.vendor == GpuVendor::kNvidia);
    if (built.contains(k) && device_ok) runnable = runnable.with(k);
  }
  return runnable;
}

/// @ingroup host_api
/// The kernel a Dispatcher with these options runs for a call of `m` rows on a layer of `weight_bytes` bytes:
/// batch-invariant Dispatchers run the table's invariant kernel for every M (a kernel that changed with M would
/// change the bits); the others take the first rule of `table` whose kernel is allowed (choose_kernel()). `runnable`
/// must contain DeterministicF32 (the library's universal kernel: every build has it, every device runs it, and it
/// meets every option).
constexpr KernelChoice choose_kernel(const DispatchTable& table, const DispatchOptions& o, KernelSet runnable, int m,
                                     std::int64_t weight_bytes, bool act_order) {
  const KernelSet allowed = allowed_kernels(o, runnable);
  if (o.batch_invariant) return allowed.contains(table.invariant) ? table.invariant : KernelChoice::kDeterministicF32;
  return choose_kernel(table, m, weight_bytes, act_order, allowed);
}

OPT4GPTQ_NAMESPACE_END
