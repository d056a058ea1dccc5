// Expected to fail: a ReducePolicy that needs a workspace (ReduceSharedSerial, the Deterministic preset) launched
// through the two-argument launch(problem, stream).
#include <opt4gptq/opt4gptq.hpp>
opt4gptq::Status run(const opt4gptq::GemmProblem& p) {
  return opt4gptq::launch<opt4gptq::presets::Deterministic>(p, nullptr);
}
