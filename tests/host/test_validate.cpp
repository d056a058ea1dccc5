// validate() and the host API's argument checks: every message, each with the argument it names. No GPU needed:
// the pointers are never dereferenced because validation fails (or, for the one valid problem, nothing launches).

#include <opt4gptq/opt4gptq.hpp>

#include "fake_problem.hpp"

#include <cstdint>
#include <string>
#include <type_traits>

#include <catch2/catch.hpp>

using namespace opt4gptq;

namespace {

using test::fake;
using test::valid_call;

template <class Gemm>
void expect(const GemmProblem& p, StatusCode code, const std::string& names) {
  const Status s = validate<Gemm>(p);
  INFO("message: " << s.message);
  CHECK(s.code == code);
  CHECK(std::string(s.message).rfind(names, 0) == 0);  // the message starts with the argument's name
}

}  // namespace

TEST_CASE("validate accepts a valid problem, with and without strides", "[host][validate]") {
  test::FakeCall f = valid_call();
  GemmProblem& p = f.problem();
  QuantizedWeights& w = f.weights;
  CHECK(validate<presets::Baseline>(p).ok());
  CHECK(validate<presets::Opt4Gptq>(p).ok());
  p.lda = 8192;
  w.ldq = 8192;
  w.ldz = 1024;
  w.lds = 8192;
  p.ldc = 4104;
  w.group_size = -1;
  CHECK(validate<presets::Opt4Gptq>(p).ok());
  w.group_size = 32;
  w.num_groups = 128;
  CHECK(validate<presets::Opt4Gptq>(p).ok());
}

TEST_CASE("validate names the bad size or format argument", "[host][validate]") {
  using G = presets::Opt4Gptq;
  test::FakeCall f = valid_call();
  GemmProblem& p = f.problem();
  QuantizedWeights& w = f.weights;
  p.m = -1;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.m");
  f = valid_call();
  p.m = 600000;
  p.c = fake<half>(0x100000000000);  // clear of A's 4.9 GB
  expect<G>(p, StatusCode::kInvalidArgument, "problem.m: too large");
  f = valid_call();
  w.n = 4092;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.n");
  w.n = 0;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.n");
  f = valid_call();
  w.k = 4100;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.k");
  w.k = -8;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.k");
  f = valid_call();
  w.k = 4096 + 64;  // multiple of 8, not of the group size
  expect<G>(p, StatusCode::kInvalidArgument, "weights.k: must be a multiple of weights.group_size");
  f = valid_call();
  w.group_size = 100;
  expect<G>(p, StatusCode::kUnsupported, "weights.group_size");
  w.group_size = 0;
  expect<G>(p, StatusCode::kUnsupported, "weights.group_size");
  w.group_size = -2;
  expect<G>(p, StatusCode::kUnsupported, "weights.group_size");
  f = valid_call();
  w.zero_format = static_cast<ZeroPointFormat>(3);
  expect<G>(p, StatusCode::kInvalidArgument, "weights.zero_format");
  f = valid_call();
  w.num_groups = 31;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.num_groups");
  w.num_groups = -1;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.num_groups");
}

TEST_CASE("validate names a call without a layer: problem.weights", "[host][validate]") {
  test::FakeCall f = valid_call();
  GemmProblem& p = f.problem();
  p.weights = nullptr;
  CHECK(check_problem(p).code == StatusCode::kNullPointer);
  expect<presets::Baseline>(p, StatusCode::kNullPointer, "problem.weights");
  expect<presets::Opt4Gptq>(p, StatusCode::kNullPointer, "problem.weights");
  // Nothing is planned or launched, and M = 0 does not excuse a missing layer.
  const Status launched = launch<presets::Opt4Gptq>(p, nullptr);
  CHECK(launched.code == StatusCode::kNullPointer);
  CHECK(std::string(launched.message).rfind("problem.weights", 0) == 0);
  Plan planned;
  CHECK(plan<presets::Opt4Gptq>(p, &planned).code == StatusCode::kNullPointer);
  std::size_t bytes = 0;
  CHECK(workspace_bytes<presets::Deterministic>(p, &bytes).code == StatusCode::kNullPointer);
  p.m = 0;
  p.a = nullptr;
  p.c = nullptr;
  expect<presets::Opt4Gptq>(p, StatusCode::kNullPointer, "problem.weights");
  CHECK(launch<presets::Opt4Gptq>(p, nullptr).code == StatusCode::kNullPointer);
}

