// Expected to fail: the LoadPolicy spells its member `Load`.
#include <opt4gptq/opt4gptq.hpp>
struct BadLoad {
  static constexpr int kVectorHalves = 2;
  __device__ static void Load(const opt4gptq::half*, opt4gptq::half (&)[2]) {}
};
opt4gptq::Status run(const opt4gptq::GemmProblem& p) {
  return opt4gptq::launch<opt4gptq::DequantGemm<BadLoad, opt4gptq::ReduceSharedBuffered, opt4gptq::MathBuiltin>>(
      p, nullptr);
}
