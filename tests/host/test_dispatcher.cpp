// The Dispatcher (host/dispatcher.hpp) without a GPU: its argument checks, and its plans and workspace size where no
// device query is needed (a DeviceInfo given by hand and a fixed K split). Compiled by the GPU compiler of the build,
// so the kernel list is this build's: on the HIP build (gfx906 among the targets) the SIMT kernels only.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <opt4gptq/dispatcher.hpp>
#include <string>

#include "fake_problem.hpp"

using namespace opt4gptq;

namespace {

bool names(const Status& s, const char* argument) { return std::string(s.message).rfind(argument, 0) == 0; }

/// A device of this build's vendor with matrix instructions (an H200, or an MI210), described by hand.
DeviceInfo matrix_core_device() {
  DeviceInfo d;
  d.device = 0;
  d.multiprocessors = 132;
#if defined(OPT4GPTQ_BACKEND_CUDA)
  d.arch = nvidia_arch(9, 0);
#else
  d.arch = GpuArch{GpuVendor::kAmd, 9, 0x0a};
#endif
  return d;
}

/// The kernel a batch-invariant Dispatcher runs on that device: the table's invariant kernel when this build has it.
KernelChoice invariant_kernel() {
  const KernelChoice table = dispatch::table_for(matrix_core_device().arch).invariant;
  return built_kernels().contains(table) ? table : KernelChoice::kDeterministicF32;
}

constexpr std::size_t round_up(std::size_t bytes, std::size_t to) { return (bytes + to - 1) / to * to; }

/// ReduceSharedSerial's workspace for a call of m rows on an n-column layer split into k_blocks K blocks, computed
/// here from its definition (one counter per tile in the workspace's head, then fp32 partials of every output of every
/// tile and K block):
/// both invariant kernels have 128-column tiles; rows per block are 16, 32 or 64 (matrix cores) or up to 8 (SIMT).
std::size_t serial_workspace(KernelChoice kernel, int m, int n, int k_blocks) {
  const int rows = kernel == KernelChoice::kTensorCoreDeterministic ? (m <= 16   ? 16
                                                                       : m <= 32 ? 32
                                                                                 : 64)
                                                                    : std::min(m, 8);
  const std::size_t tiles = static_cast<std::size_t>((n + 127) / 128) * ((m + rows - 1) / rows);
  if (k_blocks <= 1) return 0;
  // The counters first (the workspace's head, 256-byte aligned), then the slots.
  return round_up(tiles * sizeof(int), 256) + tiles * k_blocks * rows * 128 * sizeof(float);
}

}  // namespace

TEST_CASE("Dispatcher::create names its bad arguments", "[host][dispatcher]") {
  const DeviceInfo device = matrix_core_device();
  const QuantizedWeights w = test::valid_weights();
  Dispatcher d;
  CHECK(names(Dispatcher::create(w, {}, device, nullptr), "dispatcher: null"));
  QuantizedWeights bad = w;
  bad.qweight = nullptr;
  CHECK(Dispatcher::create(bad, {}, device, &d).code == StatusCode::kNullPointer);
  CHECK(names(Dispatcher::create(bad, {}, device, &d), "weights.qweight: null"));
  bad = w;
  bad.k = 100;
  CHECK(names(Dispatcher::create(bad, {}, device, &d), "weights.k"));
  DispatchOptions o;
  o.max_m = 0;
  CHECK(names(Dispatcher::create(w, o, device, &d), "options.max_m"));
  o = DispatchOptions{};
  o.accumulation = static_cast<Accumulation>(-1);
  CHECK(names(Dispatcher::create(w, o, device, &d), "options.accumulation"));
  o = DispatchOptions{};
  o.batch_invariant = true;
  o.rows_of_k_per_block = 100;  // not a multiple of any stage
  CHECK(names(Dispatcher::create(w, o, device, &d), "options.rows_of_k_per_block"));
  DeviceInfo unknown = device;
  unknown.arch = GpuArch{};
  CHECK(names(Dispatcher::create(w, {}, unknown, &d), "device.arch"));
  DeviceInfo empty = device;
  empty.multiprocessors = 0;
  CHECK(names(Dispatcher::create(w, {}, empty, &d), "device.multiprocessors"));

  // A Dispatcher that was never created refuses everything, by name.
  DispatchPlan plan;
  CHECK(names(d.plan(1, &plan), "dispatcher: not created"));
  test::FakeCall call = test::valid_call();
  CHECK(names(d.launch(call.problem(), nullptr, 0, nullptr), "dispatcher: not created"));
  CHECK(d.workspace_bytes() == 0);
}

