// presets::Bf16TensorCorePipelined (TensorCorePipelined's bf16 build: bf16 A and C, fp16 scales), all its entry points
// (rows of M per block, with and without act-order) in one translation unit.
#include "../run_preset.cuh"

namespace opt4gptq_torch {
opt4gptq::Status run_tensorcore_pipelined_bf16(const opt4gptq::GemmProblem& problem, Workspace& workspace,
                                               cudaStream_t stream) {
  return run_preset<opt4gptq::presets::Bf16TensorCorePipelined>(problem, workspace, stream);
}
}  // namespace opt4gptq_torch
