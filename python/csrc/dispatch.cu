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

constexpr opt4gptq::KernelSet package_kernels() {
  opt4gptq::KernelSet set;
  for (const ChoiceName& c : kDispatcherKernels) set = set.with(c.choice);
  return set;
}
static_assert(package_kernels().contains(opt4gptq::KernelChoice::kDeterministicF32),
              "the package must build DeterministicF32: the dispatcher's kernel for every option");

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

Kernel resolve_kernel(Kernel requested, int m, int k, int n, int num_groups, bool act_order, opt4gptq::Status* status) {
  if (status != nullptr) *status = opt4gptq::Status::success();
  if (requested != Kernel::kAuto) return requested;
  opt4gptq::DeviceInfo device;
  const opt4gptq::Status s = opt4gptq::current_device_info(&device);  // cached per device after the first call
  if (!s.ok()) {
    if (status != nullptr) *status = s;
    return Kernel::kDeterministicF32;
  }
  const opt4gptq::KernelChoice choice =
      opt4gptq::choose_kernel(opt4gptq::dispatch::table_for(device.arch), opt4gptq::DispatchOptions{},
                              opt4gptq::runnable_kernels(package_kernels(), device.arch), m > 0 ? m : 1,
                              opt4gptq::layer_weight_bytes(k, n, num_groups), act_order);
  for (const ChoiceName& c : kDispatcherKernels)
    if (c.choice == choice) return c.kernel;
  return Kernel::kDeterministicF32;  // not reached: choose_kernel returns a kernel of the set it was given
}

opt4gptq::Status launch_kernel(const opt4gptq::GemmProblem& p, Kernel kernel, Workspace& workspace,
                               cudaStream_t stream) {
  switch (kernel) {
    case Kernel::kBaseline: return run_baseline(p, workspace, stream);
    case Kernel::kSmb: return run_smb(p, workspace, stream);
    case Kernel::kVml: return run_vml(p, workspace, stream);
    case Kernel::kIla: return run_ila(p, workspace, stream);
    case Kernel::kOpt4Gptq: return run_opt4gptq(p, workspace, stream);
    case Kernel::kDeterministic: return run_deterministic(p, workspace, stream);
    case Kernel::kTensorCore: return run_tensorcore(p, workspace, stream);
    case Kernel::kTensorCoreDeterministic: return run_tensorcore_deterministic(p, workspace, stream);
    case Kernel::kDeterministicF32: return run_deterministic_f32(p, workspace, stream);
    case Kernel::kDecode: return run_decode(p, workspace, stream);
    case Kernel::kTensorCorePipelined: return run_tensorcore_pipelined(p, workspace, stream);
    case Kernel::kTensorCorePipelinedDeterministic: return run_tensorcore_pipelined_deterministic(p, workspace, stream);
    case Kernel::kAuto:
    case Kernel::kDequantMatmul: break;
  }
  return opt4gptq::Status::error(opt4gptq::StatusCode::kInvalidArgument,
                                 "kernel: auto and dequant_matmul are resolved by the caller (backend.h)");
}

opt4gptq::Status dequantize_layer(const opt4gptq::QuantizedWeights& weights, void* out, cudaStream_t stream) {
  return opt4gptq::dequantize(weights, static_cast<opt4gptq::half*>(out), 0, stream);
}

}  // namespace opt4gptq_torch