TEST_CASE("a batch-invariant Dispatcher: one kernel, a fixed K split, launches of 256 rows, its workspace",
          "[host][dispatcher]") {
  const DeviceInfo device = matrix_core_device();
  const QuantizedWeights w = test::valid_weights();  // 4096 x 4096
  DispatchOptions o;
  o.batch_invariant = true;
  o.rows_of_k_per_block = 2048;  // a multiple of both stages (128 rows for matrix cores, 1024 for SIMT): 2 K blocks
  o.max_m = 1000;
  Dispatcher d;
  const Status created = Dispatcher::create(w, o, device, &d);  // a fixed split plans without a device query
  INFO(created.message);
  REQUIRE(created.ok());
  CHECK(d.rows_of_k_per_block() == 2048);
  const KernelChoice kernel = invariant_kernel();

  std::size_t expected_workspace = 0;
  for (int m = 1; m <= kFixedSplitRowsPerLaunch; ++m)
    expected_workspace = std::max(expected_workspace, serial_workspace(kernel, m, w.n, 2));
  CHECK(d.workspace_bytes() == expected_workspace);

  DispatchPlan p;
  REQUIRE(d.plan(1000, &p).ok());
  CHECK(p.kernel == kernel);
  CHECK(std::string(p.kernel_name) == kernel_name(kernel));
  CHECK(p.launches == 4);  // 256 + 256 + 256 + 232
  CHECK(p.rows_per_launch == 256);
  CHECK(p.plan.m == 256);
  CHECK(p.last.m == 232);
  CHECK(p.plan.rows_of_k_per_block == 2048);
  CHECK(p.last.rows_of_k_per_block == 2048);
  CHECK(p.plan.grid_z == 2);
  CHECK(p.workspace_bytes == serial_workspace(kernel, 256, w.n, 2));
  for (const int m : {1, 2, 3, 16, 17, 64, 65, 255, 256}) {
    INFO("M = " << m);
    REQUIRE(d.plan(m, &p).ok());
    CHECK(p.kernel == kernel);
    CHECK(p.launches == 1);
    CHECK(p.plan.grid_z == 2);
    CHECK(p.workspace_bytes == serial_workspace(kernel, m, w.n, 2));
    CHECK(p.workspace_bytes <= d.workspace_bytes());
  }
  REQUIRE(d.plan(257, &p).ok());
  CHECK(p.launches == 2);
  CHECK(p.last.m == 1);
  REQUIRE(d.plan(0, &p).ok());
  CHECK(p.launches == 0);
  CHECK(p.workspace_bytes == 0);
  CHECK(names(d.plan(1001, &p), "m: larger than options.max_m"));
  CHECK(names(d.plan(-1, &p), "m: must be >= 0"));
  CHECK(names(d.plan(1, nullptr), "plan: null"));
}

TEST_CASE("Dispatcher::launch checks the call before it launches anything", "[host][dispatcher]") {
  const DeviceInfo device = matrix_core_device();
  DispatchOptions o;
  o.batch_invariant = true;
  o.rows_of_k_per_block = 2048;
  o.max_m = 64;
  test::FakeCall call = test::valid_call();  // 5 rows on valid_weights()
  Dispatcher d;
  REQUIRE(Dispatcher::create(call.weights, o, device, &d).ok());
  GemmProblem& p = call.problem();

  GemmProblem no_layer = p;
  no_layer.weights = nullptr;
  CHECK(names(d.launch(no_layer, nullptr, 0, nullptr), "problem.weights: null"));
  GemmProblem negative = p;
  negative.m = -1;
  CHECK(names(d.launch(negative, nullptr, 0, nullptr), "problem.m: must be >= 0"));
  GemmProblem too_many = p;
  too_many.m = 65;
  CHECK(names(d.launch(too_many, nullptr, 0, nullptr), "problem.m: larger than the Dispatcher's options.max_m"));
  QuantizedWeights other = call.weights;
  other.k = 2048;
  GemmProblem other_layer = p;
  other_layer.weights = &other;
  CHECK(names(d.launch(other_layer, nullptr, 0, nullptr), "problem.weights: a layer of another shape"));
  GemmProblem bf16 = p;  // the Dispatcher was created for fp16 calls (DispatchOptions::dtype's default)
  bf16.dtype = ElementType::kBf16;
  CHECK(names(d.launch(bf16, nullptr, 0, nullptr), "problem.dtype: bf16, but the Dispatcher was created for fp16"));

  DispatchPlan plan;
  REQUIRE(d.plan(p.m, &plan).ok());
  REQUIRE(plan.workspace_bytes > 0);
  CHECK(names(d.launch(p, nullptr, 0, nullptr), "workspace: null"));
  const Status small = d.launch(p, test::fake<void>(0x70000000), plan.workspace_bytes - 1, nullptr);
  CHECK(small.code == StatusCode::kWorkspaceTooSmall);
  CHECK(names(small, "workspace_bytes"));
  DispatchPlan other_m;
  REQUIRE(d.plan(p.m + 1, &other_m).ok());
  CHECK(names(d.launch(other_m, p, nullptr, 0, nullptr), "plan: made for another M"));

  // M = 0 is a no-op: A and C may be null, no workspace is needed, nothing is launched.
  GemmProblem idle = p;
  idle.m = 0;
  idle.a = nullptr;
  idle.c = nullptr;
  CHECK(d.launch(idle, nullptr, 0, nullptr).ok());
}