TEST_CASE("check_weights alone checks a layer, as a loader does once at load time", "[host][validate]") {
  QuantizedWeights w = test::valid_weights();
  CHECK(w.bits == 4);
  CHECK(check_weights(w).ok());
  w.bits = 8;
  const Status s = check_weights(w);
  INFO("message: " << s.message);
  CHECK(s.code == StatusCode::kUnsupported);
  CHECK(std::string(s.message).rfind("weights.bits", 0) == 0);
  // A call on that layer fails with the layer's message, whatever the kernel.
  test::FakeCall f = valid_call();
  f.weights.bits = 8;
  CHECK(std::string(check_problem(f.problem()).message) == s.message);
  expect<presets::Opt4Gptq>(f.problem(), StatusCode::kUnsupported, "weights.bits");
  expect<presets::Deterministic>(f.problem(), StatusCode::kUnsupported, "weights.bits");
  w.bits = 3;
  CHECK(std::string(check_weights(w).message).rfind("weights.bits", 0) == 0);
  // The checks that need no call are check_weights' own: a layer with a null tensor is named at load time.
  w = test::valid_weights();
  w.qzeros = nullptr;
  CHECK(check_weights(w).code == StatusCode::kNullPointer);
  CHECK(std::string(check_weights(w).message).rfind("weights.qzeros", 0) == 0);
}

TEST_CASE("validate names the null pointer", "[host][validate]") {
  using G = presets::Baseline;
  test::FakeCall f = valid_call();
  GemmProblem& p = f.problem();
  QuantizedWeights& w = f.weights;
  p.a = nullptr;
  expect<G>(p, StatusCode::kNullPointer, "problem.a");
  f = valid_call();
  w.qweight = nullptr;
  expect<G>(p, StatusCode::kNullPointer, "weights.qweight");
  f = valid_call();
  w.qzeros = nullptr;
  expect<G>(p, StatusCode::kNullPointer, "weights.qzeros");
  f = valid_call();
  w.scales = nullptr;
  expect<G>(p, StatusCode::kNullPointer, "weights.scales");
  f = valid_call();
  p.c = nullptr;
  expect<G>(p, StatusCode::kNullPointer, "problem.c");
}

TEST_CASE("validate names strides that are too small", "[host][validate]") {
  using G = presets::Baseline;
  test::FakeCall f = valid_call();
  GemmProblem& p = f.problem();
  QuantizedWeights& w = f.weights;
  p.lda = 4000;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.lda");
  f = valid_call();
  w.ldq = 4000;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.ldq");
  f = valid_call();
  w.ldz = 500;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.ldz");
  f = valid_call();
  w.lds = 4000;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.lds");
  f = valid_call();
  p.ldc = 4000;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.ldc");
}

TEST_CASE("validate checks alignment for the chosen LoadPolicy", "[host][validate]") {
  test::FakeCall f = valid_call();
  GemmProblem& p = f.problem();
  QuantizedWeights& w = f.weights;
  p.a = fake<const half>(0x10000002);  // 2-byte aligned: fine for scalar loads, not for half2 or 16-byte loads
  CHECK(validate<presets::Baseline>(p).ok());
  expect<presets::Vml>(p, StatusCode::kMisalignedPointer, "problem.a");
  expect<DequantGemm<LoadVec8, ReduceSharedBuffered, MathBuiltin>>(p, StatusCode::kMisalignedPointer, "problem.a");
  p.a = fake<const half>(0x10000004);  // 4-byte aligned: half2 fine, 16-byte loads not
  CHECK(validate<presets::Vml>(p).ok());
  expect<DequantGemm<LoadVec8, ReduceSharedBuffered, MathBuiltin>>(p, StatusCode::kMisalignedPointer, "problem.a");
  f = valid_call();
  p.lda = 4097;
  CHECK(validate<presets::Baseline>(p).ok());
  expect<presets::Opt4Gptq>(p, StatusCode::kMisalignedPointer, "problem.lda");

  f = valid_call();
  w.qweight = fake<const std::int32_t>(0x20000008);
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "weights.qweight");
  f = valid_call();
  w.ldq = 4098;
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "weights.ldq");
  f = valid_call();
  w.scales = fake<const half>(0x40000004);
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "weights.scales");
  f = valid_call();
  w.lds = 4098;
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "weights.lds");
  f = valid_call();
  w.qzeros = fake<const std::int32_t>(0x30000002);
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "weights.qzeros");
  f = valid_call();
  p.c = fake<half>(0x50000002);
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "problem.c");
  f = valid_call();
  p.ldc = 4097;
  expect<presets::Baseline>(p, StatusCode::kMisalignedPointer, "problem.ldc");
}

