// validate() and the host API's argument checks: every message, each with the argument it names. No GPU needed:
// the pointers are never dereferenced because validation fails (or, for the one valid problem, nothing launches).

#include <opt4gptq/opt4gptq.hpp>

#include "fake_problem.hpp"

#include <cstdint>
#include <string>

#include <catch2/catch.hpp>

using namespace opt4gptq;

namespace {

using test::fake;
using test::valid_problem;

template <class Gemm>
void expect(const GemmProblem& p, StatusCode code, const std::string& names) {
  const Status s = validate<Gemm>(p);
  INFO("message: " << s.message);
  CHECK(s.code == code);
  CHECK(std::string(s.message).rfind(names, 0) == 0);  // the message starts with the argument's name
}

}  // namespace

TEST_CASE("validate accepts a valid problem, with and without strides", "[host][validate]") {
  GemmProblem p = valid_problem();
  CHECK(validate<presets::Baseline>(p).ok());
  CHECK(validate<presets::Opt4Gptq>(p).ok());
  p.lda = 8192;
  p.ldq = 8192;
  p.ldz = 1024;
  p.lds = 8192;
  p.ldc = 4104;
  p.group_size = -1;
  CHECK(validate<presets::Opt4Gptq>(p).ok());
  p.group_size = 32;
  p.num_groups = 128;
  CHECK(validate<presets::Opt4Gptq>(p).ok());
}

TEST_CASE("validate names the bad size or format argument", "[host][validate]") {
  using G = presets::Opt4Gptq;
  GemmProblem p = valid_problem();
  p.m = -1;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.m");
  p = valid_problem();
  p.m = 600000;
  p.c = fake<half>(0x100000000000);  // clear of A's 4.9 GB
  expect<G>(p, StatusCode::kInvalidArgument, "problem.m: too large");
  p = valid_problem();
  p.n = 4092;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.n");
  p.n = 0;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.n");
  p = valid_problem();
  p.k = 4100;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.k");
  p.k = -8;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.k");
  p = valid_problem();
  p.k = 4096 + 64;  // multiple of 8, not of the group size
  expect<G>(p, StatusCode::kInvalidArgument, "problem.k: must be a multiple of problem.group_size");
  p = valid_problem();
  p.group_size = 100;
  expect<G>(p, StatusCode::kUnsupported, "problem.group_size");
  p.group_size = 0;
  expect<G>(p, StatusCode::kUnsupported, "problem.group_size");
  p.group_size = -2;
  expect<G>(p, StatusCode::kUnsupported, "problem.group_size");
  p = valid_problem();
  p.zero_format = static_cast<ZeroPointFormat>(3);
  expect<G>(p, StatusCode::kInvalidArgument, "problem.zero_format");
  p = valid_problem();
  p.num_groups = 31;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.num_groups");
  p.num_groups = -1;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.num_groups");
}

TEST_CASE("validate names the null pointer", "[host][validate]") {
  using G = presets::Baseline;
  GemmProblem p = valid_problem();
  p.a = nullptr;
  expect<G>(p, StatusCode::kNullPointer, "problem.a");
  p = valid_problem();
  p.qweight = nullptr;
  expect<G>(p, StatusCode::kNullPointer, "problem.qweight");
  p = valid_problem();
  p.qzeros = nullptr;
  expect<G>(p, StatusCode::kNullPointer, "problem.qzeros");
  p = valid_problem();
  p.scales = nullptr;
  expect<G>(p, StatusCode::kNullPointer, "problem.scales");
  p = valid_problem();
  p.c = nullptr;
  expect<G>(p, StatusCode::kNullPointer, "problem.c");
}

TEST_CASE("validate names strides that are too small", "[host][validate]") {
  using G = presets::Baseline;
  GemmProblem p = valid_problem();
  p.lda = 4000;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.lda");
  p = valid_problem();
  p.ldq = 4000;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.ldq");
  p = valid_problem();
  p.ldz = 500;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.ldz");
  p = valid_problem();
  p.lds = 4000;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.lds");
  p = valid_problem();
  p.ldc = 4000;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.ldc");
}

