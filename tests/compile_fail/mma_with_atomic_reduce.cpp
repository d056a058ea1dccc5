// Expected to fail: the matrix-core mainloop's accumulators are fragments, so its ReducePolicy must commit a
// block's sums from shared memory; ReduceGlobalAtomic adds per thread and cannot.
#include <opt4gptq/opt4gptq.hpp>
opt4gptq::Status run(const opt4gptq::GemmProblem& p) {
  return opt4gptq::launch<opt4gptq::MmaGemm<opt4gptq::LoadVec8, opt4gptq::ReduceGlobalAtomic>>(p, nullptr);
}