TEST_CASE("validate checks the act-order layout against the problem", "[host][validate]") {
  using G = presets::Opt4Gptq;
  PreparedActOrder ao = test::fake_act_order(4096, 4096, 32);
  REQUIRE(ao.k_rows_max == 4096 + 7 * 32);
  test::FakeCall f = valid_call();
  GemmProblem& p = f.problem();
  QuantizedWeights& w = f.weights;
  w.act_order = &ao;
  w.qweight = nullptr;
  CHECK(validate<G>(p).ok());
  w.k = 4096 + 64;  // act-order: k need not be a multiple of the group size, but must match the layout
  expect<G>(p, StatusCode::kInvalidArgument, "weights.act_order");
  f = valid_call();
  w.act_order = &ao;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.qweight: must be null");
  w.qweight = nullptr;
  w.n = 2048;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.act_order");
  w.n = 4096;
  w.num_groups = 16;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.num_groups");
  w.num_groups = 0;
  w.ldq = 8192;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.ldq");
  w.ldq = 0;
  ao.perm = nullptr;
  expect<G>(p, StatusCode::kNullPointer, "weights.act_order");
}

TEST_CASE("validate rejects a prepared layout that does not describe itself consistently (F4, F5)",
          "[host][validate]") {
  using G = presets::Opt4Gptq;
  PreparedActOrder ao = test::fake_act_order(4096, 4096, 32);
  test::FakeCall f = valid_call();
  GemmProblem& p = f.problem();
  f.weights.act_order = &ao;
  f.weights.qweight = nullptr;
  REQUIRE(validate<G>(p).ok());
  // No rows at all: the split-K planner would divide by zero.
  ao.k_rows_max = 0;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.act_order: inconsistent");
  expect<presets::Deterministic>(p, StatusCode::kInvalidArgument, "weights.act_order: inconsistent");
  // More rows than any buffer for (k, num_groups) holds.
  ao.k_rows_max = 1 << 28;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.act_order: inconsistent");
  ao.k_rows_max = static_cast<int>(PreparedActOrder::rows_max(4096, 32)) - 8;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.act_order: inconsistent");
  // A view with no groups.
  ao.k_rows_max = static_cast<int>(PreparedActOrder::rows_max(4096, 32));
  ao.num_groups = 0;
  expect<G>(p, StatusCode::kInvalidArgument, "weights.act_order: inconsistent");
  // act_order_view() always describes a consistent layout.
  const PreparedActOrder view = act_order_view(fake<void>(0xA0000000), 4096, 4096, 64);
  CHECK(view.k_rows_max == PreparedActOrder::rows_max(4096, 64));
  CHECK(view.info == fake<const std::int32_t>(0xA0000000));  // the header is at offset 0, whatever num_groups
  CHECK(act_order_view(fake<void>(0xA0000000), 4096, 4096, 32).info == view.info);
}

TEST_CASE("validate rejects an output that overlaps an input (F8)", "[host][validate]") {
  using G = presets::Opt4Gptq;
  const test::FakeCall base = valid_call();  // m = 5, n = k = 4096
  test::FakeCall f = base;
  GemmProblem& p = f.problem();
  const QuantizedWeights& w = f.weights;
  p.c = static_cast<half*>(const_cast<void*>(p.a));
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps problem.a");
  p.c = static_cast<half*>(const_cast<void*>(p.a)) + 4 * 4096 + 8;  // starts inside A's last row
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps problem.a");
  p.c = static_cast<half*>(const_cast<void*>(p.a)) + 5 * 4096;  // right after A: fine
  CHECK(validate<G>(p).ok());
  p.c = reinterpret_cast<half*>(const_cast<std::int32_t*>(w.qweight));
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps weights.qweight");
  p.c = reinterpret_cast<half*>(const_cast<std::int32_t*>(w.qweight) + 511 * 4096);  // inside the last packed row
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps weights.qweight");
  p.c = const_cast<half*>(w.scales) + 31 * 4096 + 4000;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps weights.scales");
  p.c = reinterpret_cast<half*>(const_cast<std::int32_t*>(w.qzeros));
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps weights.qzeros");
  // C ending just before an input does not overlap it.
  p.c = const_cast<half*>(w.scales) - 5 * 4096;
  CHECK(validate<G>(p).ok());
  // A strided C: its rows reach ldc * (m - 1) + n elements.
  f = base;
  p.ldc = 8192;
  p.c = static_cast<half*>(const_cast<void*>(p.a)) - 4 * 8192 - 4096 + 8;
  expect<G>(p, StatusCode::kInvalidArgument, "problem.c: overlaps problem.a");
}