TEST_CASE("validate checks alignment for the chosen LoadPolicy", "[host][validate]") {
  GemmProblem p = valid_problem();
  p.a = fake<const half>(0x10000002);  // 2-byte aligned: fine for scalar loads, not for half2 or 16-byte loads
  CHECK(validate<presets::Baseline>(p).ok());
  expect<presets::Vml>(p, StatusCode::kMisalignedPointer, "problem.a");
  expect<DequantGemm<LoadVec8, ReduceSharedBuffered, MathBuiltin>>(p, StatusCode::kMisalignedPointer, "problem.a");
  p.a = fake<const half>(0x10000004);  // 4-byte aligned: half2 fine, 16-byte loads not
  CHECK(validate<presets::Vml>(p).ok());
  expect<DequantGemm<LoadVec8, ReduceSharedBuffered, MathBuiltin>>(p, StatusCode::kMisalignedPointer, "problem.a");
  p = valid_problem();
  p.lda = 4097;
  CHECK(validate<presets::Baseline>(p).ok());
  expect<presets::Opt4Gptq>(p, StatusCode::kMisalignedPointer, "problem.lda");

  p = valid_problem();
  p.qweight = fake<const std::int32_t>(0x20000008);
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "problem.qweight");
  p = valid_problem();
  p.ldq = 4098;
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "problem.ldq");
  p = valid_problem();
  p.scales = fake<const half>(0x40000004);
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "problem.scales");
  p = valid_problem();
  p.lds = 4098;
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "problem.lds");
  p = valid_problem();
  p.qzeros = fake<const std::int32_t>(0x30000002);
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "problem.qzeros");
  p = valid_problem();
  p.c = fake<half>(0x50000002);
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "problem.c");
  p = valid_problem();
  p.ldc = 4097;
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "problem.ldc");
}

TEST_CASE("validate checks the act-order layout against the problem", "[host][validate]") {
  using G = presets::Opt4Gptq;
  PreparedActOrder ao = test::fake_act_order(4096, 4096, 32);
  REQUIRE(ao.k_rows_max == 4096 + 7 * 32);
  GemmProblem p = valid_problem();
  p.act_order = &ao;
  p.qweight = nullptr;
  CHECK(validate<G>(p).ok());
  p.k = 4096 + 64;  // act-order: k need not be a multiple of the group size, but must match the layout
  expect<G>(p, StatusCode::kInvalidArgument, "problem.act_order");
  p = valid_problem();
  p.act_order = &ao;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.qweight: must be null");
  p.qweight = nullptr;
  p.n = 2048;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.act_order");
  p.n = 4096;
  p.num_groups = 16;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.num_groups");
  p.num_groups = 0;
  p.ldq = 8192;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.ldq");
  p.ldq = 0;
  ao.perm = nullptr;
  expect<G>(p, StatusCode::kNullPointer, "problem.act_order");
}

TEST_CASE("validate rejects a prepared layout that does not describe itself consistently (F4, F5)",
          "[host][validate]") {
  using G = presets::Opt4Gptq;
  PreparedActOrder ao = test::fake_act_order(4096, 4096, 32);
  GemmProblem p = valid_problem();
  p.act_order = &ao;
  p.qweight = nullptr;
  REQUIRE(validate<G>(p).ok());
  // No rows at all: the split-K planner would divide by zero.
  ao.k_rows_max = 0;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.act_order: inconsistent");
  expect<presets::Deterministic>(p, StatusCode::kInvalidArgument, "problem.act_order: inconsistent");
  // More rows than any buffer for (k, num_groups) holds.
  ao.k_rows_max = 1 << 28;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.act_order: inconsistent");
  ao.k_rows_max = static_cast<int>(PreparedActOrder::rows_max(4096, 32)) - 8;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.act_order: inconsistent");
  // A view with no groups.
  ao.k_rows_max = static_cast<int>(PreparedActOrder::rows_max(4096, 32));
  ao.num_groups = 0;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.act_order: inconsistent");
  // act_order_view() always describes a consistent layout.
  const PreparedActOrder view = act_order_view(fake<void>(0xA0000000), 4096, 4096, 64);
  CHECK(view.k_rows_max == PreparedActOrder::rows_max(4096, 64));
  CHECK(view.info == fake<const std::int32_t>(0xA0000000));  // the header is at offset 0, whatever num_groups
  CHECK(act_order_view(fake<void>(0xA0000000), 4096, 4096, 32).info == view.info);
}

