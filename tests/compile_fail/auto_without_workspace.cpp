// Expected to fail: presets::Auto launched through the two-argument launch(problem, stream). The kernel it chooses may
// need a workspace (the deterministic kernels, the prefill path), so that form is deleted for Auto.
#include <opt4gptq/dispatcher.hpp>
opt4gptq::Status run(const opt4gptq::GemmProblem& p) { return opt4gptq::launch<opt4gptq::presets::Auto>(p, nullptr); }
