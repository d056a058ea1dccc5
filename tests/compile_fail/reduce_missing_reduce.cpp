// Expected to fail: the ReducePolicy has no reduce().
#include <opt4gptq/opt4gptq.hpp>
struct BadReduce {
  template <class Tile, int kRows>
  struct SharedStorage {};
  static constexpr bool accumulates_into_output(int) { return true; }
};
opt4gptq::Status run(const opt4gptq::GemmProblem& p) {
  return opt4gptq::launch<opt4gptq::DequantGemm<opt4gptq::LoadHalf2, BadReduce, opt4gptq::MathBuiltin>>(p, nullptr);
}