TEST_CASE("validate rejects an output that overlaps an input (F8)", "[host][validate]") {
  using G = presets::Opt4Gptq;
  const GemmProblem base = valid_problem();  // m = 5, n = k = 4096
  GemmProblem p = base;
  p.c = const_cast<half*>(p.a);
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps problem.a");
  p.c = const_cast<half*>(p.a) + 4 * 4096 + 8;  // starts inside A's last row
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps problem.a");
  p.c = const_cast<half*>(p.a) + 5 * 4096;  // right after A: fine
  CHECK(validate<G>(p).ok());
  p.c = reinterpret_cast<half*>(const_cast<std::int32_t*>(p.qweight));
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps problem.qweight");
  p.c = reinterpret_cast<half*>(const_cast<std::int32_t*>(p.qweight) + 511 * 4096);  // inside the last packed row
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps problem.qweight");
  p.c = const_cast<half*>(p.scales) + 31 * 4096 + 4000;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps problem.scales");
  p.c = reinterpret_cast<half*>(const_cast<std::int32_t*>(p.qzeros));
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps problem.qzeros");
  // C ending just before an input does not overlap it.
  p.c = const_cast<half*>(p.scales) - 5 * 4096;
  CHECK(validate<G>(p).ok());
  // A strided C: its rows reach ldc * (m - 1) + n elements.
  p = base;
  p.ldc = 8192;
  p.c = const_cast<half*>(p.a) - 4 * 8192 - 4096 + 8;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps problem.a");
}

TEST_CASE("M = 0 is a successful no-op that touches nothing (F9)", "[host][validate]") {
  GemmProblem p = valid_problem();
  p.m = 0;
  p.a = nullptr;  // an empty tensor may have no storage
  p.c = nullptr;
  CHECK(validate<presets::Opt4Gptq>(p).ok());
  // No GPU is needed: nothing is queried, zero-filled or launched.
  CHECK(launch<presets::Baseline>(p, nullptr).ok());
  CHECK(launch<presets::Opt4Gptq>(p, nullptr).ok());
  CHECK(launch<presets::Deterministic>(p, nullptr, 0, nullptr).ok());
  std::size_t bytes = 123;
  CHECK(workspace_bytes<presets::Deterministic>(p, &bytes).ok());
  CHECK(bytes == 0);
  LaunchShape shape;
  shape.grid_x = 7;
  CHECK(launch_shape<presets::Opt4Gptq>(p, &shape).ok());
  CHECK(shape.grid_x == 0);
  // The weights are still checked.
  p.qzeros = nullptr;
  expect<presets::Opt4Gptq>(p, StatusCode::kNullPointer, "problem.qzeros");
}

TEST_CASE("the library lives in a versioned inline namespace", "[host][api]") {
  STATIC_REQUIRE(std::is_same_v<opt4gptq::GemmProblem, opt4gptq::OPT4GPTQ_ABI_NAMESPACE::GemmProblem>);
  STATIC_REQUIRE(std::is_same_v<opt4gptq::presets::Opt4Gptq, opt4gptq::v0_1::presets::Opt4Gptq>);
}

