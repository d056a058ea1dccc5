// Expected to fail: the MathPolicy has add2 but no fma2.
#include <opt4gptq/opt4gptq.hpp>
struct BadMath {
  __device__ static opt4gptq::half2 add2(opt4gptq::half2 a, opt4gptq::half2 b) { return __hadd2(a, b); }
};
opt4gptq::Status run(const opt4gptq::GemmProblem& p) {
  return opt4gptq::launch<opt4gptq::DequantGemm<opt4gptq::LoadHalf2, opt4gptq::ReduceGlobalAtomic, BadMath>>(p,
                                                                                                             nullptr);
}
