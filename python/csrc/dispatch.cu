// Which kernel runs a call, and launching it by name: the one place where the package chooses a kernel.

#include <cstring>

#include <opt4gptq/dispatch/sm90_h200.hpp>
#include <opt4gptq/dispatch_table.hpp>

#include "backend.h"
#include "run_preset.cuh"

namespace opt4gptq_torch {

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

Kernel resolve_kernel(Kernel requested, int m, int k, int n, int num_groups, bool act_order) {
  if (requested != Kernel::kAuto) return requested;
  // The measured H200 table (dispatch/sm90_h200.hpp), whatever the GPU: it is the only table so far. When the runtime
  // dispatcher (opt4gptq::Dispatcher, host/dispatcher.hpp on branch `dispatch`) lands, it replaces these lines: it
  // knows the device's architecture and owns the choice (and its workspace); nothing else in the package chooses.
  const opt4gptq::KernelChoice choice = opt4gptq::choose_kernel(
      opt4gptq::dispatch::kSm90H200, m, opt4gptq::layer_weight_bytes(k, n, num_groups), act_order);
  switch (choice) {
    case opt4gptq::KernelChoice::kBaseline: return Kernel::kBaseline;
    case opt4gptq::KernelChoice::kOpt4Gptq: return Kernel::kOpt4Gptq;
    case opt4gptq::KernelChoice::kDeterministic: return Kernel::kDeterministic;
    case opt4gptq::KernelChoice::kTensorCore: return Kernel::kTensorCore;
    case opt4gptq::KernelChoice::kTensorCoreDeterministic: return Kernel::kTensorCoreDeterministic;
    // Kernels the package does not build yet (one translation unit per preset in csrc/presets/): the nearest one it
    // has, until the package runs opt4gptq::Dispatcher (<opt4gptq/dispatcher.hpp>) itself.
    case opt4gptq::KernelChoice::kTensorCorePipelined: return Kernel::kTensorCore;
    case opt4gptq::KernelChoice::kDeterministicF32:
    case opt4gptq::KernelChoice::kDecode:
    case opt4gptq::KernelChoice::kTensorCorePipelinedDeterministic:
    case opt4gptq::KernelChoice::kDequantCublas: return Kernel::kTensorCoreDeterministic;
  }
  return Kernel::kTensorCoreDeterministic;  // not reached: every KernelChoice is mapped above
}

opt4gptq::Status launch_by_name(const opt4gptq::GemmProblem& p, Kernel kernel, Workspace& workspace,
                                cudaStream_t stream, Kernel* ran) {
  if (p.weights == nullptr) return opt4gptq::Status::error(opt4gptq::StatusCode::kNullPointer, "problem.weights: null");
  const opt4gptq::QuantizedWeights& w = *p.weights;
  const Kernel k = resolve_kernel(kernel, p.m, w.k, w.n, w.groups(), w.act_order != nullptr);
  if (ran != nullptr) *ran = k;
  switch (k) {
    case Kernel::kBaseline: return run_baseline(p, workspace, stream);
    case Kernel::kSmb: return run_smb(p, workspace, stream);
    case Kernel::kVml: return run_vml(p, workspace, stream);
    case Kernel::kIla: return run_ila(p, workspace, stream);
    case Kernel::kOpt4Gptq: return run_opt4gptq(p, workspace, stream);
    case Kernel::kDeterministic: return run_deterministic(p, workspace, stream);
    case Kernel::kTensorCore: return run_tensorcore(p, workspace, stream);
    case Kernel::kTensorCoreDeterministic: return run_tensorcore_deterministic(p, workspace, stream);
    case Kernel::kAuto: break;
  }
  return opt4gptq::Status::error(opt4gptq::StatusCode::kInvalidArgument, "kernel: not resolved");
}

}  // namespace opt4gptq_torch
