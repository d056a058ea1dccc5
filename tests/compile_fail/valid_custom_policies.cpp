// The control: the same kind of TU with valid user policies compiles (so the failures above are the checks).
#include "../../examples/custom_policies.hpp"
opt4gptq::Status run(const opt4gptq::GemmProblem& p) { return opt4gptq::launch<user::CustomGemm>(p, nullptr); }