TEST_CASE("launch returns validate's status and launches nothing for a bad problem", "[host][validate]") {
  GemmProblem p = valid_problem();
  p.k = 12;
  const Status s = launch<presets::Opt4Gptq>(p, nullptr);
  CHECK(s.code == StatusCode::kInvalidArgument);
  CHECK(std::string(s.message).rfind("problem.k", 0) == 0);
  LaunchShape shape;
  CHECK(launch_shape<presets::Baseline>(p, &shape).code == StatusCode::kInvalidArgument);
}

TEST_CASE("prepare_act_order and g_idx helpers name their bad arguments", "[host][validate]") {
  PreparedActOrder out;
  auto* q = fake<const std::int32_t>(0x1000);
  auto* g = fake<const std::int32_t>(0x2000);
  void* buffer = fake<void>(0x100000);
  const std::size_t bytes = act_order_buffer_bytes(1024, 256, 8);
  CHECK(bytes >= (1024u + 7 * 8) / 8 * 256 * 4 + (1024u + 7 * 8) * 4);
  auto starts_with = [](const Status& s, const char* name) { return std::string(s.message).rfind(name, 0) == 0; };
  CHECK(starts_with(prepare_act_order(q, 0, g, 1020, 256, 8, buffer, bytes, nullptr, &out), "k:"));
  CHECK(starts_with(prepare_act_order(q, 0, g, 1024, 250, 8, buffer, bytes, nullptr, &out), "n:"));
  CHECK(starts_with(prepare_act_order(q, 0, g, 1024, 256, 0, buffer, bytes, nullptr, &out), "num_groups:"));
  CHECK(starts_with(prepare_act_order(q, 100, g, 1024, 256, 8, buffer, bytes, nullptr, &out), "ldq:"));
  CHECK(starts_with(prepare_act_order(nullptr, 0, g, 1024, 256, 8, buffer, bytes, nullptr, &out), "qweight:"));
  CHECK(starts_with(prepare_act_order(q, 0, nullptr, 1024, 256, 8, buffer, bytes, nullptr, &out), "g_idx:"));
  // F10: misaligned int32 arrays are named before anything is launched.
  const Status misaligned_q =
      prepare_act_order(fake<const std::int32_t>(0x1002), 0, g, 1024, 256, 8, buffer, bytes, nullptr, &out);
  CHECK(misaligned_q.code == StatusCode::kMisalignedPointer);
  CHECK(starts_with(misaligned_q, "qweight:"));
  CHECK(starts_with(
      prepare_act_order(q, 0, fake<const std::int32_t>(0x2001), 1024, 256, 8, buffer, bytes, nullptr, &out), "g_idx:"));
  CHECK(starts_with(prepare_act_order(q, 0, g, 1024, 256, 8, nullptr, bytes, nullptr, &out), "buffer:"));
  CHECK(starts_with(prepare_act_order(q, 0, g, 1024, 256, 8, fake<void>(0x100010), bytes, nullptr, &out), "buffer:"));
  const Status small = prepare_act_order(q, 0, g, 1024, 256, 8, buffer, bytes - 1, nullptr, &out);
  CHECK(small.code == StatusCode::kWorkspaceTooSmall);
  CHECK(starts_with(small, "buffer_bytes:"));
  CHECK(starts_with(prepare_act_order(q, 0, g, 1024, 256, 8, buffer, bytes, nullptr, nullptr), "prepared:"));

  const std::int32_t good[8] = {0, 1, 0, 1, 2, 2, 1, 0};
  const std::int32_t bad[8] = {0, 1, 0, 3, 2, 2, 1, 0};
  CHECK(validate_g_idx(good, 8, 3).ok());
  CHECK(starts_with(validate_g_idx(good, -8, 3), "k:"));  // F10: a negative k was accepted
  const Status s = validate_g_idx(bad, 8, 3);
  CHECK(s.code == StatusCode::kInvalidData);
  CHECK(starts_with(s, "g_idx:"));
  const std::int32_t sequential[8] = {0, 0, 0, 0, 1, 1, 1, 1};
  CHECK(is_sequential_g_idx(sequential, 8, 4));
  CHECK_FALSE(is_sequential_g_idx(good, 8, 4));
}