TEST_CASE(
    "a deterministic Dispatcher with a fixed split: the library's kernel, then the prefill path, in one "
    "workspace",
    "[host][dispatcher]") {
  const DeviceInfo device = matrix_core_device();
  const QuantizedWeights w = test::valid_weights();
  DispatchOptions o;
  o.deterministic = true;
  o.rows_of_k_per_block = 2048;
  o.max_m = 600;
  Dispatcher d;
  REQUIRE(Dispatcher::create(w, o, device, &d).ok());
  DispatchPlan p;
  REQUIRE(d.plan(8, &p).ok());
  // The H200 table's fastest kernel with fp32 sums and a fixed order at M = 8 (a CPU-only test device reads the
  // table of the architecture it claims).
  CHECK(kernel_info(p.kernel).deterministic);
  CHECK(kernel_info(p.kernel).accumulation == Accumulation::kFp32);
  REQUIRE(d.plan(600, &p).ok());
  if (d.allowed().contains(KernelChoice::kDequantCublas)) {
#if OPT4GPTQ_WITH_CUBLAS
    // Above the (provisional) prefill threshold: dense weights in the workspace, one launch whatever M.
    CHECK(p.kernel == KernelChoice::kDequantCublas);
    CHECK(p.launches == 1);
    CHECK(p.workspace_bytes == DequantCublas::workspace_bytes(w));
    // The dense weights go past the workspace's head (the split-K counters' place, left as it was found).
    CHECK(DequantCublas::workspace_bytes(w) == kWorkspaceCounterBytes + round_up(std::size_t{4096} * 4096 * 2, 256));
    CHECK(d.workspace_bytes() ==
          std::max(DequantCublas::workspace_bytes(w), serial_workspace(invariant_kernel(), 255, w.n, 2)));
#endif
  } else {
    // No prefill path in this build (or on this device): the library's kernel at every M, in launches of 256 rows.
    CHECK(p.kernel == invariant_kernel());
    CHECK(p.launches == 3);
  }
}

TEST_CASE("presets::Auto checks the call by name before it asks the device", "[host][dispatcher]") {
  test::FakeCall call = test::valid_call();
  GemmProblem p = call.problem();
  p.weights = nullptr;
  CHECK(names(validate<presets::Auto>(p), "problem.weights: null"));
  CHECK(names(launch<presets::Auto>(p, nullptr, 0, nullptr), "problem.weights: null"));
  std::size_t bytes = 1;
  CHECK(names(workspace_bytes<presets::Auto>(p, &bytes), "problem.weights: null"));
  CHECK(bytes == 0);
  CHECK(names(workspace_bytes<presets::Auto>(call.problem(), nullptr), "bytes: null"));
}

TEST_CASE("a K split whose counters would not fit the workspace's head is refused by name", "[host][dispatcher]") {
  // ReduceSharedSerial keeps one counter per output tile in the workspace's head (kWorkspaceCounterBytes = 1 MiB:
  // 262,144 tiles); past it the workspace is scratch that another call (the prefill path) may have left non-zero, so a
  // grid with more tiles than that and several K blocks cannot be run. The SIMT Deterministic preset (every backend and
  // architecture builds it): 64 column tiles of 128 x 4097 M chunks of 8 rows.
  test::FakeCall call = test::valid_call();
  call.weights.n = 8192;
  call.problem().m = 8 * 4096 + 1;
  call.problem().a = test::fake<const half>(0x100000000000);  // A and C of ~256 and ~512 MiB, apart from the weights
  call.problem().c = test::fake<half>(0x200000000000);
  Plan plan;
  PlanOptions split;
  split.rows_of_k_per_block = 2048;  // 2 K blocks of the 1024-row stages
  CHECK(names(opt4gptq::plan<presets::Deterministic>(call.problem(), matrix_core_device(), split, &plan),
              "problem.m: the K split needs a counter for more output tiles"));
  // One M chunk fewer fits: 64 x 4096 counters are exactly the head.
  call.problem().m = 8 * 4096;
  REQUIRE(opt4gptq::plan<presets::Deterministic>(call.problem(), matrix_core_device(), split, &plan).ok());
  CHECK(plan.grid_x * plan.grid_y == 64 * 4096);
  CHECK(plan.grid_z == 2);
  CHECK(ReduceSharedSerial::counter_bytes(ReduceGeometry{plan.grid_x * plan.grid_y, 0, 2}) == kWorkspaceCounterBytes);
  // One K block needs no counters at all, whatever the grid.
  split.rows_of_k_per_block = 4096;
  call.problem().m = 8 * 4096 + 1;
  CHECK(opt4gptq::plan<presets::Deterministic>(call.problem(), matrix_core_device(), split, &plan).ok());
}
