// Expected to fail: 3 halves per load is no vector width.
#include <opt4gptq/opt4gptq.hpp>
struct BadLoad {
  static constexpr int kVectorHalves = 3;
  __device__ static void load(const opt4gptq::half*, opt4gptq::half (&)[3]) {}
};
opt4gptq::Status run(const opt4gptq::GemmProblem& p) {
  return opt4gptq::launch<opt4gptq::DequantGemm<BadLoad, opt4gptq::ReduceSharedBuffered, opt4gptq::MathBuiltin>>(
      p, nullptr);
}
