// Expected to fail: a bf16 kernel's ReducePolicy must round its outputs to bf16; the example's ReduceSharedAtomics
// writes fp16 pairs (it takes const ThreadOutput&, which a ThreadOutputBf16 would bind to) and does not declare
// kWritesBf16, so the kernel refuses it instead of writing fp16 bits into a bf16 tensor.
#include <opt4gptq/opt4gptq.hpp>

#include "../../examples/custom_policies.hpp"
opt4gptq::Status run(const opt4gptq::GemmProblem& p, void* workspace, std::size_t bytes) {
  using Gemm = opt4gptq::DequantGemmOf<opt4gptq::ElementBf16, opt4gptq::LoadVec8, user::ReduceSharedAtomics,
                                       opt4gptq::MathDot2F32>;
  return opt4gptq::launch<Gemm>(p, workspace, bytes, nullptr);
}
