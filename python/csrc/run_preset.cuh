#pragma once
// One preset's launch, as every presets/*.cu translation unit instantiates it: plan once, take a workspace only when
// the plan needs one, launch under that plan (no second planning).

#include <opt4gptq/opt4gptq.hpp>

#include "backend.h"

namespace opt4gptq_torch {

template <class Gemm>
opt4gptq::Status run_preset(const opt4gptq::GemmProblem& problem, Workspace& workspace, cudaStream_t stream) {
  opt4gptq::Plan plan;
  opt4gptq::Status s = opt4gptq::plan<Gemm>(problem, &plan);
  if (!s.ok()) return s;
  void* ws = nullptr;
  if (plan.workspace_bytes > 0) {
    ws = workspace.zeroed(plan.workspace_bytes);
    if (ws == nullptr)
      return opt4gptq::Status::error(opt4gptq::StatusCode::kRuntimeError, "workspace: allocation failed");
  }
  return opt4gptq::launch<Gemm>(plan, problem, ws, plan.workspace_bytes, stream);
}

// Defined in presets/<name>.cu, one per translation unit (each instantiates all of one preset's entry points); the bf16
// builds (presets::Bf16*, for problems with dtype = ElementType::kBf16) in presets/<name>_bf16.cu, one translation unit
// each too, so that ninja builds them beside the fp16 ones.
opt4gptq::Status run_baseline(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_smb(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_vml(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_ila(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_opt4gptq(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_deterministic(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_tensorcore(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_tensorcore_deterministic(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_deterministic_f32(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_decode(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_tensorcore_pipelined(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_tensorcore_pipelined_deterministic(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_deterministic_f32_bf16(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_decode_bf16(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_tensorcore_bf16(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_tensorcore_deterministic_bf16(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_tensorcore_pipelined_bf16(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);
opt4gptq::Status run_tensorcore_pipelined_deterministic_bf16(const opt4gptq::GemmProblem&, Workspace&, cudaStream_t);

}  // namespace opt4gptq_torch
