// Which kernel runs a call, and launching it by name: the one place where the package chooses a kernel. The choice is
// the library's dispatcher (its per-architecture tables, options and choose_kernel); the launch goes to one
// translation unit per kernel (presets/*.cu) so that ninja compiles them in parallel, which the library's
// all-kernels Dispatcher type (<opt4gptq/dispatcher.hpp>, one translation unit) would not allow.

#include <cstring>

#include <opt4gptq/dispatch/tables.hpp>
#include <opt4gptq/dispatch_options.hpp>
#include <opt4gptq/dispatch_table.hpp>
#include <opt4gptq/host/dequantize.hpp>
#include <opt4gptq/host/device_info.hpp>
#include <opt4gptq/host/dispatch_kernels.hpp>

#include "backend.h"
#include "run_preset.cuh"

namespace opt4gptq_torch {
namespace {

/// The package's kernels as the dispatcher names them (kernels outside the dispatcher's list, the paper's SMB, VML
/// and ILA ablation presets, map to nothing: auto never chooses them).
struct ChoiceName {
  Kernel kernel;
  opt4gptq::KernelChoice choice;
};
constexpr ChoiceName kDispatcherKernels[] = {
    {Kernel::kBaseline, opt4gptq::KernelChoice::kBaseline},
    {Kernel::kOpt4Gptq, opt4gptq::KernelChoice::kOpt4Gptq},
    {Kernel::kDeterministic, opt4gptq::KernelChoice::kDeterministic},
    {Kernel::kDeterministicF32, opt4gptq::KernelChoice::kDeterministicF32},
    {Kernel::kDecode, opt4gptq::KernelChoice::kDecode},
    {Kernel::kTensorCore, opt4gptq::KernelChoice::kTensorCore},
    {Kernel::kTensorCoreDeterministic, opt4gptq::KernelChoice::kTensorCoreDeterministic},
    {Kernel::kTensorCorePipelined, opt4gptq::KernelChoice::kTensorCorePipelined},
    {Kernel::kTensorCorePipelinedDeterministic, opt4gptq::KernelChoice::kTensorCorePipelinedDeterministic},
    // The library's prefill path is dequantize + cuBLAS (host/dequant_cublas.hpp); the package runs the same two steps
    // with PyTorch's matmul (its cuBLAS), so it links no second cuBLAS.
    {Kernel::kDequantMatmul, opt4gptq::KernelChoice::kDequantCublas},
};

/// The dispatcher's kernels this package builds for calls of element type `dtype` (bf16: those of kBf16Kernels).
constexpr opt4gptq::KernelSet package_kernels(opt4gptq::ElementType dtype) {
  opt4gptq::KernelSet set;
  for (const ChoiceName& c : kDispatcherKernels)
    if (dtype != opt4gptq::ElementType::kBf16 || has_bf16_build(c.kernel)) set = set.with(c.choice);
  return set;
}
static_assert(package_kernels(opt4gptq::ElementType::kFp16).contains(opt4gptq::KernelChoice::kDeterministicF32) &&
                  package_kernels(opt4gptq::ElementType::kBf16).contains(opt4gptq::KernelChoice::kDeterministicF32),
              "the package must build DeterministicF32 (and its bf16 build): the dispatcher's kernel for every option");

/// Whether every kernel of `ours` but the prefill path (which the package runs with PyTorch's matmul, and the library
/// lists only with cuBLAS) is in `library`.
constexpr bool library_builds(opt4gptq::KernelSet ours, opt4gptq::KernelSet library) {
  for (int i = 0; i < opt4gptq::kKernelChoiceCount; ++i) {
    const auto k = static_cast<opt4gptq::KernelChoice>(i);
    if (k != opt4gptq::KernelChoice::kDequantCublas && ours.contains(k) && !library.contains(k)) return false;
  }
  return true;
}
// The package's lists agree with the library's (host/dispatch_kernels.hpp): a kernel the library has no build of for a
// type (the paper's fp16-chain kernels in bf16) must not be offered to auto for that type.
static_assert(library_builds(package_kernels(opt4gptq::ElementType::kFp16),
                             opt4gptq::built_kernels(opt4gptq::ElementType::kFp16)),
              "an fp16 kernel of the package is not in the library's fp16 dispatcher list");
static_assert(library_builds(package_kernels(opt4gptq::ElementType::kBf16),
                             opt4gptq::built_kernels(opt4gptq::ElementType::kBf16)),
              "a kernel of kBf16Kernels (backend.h) has no bf16 build in the library's dispatcher list");

/// A bf16 call of a kernel without a bf16 build (ops.cpp refuses these by name before launching).
opt4gptq::Status no_bf16_build() {
  return opt4gptq::Status::error(opt4gptq::StatusCode::kUnsupported,
                                 "kernel: has no bf16 build (the paper's fp16-chain kernels); see kBf16Kernels");
}

}  // namespace

const char* kernel_name(Kernel kernel) {
  switch (kernel) {
    case Kernel::kAuto: return "auto";
    case Kernel::kBaseline: return "baseline";
    case Kernel::kSmb: return "smb";
    case Kernel::kVml: return "vml";
    case Kernel::kIla: return "ila";
    case Kernel::kOpt4Gptq: return "opt4gptq";
    case Kernel::kDeterministic: return "deterministic";
    case Kernel::kTensorCore: return "tensorcore";
    case Kernel::kTensorCoreDeterministic: return "tensorcore_deterministic";
    case Kernel::kDeterministicF32: return "deterministic_f32";
    case Kernel::kDecode: return "decode";
    case Kernel::kTensorCorePipelined: return "tensorcore_pipelined";
    case Kernel::kTensorCorePipelinedDeterministic: return "tensorcore_pipelined_deterministic";
    case Kernel::kDequantMatmul: return "dequant_matmul";
  }
  return "?";
}

bool parse_kernel(const char* name, Kernel* kernel) {
  for (Kernel k : kAllKernels)
    if (std::strcmp(name, kernel_name(k)) == 0) {
      *kernel = k;
      return true;
    }
  return false;
}

Kernel resolve_kernel(Kernel requested, int m, int k, int n, int num_groups, bool act_order,
                      opt4gptq::ElementType dtype, opt4gptq::Status* status) {
  if (status != nullptr) *status = opt4gptq::Status::success();
  if (requested != Kernel::kAuto) return requested;
  opt4gptq::DeviceInfo device;
  const opt4gptq::Status s = opt4gptq::current_device_info(&device);  // cached per device after the first call
  if (!s.ok()) {
    if (status != nullptr) *status = s;
    return Kernel::kDeterministicF32;
  }
  opt4gptq::DispatchOptions options;  // the defaults (overflow-safe), for calls of this element type
  options.dtype = dtype;
  // A table's rule naming a kernel without a bf16 build is skipped for bf16 calls (not in the set): the next rule for
  // the same calls decides, as for a kernel the device cannot run.
  const opt4gptq::KernelChoice choice =
      opt4gptq::choose_kernel(opt4gptq::dispatch::table_for(device.arch), options,
                              opt4gptq::runnable_kernels(package_kernels(dtype), device.arch), m > 0 ? m : 1,
                              opt4gptq::layer_weight_bytes(k, n, num_groups), act_order);
  for (const ChoiceName& c : kDispatcherKernels)
    if (c.choice == choice) return c.kernel;
  return Kernel::kDeterministicF32;  // not reached: choose_kernel returns a kernel of the set it was given
}

opt4gptq::Status launch_kernel(const opt4gptq::GemmProblem& p, Kernel kernel, Workspace& workspace,
                               cudaStream_t stream) {
  const bool bf16 = p.dtype == opt4gptq::ElementType::kBf16;  // the bf16 build of the kernel (kBf16Kernels)
  switch (kernel) {
    case Kernel::kBaseline: return bf16 ? no_bf16_build() : run_baseline(p, workspace, stream);
    case Kernel::kSmb: return bf16 ? no_bf16_build() : run_smb(p, workspace, stream);
    case Kernel::kVml: return bf16 ? no_bf16_build() : run_vml(p, workspace, stream);
    case Kernel::kIla: return bf16 ? no_bf16_build() : run_ila(p, workspace, stream);
    case Kernel::kOpt4Gptq: return bf16 ? no_bf16_build() : run_opt4gptq(p, workspace, stream);
    case Kernel::kDeterministic: return bf16 ? no_bf16_build() : run_deterministic(p, workspace, stream);
    case Kernel::kTensorCore:
      return bf16 ? run_tensorcore_bf16(p, workspace, stream) : run_tensorcore(p, workspace, stream);
    case Kernel::kTensorCoreDeterministic:
      return bf16 ? run_tensorcore_deterministic_bf16(p, workspace, stream)
                  : run_tensorcore_deterministic(p, workspace, stream);
    case Kernel::kDeterministicF32:
      return bf16 ? run_deterministic_f32_bf16(p, workspace, stream) : run_deterministic_f32(p, workspace, stream);
    case Kernel::kDecode: return bf16 ? run_decode_bf16(p, workspace, stream) : run_decode(p, workspace, stream);
    case Kernel::kTensorCorePipelined:
      return bf16 ? run_tensorcore_pipelined_bf16(p, workspace, stream)
                  : run_tensorcore_pipelined(p, workspace, stream);
    case Kernel::kTensorCorePipelinedDeterministic:
      return bf16 ? run_tensorcore_pipelined_deterministic_bf16(p, workspace, stream)
                  : run_tensorcore_pipelined_deterministic(p, workspace, stream);
    case Kernel::kAuto:
    case Kernel::kDequantMatmul: break;
  }
  return opt4gptq::Status::error(opt4gptq::StatusCode::kInvalidArgument,
                                 "kernel: auto and dequant_matmul are resolved by the caller (backend.h)");
}

opt4gptq::Status dequantize_layer(const opt4gptq::QuantizedWeights& weights, void* out, opt4gptq::ElementType dtype,
                                  cudaStream_t stream) {
  return opt4gptq::dequantize(weights, out, 0, dtype, stream);
}

}  // namespace opt4gptq_torch
