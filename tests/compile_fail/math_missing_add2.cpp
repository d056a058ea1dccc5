// Expected to fail: the MathPolicy has fma2 but no add2.
#include <opt4gptq/opt4gptq.hpp>
struct BadMath {
  __device__ static opt4gptq::half2 fma2(opt4gptq::half2 a, opt4gptq::half2 b, opt4gptq::half2 c) {
    return __hfma2(a, b, c);
  }
};
opt4gptq::Status run(const opt4gptq::GemmProblem& p) {
  return opt4gptq::launch<opt4gptq::DequantGemm<opt4gptq::LoadHalf2, opt4gptq::ReduceGlobalAtomic, BadMath>>(p,
                                                                                                             nullptr);
}
