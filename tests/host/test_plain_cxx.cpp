// weights.hpp, problem.hpp, format.hpp and status.hpp in a plain C++ translation unit, compiled by the host C++
// compiler (g++): an engine's loader, built without a GPU compiler, fills a QuantizedWeights for a layer and checks
// it, then builds and checks the calls that refer to it.

#include <catch2/catch.hpp>

#include <cstdint>
#include <opt4gptq/format.hpp>
#include <opt4gptq/problem.hpp>
#include <opt4gptq/status.hpp>
#include <opt4gptq/weights.hpp>
#include <string>
#include "fake_problem.hpp"

#if defined(OPT4GPTQ_BACKEND_HIP) || defined(OPT4GPTQ_BACKEND_CUDA) || defined(__CUDACC__) || defined(__HIP__)
#error "this translation unit must be plain C++: no GPU compiler, no platform.hpp"
#endif

using namespace opt4gptq;

namespace {
using test::fake;
bool names(const Status& s, const char* argument) { return std::string(s.message).rfind(argument, 0) == 0; }
}  // namespace

TEST_CASE("a loader checks a layer once, then each call that refers to it", "[host][plain-cxx]") {
  // Load time: the checkpoint's tensors of one layer (device pointers; fake here), checked once.
  QuantizedWeights w;
  w.k = 4096;
  w.n = 11008;
  w.qweight = fake<const std::int32_t>(0x20000000);
  w.qzeros = fake<const std::int32_t>(0x30000000);
  w.scales = fake<const half>(0x40000000);
  w.group_size = 128;
  w.zero_format = ZeroPointFormat::kGptqV1;
  REQUIRE(check_weights(w).ok());
  CHECK(w.bits == 4);
  CHECK(w.groups() == 32);
  CHECK(w.ldq_or_dense() == 11008);
  CHECK(w.ldz_or_dense() == 11008 / 8);
  CHECK(w.lds_or_dense() == 11008);
  CHECK(w.packed() == w.qweight);
  CHECK(w.packed_rows() == 4096);

  // Run time: the call holds M, A and C, and refers to the layer.
  GemmProblem p;
  p.m = 3;
  p.a = fake<const half>(0x10000000);
  p.c = fake<half>(0x50000000);
  p.weights = &w;
  CHECK(check_problem(p).ok());
  CHECK(p.lda_or_dense() == 4096);
  CHECK(p.ldc_or_dense() == 11008);

  // The call sees the layer through its pointer: a layer broken after the call was built fails the call's check
  // with the layer's message.
  w.scales = nullptr;
  CHECK(names(check_weights(w), "weights.scales: null"));
  CHECK(names(check_problem(p), "weights.scales: null"));
  w.scales = fake<const half>(0x40000000);
  CHECK(check_problem(p).ok());
  // A call without a layer.
  p.weights = nullptr;
  CHECK(check_problem(p).code == StatusCode::kNullPointer);
  CHECK(names(check_problem(p), "problem.weights"));
}

TEST_CASE("a loader fills and checks a layer and a call without a GPU compiler", "[host][plain-cxx]") {
  test::FakeCall f = test::valid_call();
  f.weights.n = 11008;
  f.weights.zero_format = ZeroPointFormat::kGptqV1;
  CHECK(check_weights(f.weights).ok());
  CHECK(check_problem(f.problem()).ok());
  CHECK(f.weights.groups() == 32);

  test::FakeCall bad = f;
  REQUIRE(bad.problem().weights == &bad.weights);  // the copy refers to its own layer
  bad.weights.group_size = 100;
  CHECK(check_problem(bad.problem()).code == StatusCode::kUnsupported);
  CHECK(names(check_problem(bad.problem()), "weights.group_size"));
  CHECK(check_problem(f.problem()).ok());  // the original is untouched
  bad = f;
  bad.weights.scales = nullptr;
  CHECK(names(check_problem(bad.problem()), "weights.scales"));
  bad = f;
  bad.problem().c = fake<half>(0x10000000);
  CHECK(names(check_problem(bad.problem()), "problem.c: overlaps problem.a"));
  bad = f;
  bad.problem().m = 0;  // a no-op: A and C may be absent
  bad.problem().a = nullptr;
  bad.problem().c = nullptr;
  CHECK(check_problem(bad.problem()).ok());
  // bf16 tensors: the same call with its element type stated (which kernel runs it is validate()'s question).
  bad = f;
  bad.problem().dtype = ElementType::kBf16;
  CHECK(check_problem(bad.problem()).ok());
  bad.problem().dtype = static_cast<ElementType>(2);
  CHECK(names(check_problem(bad.problem()), "problem.dtype"));

  // An act-order layer's view, as prepare_act_order() describes it.
  QuantizedWeights& w = f.weights;
  PreparedActOrder ao = test::fake_act_order(w.k, w.n, 32);
  w.act_order = &ao;
  w.qweight = nullptr;
  CHECK(check_weights(w).ok());
  CHECK(check_problem(f.problem()).ok());
  CHECK(w.packed() == ao.qweight);
  CHECK(w.packed_rows() == ao.k_rows_max);
  ao.k_rows_max = 0;
  CHECK(names(check_problem(f.problem()), "weights.act_order: inconsistent"));

  // The zero-point words of the format, host side.
  CHECK(format::zero_word(0x676FE3F7u, ZeroPointFormat::kGptqV1) == 0x7880F508u);
  CHECK(format::stored_zero_word(0x7880F508u, ZeroPointFormat::kGptqV1) == 0x676FE3F7u);
}