TEST_CASE("M = 0 is a successful no-op that touches nothing (F9)", "[host][validate]") {
  test::FakeCall f = valid_call();
  GemmProblem& p = f.problem();
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
  Plan planned;
  planned.grid_x = 7;
  CHECK(plan<presets::Opt4Gptq>(p, &planned).ok());
  CHECK(planned.grid_x == 0);
  // The weights are still checked.
  f.weights.qzeros = nullptr;
  expect<presets::Opt4Gptq>(p, StatusCode::kNullPointer, "weights.qzeros");
}

TEST_CASE("the library lives in a versioned inline namespace", "[host][api]") {
  STATIC_REQUIRE(std::is_same_v<opt4gptq::GemmProblem, opt4gptq::OPT4GPTQ_ABI_NAMESPACE::GemmProblem>);
  STATIC_REQUIRE(std::is_same_v<opt4gptq::QuantizedWeights, opt4gptq::OPT4GPTQ_ABI_NAMESPACE::QuantizedWeights>);
  STATIC_REQUIRE(std::is_same_v<opt4gptq::presets::Opt4Gptq, opt4gptq::v0_1::presets::Opt4Gptq>);
}

TEST_CASE("launch returns validate's status and launches nothing for a bad problem", "[host][validate]") {
  test::FakeCall f = valid_call();
  GemmProblem& p = f.problem();
  f.weights.k = 12;
  const Status s = launch<presets::Opt4Gptq>(p, nullptr);
  CHECK(s.code == StatusCode::kInvalidArgument);
  CHECK(std::string(s.message).rfind("weights.k", 0) == 0);
  Plan planned;
  CHECK(plan<presets::Baseline>(p, &planned).code == StatusCode::kInvalidArgument);
}

