#pragma once
// Layers and calls whose pointers are fake addresses (never dereferenced), for the host tests of the argument checks.
// Plain C++ (weights.hpp and problem.hpp only), so that the g++ test and the GPU-compiled tests share it.

#include <opt4gptq/problem.hpp>
#include <opt4gptq/weights.hpp>

#include <cstdint>

namespace test {

template <class T>
T* fake(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

/// A valid 4096 x 4096 layer with group size 128 and v2 zeros, its pointers 256-byte aligned and 256 MiB apart.
inline opt4gptq::QuantizedWeights valid_weights() {
  opt4gptq::QuantizedWeights w;
  w.k = 4096;
  w.n = 4096;
  w.qweight = fake<const std::int32_t>(0x20000000);
  w.qzeros = fake<const std::int32_t>(0x30000000);
  w.scales = fake<const opt4gptq::half>(0x40000000);
  w.group_size = 128;
  w.zero_format = opt4gptq::ZeroPointFormat::kGptqV2;
  return w;
}

/// A call and the layer it refers to, owned together: `problem()` points at this object's own `weights`, and a copy's
/// at the copy's (a copy never refers to the layer of the object it was copied from). A test that points the
/// problem's `weights` elsewhere keeps that pointer through copies. `problem()` of a temporary does not compile: it
/// would point at weights about to be destroyed.
class FakeCall {
 public:
  opt4gptq::QuantizedWeights weights;

  FakeCall() { problem_.weights = &weights; }
  FakeCall(const FakeCall& other) : weights(other.weights), problem_(other.problem_) { repoint(other); }
  FakeCall& operator=(const FakeCall& other) {
    weights = other.weights;
    problem_ = other.problem_;
    repoint(other);
    return *this;
  }

  opt4gptq::GemmProblem& problem() & { return problem_; }
  const opt4gptq::GemmProblem& problem() const& { return problem_; }
  opt4gptq::GemmProblem& problem() && = delete;

 private:
  void repoint(const FakeCall& other) {
    if (other.problem_.weights == &other.weights) problem_.weights = &weights;
  }

  opt4gptq::GemmProblem problem_;
};

/// A valid call of 5 rows on valid_weights(): A and C at fake addresses clear of the layer's tensors.
inline FakeCall valid_call() {
  FakeCall f;
  f.weights = valid_weights();
  f.problem().m = 5;
  f.problem().a = fake<const opt4gptq::half>(0x10000000);
  f.problem().c = fake<opt4gptq::half>(0x50000000);
  return f;
}

/// The view prepare_act_order() would give for a layer of (k, n, num_groups), at fake addresses.
inline opt4gptq::PreparedActOrder fake_act_order(int k, int n, int num_groups) {
  opt4gptq::PreparedActOrder ao;
  ao.qweight = fake<const std::int32_t>(0x60000000);
  ao.perm = fake<const std::int32_t>(0x70000000);
  ao.word_group = fake<const std::int32_t>(0x80000000);
  ao.info = fake<const std::int32_t>(0x90000000);
  ao.k = k;
  ao.n = n;
  ao.num_groups = num_groups;
  ao.k_rows_max = static_cast<int>(opt4gptq::PreparedActOrder::rows_max(k, num_groups));
  return ao;
}

}  // namespace test
