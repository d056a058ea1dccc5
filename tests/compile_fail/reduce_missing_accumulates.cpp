// Expected to fail: the ReducePolicy does not say whether the host must zero C.
#include <opt4gptq/opt4gptq.hpp>
struct BadReduce {
  template <class Tile, int kRows>
  struct SharedStorage {};
  template <class Tile, int kRows>
  __device__ static void reduce(SharedStorage<Tile, kRows>&, const float (&)[kRows][4], const opt4gptq::ThreadOutput&) {
  }
};
opt4gptq::Status run(const opt4gptq::GemmProblem& p) {
  return opt4gptq::launch<opt4gptq::DequantGemm<opt4gptq::LoadHalf2, BadReduce, opt4gptq::MathBuiltin>>(p, nullptr);
}
