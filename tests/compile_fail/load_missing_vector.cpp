// Expected to fail: the LoadPolicy does not say how many halves it loads.
#include <opt4gptq/opt4gptq.hpp>
struct BadLoad {
  __device__ static void load(const opt4gptq::half*, opt4gptq::half (&)[2]) {}
};
opt4gptq::Status run(const opt4gptq::GemmProblem& p) {
  return opt4gptq::launch<opt4gptq::DequantGemm<BadLoad, opt4gptq::ReduceSharedBuffered, opt4gptq::MathBuiltin>>(
      p, nullptr);
}
