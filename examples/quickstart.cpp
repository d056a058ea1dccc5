// Quickstart: quantize a random layer to GPTQ 4-bit (exactly as a checkpoint stores it), run it through the dispatcher
// (what an engine does: one call for every M) and, for the paper, the Opt4GPTQ preset and the baseline on the GPU;
// check each against an fp64 reference, and time them.
//
//   quickstart [--m M] [--k K] [--n N] [--group-size G]      (defaults: a 4096 x 4096 layer, M = 1, groups of 128)
//
// Exit status: 0 when every result matches the reference, 1 on a mismatch or error, 77 when there is no GPU.

#include <opt4gptq/dispatcher.hpp>
#include <opt4gptq/reference/gptq_reference.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace ref = opt4gptq::reference;
namespace platform = opt4gptq::platform;

namespace {

#define CHECK_RUNTIME(call)                                                       \
  do {                                                                            \
    const platform::native_error_t e_ = (call);                                   \
    if (e_ != platform::kNativeSuccess) {                                         \
      std::fprintf(stderr, "%s failed: %s\n", #call, platform::error_string(e_)); \
      std::exit(1);                                                               \
    }                                                                             \
  } while (0)

template <class T>
T* to_device(const std::vector<T>& host) {
  void* p = nullptr;
  CHECK_RUNTIME(platform::device_malloc(&p, host.size() * sizeof(T)));
  CHECK_RUNTIME(platform::copy_to_device(p, host.data(), host.size() * sizeof(T)));
  return static_cast<T*>(p);
}

/// Runs one kernel, `launch()` enqueuing one call: checks it against the reference, then times it (median of 100 calls
/// after 10 warm-up calls).
template <class Launch>
bool run(const char* name, const opt4gptq::GemmProblem& problem, const std::vector<double>& expected,
         double weight_bytes, Launch&& launch) {
  const int n = problem.weights->n;
  const std::size_t outputs = static_cast<std::size_t>(problem.m) * n;
  std::vector<std::uint16_t> c(outputs, 0x7E00);  // poison: NaN
  CHECK_RUNTIME(platform::copy_to_device(problem.c, c.data(), outputs * 2));
  opt4gptq::Status s = launch();
  if (!s.ok()) {
    std::fprintf(stderr, "%s: launch failed: %s\n", name, s.message);
    return false;
  }
  CHECK_RUNTIME(platform::device_synchronize());
  CHECK_RUNTIME(platform::copy_to_host(c.data(), problem.c, outputs * 2));
  const ref::ErrorReport e = ref::compare(c.data(), problem.m, n, 0, expected);
  const bool ok = e.non_finite == 0 && e.relative < 5e-3;

  platform::event_t start, stop;
  CHECK_RUNTIME(platform::event_create(&start));
  CHECK_RUNTIME(platform::event_create(&stop));
  std::vector<float> times;
  for (int i = 0; i < 110; ++i) {
    CHECK_RUNTIME(platform::event_record(start, nullptr));
    s = launch();
    CHECK_RUNTIME(platform::event_record(stop, nullptr));
    CHECK_RUNTIME(platform::event_synchronize(stop));
    float ms = 0;
    CHECK_RUNTIME(platform::event_elapsed_ms(&ms, start, stop));
    if (i >= 10) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  const double us = 1000.0 * times[times.size() / 2];
  std::printf("%-24s relative error %.2e  max |error| %.2e  %s %8.1f us/call  %7.1f GB/s of weights\n", name,
              e.relative, e.max_abs, ok ? "OK      " : "MISMATCH", us, weight_bytes / us * 1e-3);
  (void)platform::event_destroy(start);
  (void)platform::event_destroy(stop);
  return ok;
}

int arg(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int m = arg(argc, argv, "--m", 1), k = arg(argc, argv, "--k", 4096), n = arg(argc, argv, "--n", 4096);
  const int group_size = arg(argc, argv, "--group-size", 128);

  int devices = 0;
  if (platform::device_count(&devices) != platform::kNativeSuccess || devices == 0) {
    std::printf("No %s GPU is visible on this machine: the quickstart was built but cannot run here.\n",
                platform::kBackendName);
    return 77;
  }
  char device[256] = "?";
  (void)platform::device_name(0, device, sizeof(device));
  std::printf("opt4gptq quickstart on %s (%s): C[%d x %d] = A[%d x %d] * dequant(W), 4-bit GPTQ, group size %d\n",
              device, platform::kBackendName, m, n, m, k, group_size);

  // 1. A random layer, quantized to the tensors a GPTQ checkpoint holds (v1 zero points, symmetric).
  std::mt19937 rng(2024);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(static_cast<std::size_t>(k) * n);
  for (float& x : w) x = normal(rng);
  ref::QuantizeOptions options;
  options.group_size = group_size;
  const ref::QuantizedLayer layer = ref::quantize_rtn(w, k, n, options);
  std::vector<std::uint16_t> a(static_cast<std::size_t>(m) * k);
  std::normal_distribution<float> unit(0.0f, 1.0f);
  for (auto& x : a) x = ref::float_to_half_bits(unit(rng));
  const std::vector<double> expected = ref::gemm(m, n, k, a.data(), 0, ref::dequantize(layer));

  // 2. Load time: the layer's tensors on the device, described once by a QuantizedWeights and checked once.
  opt4gptq::QuantizedWeights weights;
  weights.k = k;
  weights.n = n;
  weights.qweight = to_device(layer.qweight);
  weights.qzeros = to_device(layer.qzeros);
  weights.scales = reinterpret_cast<const opt4gptq::half*>(to_device(layer.scales));
  weights.group_size = layer.group_size;
  weights.zero_format = layer.format;
  const opt4gptq::Status checked = opt4gptq::check_weights(weights);
  if (!checked.ok()) {
    std::fprintf(stderr, "check_weights: %s\n", checked.message);
    return 1;
  }

  // 3. Per call: M rows of activations in, M rows of outputs out, on that layer.
  opt4gptq::GemmProblem problem;
  problem.m = m;
  problem.a = reinterpret_cast<const opt4gptq::half*>(to_device(a));
  problem.c = reinterpret_cast<opt4gptq::half*>(to_device(std::vector<std::uint16_t>(static_cast<std::size_t>(m) * n)));
  problem.weights = &weights;

  // 4. The dispatcher, as an engine uses it: one per layer, created at load time with the largest M it will send; a
  //    workspace sized for every M, cleared once; then one call for any M. It chooses the kernel of each call from
  //    this GPU's dispatch table (overflow-safe by default: no fp16 partial sums).
  opt4gptq::DispatchOptions dispatch_options;
  dispatch_options.max_m = m;
  opt4gptq::Dispatcher dispatcher;
  opt4gptq::Status s = opt4gptq::Dispatcher::create(weights, dispatch_options, &dispatcher);
  if (!s.ok()) {
    std::fprintf(stderr, "Dispatcher::create: %s\n", s.message);
    return 1;
  }
  void* workspace = nullptr;
  const std::size_t workspace_bytes = dispatcher.workspace_bytes();
  CHECK_RUNTIME(platform::device_malloc(&workspace, workspace_bytes > 0 ? workspace_bytes : 16));
  s = opt4gptq::clear_workspace(workspace, workspace_bytes, nullptr);
  opt4gptq::DispatchPlan plan;
  if (s.ok()) s = dispatcher.plan(m, &plan);
  if (!s.ok()) {
    std::fprintf(stderr, "dispatcher: %s\n", s.message);
    return 1;
  }
  char dispatched[64];
  std::snprintf(dispatched, sizeof(dispatched), "Dispatcher (%s)", plan.kernel_name);

  // 5. Run, check, time: the dispatcher, then the paper's Opt4GPTQ and its baseline.
  const double weight_bytes = layer.qweight.size() * 4.0 + layer.scales.size() * 2.0 + layer.qzeros.size() * 4.0;
  bool ok = run(dispatched, problem, expected, weight_bytes,
                [&] { return dispatcher.launch(problem, workspace, workspace_bytes, nullptr); });
  ok = run("Opt4GPTQ", problem, expected, weight_bytes,
           [&] { return opt4gptq::launch<opt4gptq::presets::Opt4Gptq>(problem, nullptr); }) &&
       ok;
  ok = run("Baseline", problem, expected, weight_bytes,
           [&] { return opt4gptq::launch<opt4gptq::presets::Baseline>(problem, nullptr); }) &&
       ok;
  CHECK_RUNTIME(platform::device_free(workspace));
  std::printf("%s\n", ok ? "PASS: all match the fp64 reference" : "FAIL");
  return ok ? 0 : 1;
}