TEST_CASE("plan describes the grid of a call, and launch with a plan rejects another call's", "[host][validate]") {
  // The Baseline's tile fixes its K split (one stage of 128 rows per block): planning it queries no GPU.
  using G = presets::Baseline;
  STATIC_REQUIRE(G::TileShape::kStagesPerBlock > 0);
  test::FakeCall f = valid_call();  // m = 5, n = k = 4096
  GemmProblem& p = f.problem();
  QuantizedWeights& w = f.weights;
  Plan planned;
  REQUIRE(plan<G>(p, &planned).ok());
  CHECK(planned.m == 5);
  CHECK(planned.n == 4096);
  CHECK(planned.k_rows == 4096);
  CHECK_FALSE(planned.act_order);
  CHECK(planned.rows_per_block == 5);
  CHECK(planned.grid_x == 4096 / G::TileShape::kBlockCols);
  CHECK(planned.grid_y == 1);
  CHECK(planned.rows_of_k_per_block == 128);
  CHECK(planned.grid_z == 4096 / 128);
  CHECK(planned.zero_fill_output);  // global atomics over 32 K blocks accumulate into a zero-filled C
  CHECK(planned.workspace_bytes == 0);
  // The device argument changes nothing for a tile that does not size its grid to the GPU.
  DeviceInfo device;
  device.multiprocessors = 7;
  Plan for_device;
  REQUIRE(plan<G>(p, device, &for_device).ok());
  CHECK(for_device.grid_z == planned.grid_z);
  CHECK(for_device.rows_of_k_per_block == planned.rows_of_k_per_block);
  CHECK(plan<G>(p, nullptr).code == StatusCode::kNullPointer);

  // launch(plan, problem) with a problem of another shape, or another kernel: refused, naming the plan (the problem
  // itself is valid, so nothing else could be at fault).
  auto names_plan = [&](auto kernel, const Plan& pl, const char* what) {
    using K = decltype(kernel);
    REQUIRE(validate<K>(p).ok());
    const Status s = launch<K>(pl, p, nullptr, 0, nullptr);
    INFO(what << ": " << s.message);
    CHECK(s.code == StatusCode::kInvalidArgument);
    CHECK(std::string(s.message).rfind("plan:", 0) == 0);
  };
  p.m = 6;
  names_plan(G{}, planned, "another m");
  p.m = 3;
  names_plan(G{}, planned, "fewer rows");
  p.m = 5;
  w.n = 2048;
  names_plan(G{}, planned, "another n");
  w.n = 4096;
  w.k = 2048;
  names_plan(G{}, planned, "another k");
  w.k = 4096;
  names_plan(presets::Ila{}, planned, "another kernel");
  Plan edited = planned;
  edited.grid_x -= 1;  // would leave the last column tile unwritten
  names_plan(G{}, edited, "a plan edited by hand");
  edited = planned;
  edited.grid_z -= 1;
  names_plan(G{}, edited, "a plan edited by hand");

  const PreparedActOrder ao = test::fake_act_order(4096, 4096, 32);
  w.act_order = &ao;
  w.qweight = nullptr;
  names_plan(G{}, planned, "an act-order layer");
  Plan act_order_plan;
  REQUIRE(plan<G>(p, &act_order_plan).ok());
  CHECK(act_order_plan.act_order);
  CHECK(act_order_plan.k_rows == ao.k_rows_max);  // the rows of the prepared layout, padded per group

  // An invalid call is reported as validate() reports it, plan or not.
  w.qzeros = nullptr;
  const Status s = launch<G>(act_order_plan, p, nullptr, 0, nullptr);
  CHECK(s.code == StatusCode::kNullPointer);
  CHECK(std::string(s.message).rfind("weights.qzeros", 0) == 0);

  // M = 0: an empty plan, and launching it does nothing (no GPU needed).
  f = valid_call();
  p.m = 0;
  Plan empty;
  REQUIRE(plan<G>(p, &empty).ok());
  CHECK(empty.m == 0);
  CHECK(empty.grid_x == 0);
  CHECK(launch<G>(empty, p, nullptr, 0, nullptr).ok());
  p.m = 5;
  names_plan(G{}, empty, "an empty plan for a call of 5 rows");
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

TEST_CASE("validate names an element type the kernel was not built for: problem.dtype", "[host][validate][bf16]") {
  test::FakeCall f = valid_call();
  GemmProblem& p = f.problem();
  CHECK(p.dtype == ElementType::kFp16);  // the default: every fp16 caller is unchanged
  CHECK(std::is_same_v<presets::Opt4Gptq::Element, ElementFp16>);
  CHECK(std::is_same_v<presets::TensorCore::Element, ElementFp16>);
  CHECK(std::is_same_v<presets::Decode::Element, ElementFp16>);
  p.dtype = ElementType::kBf16;
  CHECK(check_problem(p).ok());  // a bf16 call is a valid call; the fp16 kernels refuse it by name
  expect<presets::Opt4Gptq>(p, StatusCode::kUnsupported, "problem.dtype: bf16, but the kernel was built for fp16");
  expect<presets::Deterministic>(p, StatusCode::kUnsupported, "problem.dtype: bf16, but the kernel was built for fp16");
  expect<presets::TensorCore>(p, StatusCode::kUnsupported, "problem.dtype: bf16, but the kernel was built for fp16");
  expect<presets::TensorCorePipelined>(p, StatusCode::kUnsupported,
                                       "problem.dtype: bf16, but the kernel was built for fp16");
  expect<presets::Decode>(p, StatusCode::kUnsupported, "problem.dtype: bf16, but the kernel was built for fp16");
  // Nothing is planned or launched.
  CHECK(launch<presets::Opt4Gptq>(p, nullptr).code == StatusCode::kUnsupported);
  Plan planned;
  CHECK(plan<presets::Opt4Gptq>(p, &planned).code == StatusCode::kUnsupported);
  // The bf16 kernels: the same checks the other way round.
  CHECK(std::is_same_v<presets::Bf16Deterministic::Element, ElementBf16>);
  CHECK(std::is_same_v<presets::Bf16Simt::Element, ElementBf16>);
  CHECK(std::is_same_v<presets::Bf16Decode::Element, ElementBf16>);
  CHECK(std::is_same_v<DequantGemmOf<ElementFp16, LoadHalf2, ReduceSharedBuffered, MathInlineAsm>, presets::Opt4Gptq>);
  CHECK(validate<presets::Bf16Deterministic>(p).ok());
  CHECK(validate<presets::Bf16Simt>(p).ok());
  CHECK(validate<presets::Bf16Decode>(p).ok());
  p.dtype = ElementType::kFp16;
  expect<presets::Bf16Deterministic>(p, StatusCode::kUnsupported,
                                     "problem.dtype: fp16, but the kernel was built for bf16");
  expect<presets::Bf16Decode>(p, StatusCode::kUnsupported, "problem.dtype: fp16, but the kernel was built for bf16");
  p.dtype = static_cast<ElementType>(7);
  CHECK(check_problem(p).code == StatusCode::kInvalidArgument);
  expect<presets::Opt4Gptq>(p, StatusCode::kInvalidArgument, "problem.dtype: not an ElementType");
  CHECK(std::string(element_name(ElementType::kFp16)) == "fp16");
  CHECK(std::string(element_name(ElementType::kBf16)) == "bf16");
  CHECK(std::string(element_name(static_cast<ElementType>(7))) == "unknown");
}
