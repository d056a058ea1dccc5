// problem.hpp, format.hpp and status.hpp in a plain C++ translation unit, compiled by the host C++ compiler (g++):
// an engine's loader, built without a GPU compiler, fills a GemmProblem for a layer and checks it.

#include <catch2/catch.hpp>

#include <cstdint>
#include <opt4gptq/format.hpp>
#include <opt4gptq/problem.hpp>
#include <opt4gptq/status.hpp>
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

TEST_CASE("a loader fills and checks a GemmProblem without a GPU compiler", "[host][plain-cxx]") {
  GemmProblem p = test::valid_problem();
  p.n = 11008;
  p.zero_format = ZeroPointFormat::kGptqV1;
  CHECK(check_problem(p).ok());
  CHECK(p.groups() == 32);

  GemmProblem bad = p;
  bad.group_size = 100;
  CHECK(check_problem(bad).code == StatusCode::kUnsupported);
  CHECK(names(check_problem(bad), "problem.group_size"));
  bad = p;
  bad.scales = nullptr;
  CHECK(names(check_problem(bad), "problem.scales"));
  bad = p;
  bad.c = fake<half>(0x10000000);
  CHECK(names(check_problem(bad), "problem.c: overlaps problem.a"));
  bad = p;
  bad.m = 0;  // a no-op: A and C may be absent
  bad.a = nullptr;
  bad.c = nullptr;
  CHECK(check_problem(bad).ok());

  // An act-order layer's view, as prepare_act_order() describes it.
  PreparedActOrder ao = test::fake_act_order(p.k, p.n, 32);
  p.act_order = &ao;
  p.qweight = nullptr;
  CHECK(check_problem(p).ok());
  ao.k_rows_max = 0;
  CHECK(names(check_problem(p), "problem.act_order: inconsistent"));

  // The zero-point words of the format, host side.
  CHECK(format::zero_word(0x676FE3F7u, ZeroPointFormat::kGptqV1) == 0x7880F508u);
  CHECK(format::stored_zero_word(0x7880F508u, ZeroPointFormat::kGptqV1) == 0x676FE3F7u);
}
