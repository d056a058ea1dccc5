// The dispatcher on the device (host/dispatcher.hpp): every M against the fp64 reference (the prefill path
// included), dequantize() bit for bit, batch invariance (row i's bits for every M and every content of the other
// rows), determinism across SM counts, overflow safety of the default choice, presets::Auto, and one workspace
// shared by layers and kernels in sequence.

#include <opt4gptq/dispatcher.hpp>

#include "../common/test_support.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace opt4gptq;
namespace ref = opt4gptq::reference;

namespace {

bool names(const Status& s, const char* argument) { return std::string(s.message).rfind(argument, 0) == 0; }

/// A workspace of a Dispatcher's size, cleared once (as an engine does at load time).
struct Workspace {
  test::DeviceArray<unsigned char> buffer;
  std::size_t bytes;
  explicit Workspace(std::size_t size) : buffer(std::max<std::size_t>(size, 1)), bytes(size) {
    REQUIRE(clear_workspace(buffer.get(), bytes, nullptr).ok());
  }
  /// Bytes of the workspace's head (kWorkspaceCounterBytes: the split-K counters) that are not zero: the contract says
  /// none after every launch.
  long long head_nonzero() const { return nonzero_in(0, std::min(bytes, kWorkspaceCounterBytes)); }
  /// Bytes past the head that are not zero (scratch: the prefill path leaves its dense weights there).
  long long scratch_nonzero() const {
    return bytes > kWorkspaceCounterBytes ? nonzero_in(kWorkspaceCounterBytes, bytes) : 0;
  }
  long long nonzero_in(std::size_t begin, std::size_t end) const {
    const std::vector<unsigned char> b = buffer.download();
    return std::count_if(b.begin() + static_cast<std::ptrdiff_t>(begin), b.begin() + static_cast<std::ptrdiff_t>(end),
                         [](unsigned char x) { return x; });
  }
};

struct DispatchResult {
  Status status;
  DispatchPlan plan;
  std::vector<std::uint16_t> c;     ///< [m][n]
  long long touched_outside = 0;    ///< elements of the guard row after C that changed
  long long workspace_nonzero = 0;  ///< bytes of the workspace's head not zero after the call (the contract: none)
  long long scratch_nonzero = 0;    ///< bytes past the head not zero after the call (scratch: any)
};

/// One call through `d` on m rows of `a` (device, [m][k]); C poisoned first, a guard row after it.
DispatchResult run_call(const Dispatcher& d, const QuantizedWeights& w, int m,
                        const test::DeviceArray<std::uint16_t>& a, Workspace& ws) {
  const int n = w.n;
  const ElementType dtype = d.options().dtype;
  std::vector<std::uint16_t> init(static_cast<std::size_t>(m + 1) * n, test::poison_for(dtype));
  std::fill(init.begin() + static_cast<std::ptrdiff_t>(m) * n, init.end(), test::kSentinel);
  test::DeviceArray<std::uint16_t> c(init);
  GemmProblem p;
  p.m = m;
  p.a = reinterpret_cast<const half*>(a.get());
  p.c = reinterpret_cast<half*>(c.get());
  p.dtype = dtype;
  p.weights = &w;
  DispatchResult r;
  r.status = d.plan(m, &r.plan);
  if (r.status.ok()) r.status = d.launch(r.plan, p, ws.buffer.get(), ws.bytes, nullptr);
  OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
  std::vector<std::uint16_t> out = c.download();
  for (std::size_t i = static_cast<std::size_t>(m) * n; i < out.size(); ++i)
    r.touched_outside += out[i] != test::kSentinel;
  out.resize(static_cast<std::size_t>(m) * n);
  r.c = std::move(out);
  r.workspace_nonzero = ws.head_nonzero();
  r.scratch_nonzero = ws.scratch_nonzero();
  return r;
}

DeviceInfo this_device() {
  DeviceInfo device;
  REQUIRE(current_device_info(&device).ok());
  return device;
}

bool prefill_path_built_for(const DeviceInfo& device, ElementType dtype = ElementType::kFp16) {
  return runnable_kernels(built_kernels(dtype), device.arch).contains(KernelChoice::kDequantCublas);
}

/// Every M of `ms` through a Dispatcher of `options` on `weights` (whose fp64 dequantization is `w`), against the
/// reference: finite, within `max_relative`, nothing written outside C, the workspace left zero.
void check_every_m(const QuantizedWeights& weights, const std::vector<double>& w, const DispatchOptions& options,
                   const std::vector<int>& ms, double max_relative) {
  Dispatcher d;
  const Status created = Dispatcher::create(weights, options, &d);
  INFO(created.message);
  REQUIRE(created.ok());
  Workspace ws(d.workspace_bytes());
  const DeviceInfo device = this_device();
  const ElementType dtype = options.dtype;
  for (const int m : ms) {
    const std::vector<std::uint16_t> a = test::random_activations(m, weights.k, 500 + m, dtype);
    const test::DeviceArray<std::uint16_t> a_device(a);
    const DispatchResult r = run_call(d, weights, m, a_device, ws);
    INFO("M = " << m << " (" << element_name(dtype) << "): " << r.plan.kernel_name << ", " << r.plan.launches
                << " launch(es), status " << r.status.message);
    REQUIRE(r.status.ok());
    const ref::ErrorReport e =
        ref::compare(r.c.data(), m, weights.n, 0,
                     ref::gemm(m, weights.n, weights.k, a.data(), 0, w, test::decoder(dtype)), test::decoder(dtype));
    INFO("relative error " << e.relative << ", " << e.non_finite << " non-finite");
    CHECK(e.non_finite == 0);
    CHECK(e.relative < max_relative);
    CHECK(r.touched_outside == 0);
    CHECK(r.workspace_nonzero == 0);
    CHECK(meets_options(r.plan.kernel, options));
    CHECK(built_kernels(dtype).contains(r.plan.kernel));
    if (m >= 256 && !options.batch_invariant && prefill_path_built_for(device, dtype) &&
        device.arch.vendor == GpuVendor::kNvidia && device.arch.has_matrix_cores())
      CHECK(r.plan.kernel == KernelChoice::kDequantCublas);  // the (provisional) prefill threshold of the tables
  }
}

/// A layer's dense weights as dequantize() must write them: fp16 or bf16 (scale · (q - z)), rounded to nearest even
/// from the product, which is exact in double (and in fp32: |q - z| < 16 times an 11-bit scale).
std::vector<std::uint16_t> expected_dense(const ref::QuantizedLayer& layer, ElementType dtype) {
  const std::vector<double> w = ref::dequantize(layer);
  std::vector<std::uint16_t> bits(w.size());
  for (std::size_t i = 0; i < w.size(); ++i)
    bits[i] = dtype == ElementType::kBf16 ? ref::float_to_bf16_bits(static_cast<float>(w[i]))
                                          : ref::float_to_half_bits(static_cast<float>(w[i]));
  return bits;
}

/// dequantize(weights) into a [k][ldw] buffer of `dtype` whose padding columns hold a sentinel; returns it.
std::vector<std::uint16_t> run_dequantize(const QuantizedWeights& weights, std::int64_t ldw, ElementType dtype) {
  test::DeviceArray<std::uint16_t> out(
      std::vector<std::uint16_t>(static_cast<std::size_t>(weights.k) * ldw, test::kSentinel));
  const Status s = dequantize(weights, out.get(), ldw, dtype, nullptr);
  INFO(s.message);
  REQUIRE(s.ok());
  OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
  return out.download();
}

void check_dense(const QuantizedWeights& weights, const ref::QuantizedLayer& meaning, ElementType dtype) {
  const std::int64_t ldw = weights.n + 8;
  const std::vector<std::uint16_t> got = run_dequantize(weights, ldw, dtype);
  const std::vector<std::uint16_t> want = expected_dense(meaning, dtype);
  long long wrong = 0, padding_touched = 0;
  for (int r = 0; r < weights.k; ++r)
    for (std::int64_t c = 0; c < ldw; ++c) {
      const std::uint16_t x = got[static_cast<std::size_t>(r) * ldw + c];
      if (c >= weights.n)
        padding_touched += x != test::kSentinel;
      else
        wrong += x != want[static_cast<std::size_t>(r) * weights.n + c];
    }
  CHECK(wrong == 0);
  CHECK(padding_touched == 0);
}

/// check_dense() in both element types.
void check_dense(const QuantizedWeights& weights, const ref::QuantizedLayer& meaning) {
  for (const ElementType dtype : {ElementType::kFp16, ElementType::kBf16}) {
    INFO("dense weights in " << element_name(dtype));
    check_dense(weights, meaning, dtype);
  }
}

}  // namespace

TEST_CASE("the dispatcher matches the fp64 reference at every M, the prefill path included", "[gpu][dispatcher]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  // Around the SIMT kernels' 8-row chunks, the matrix cores' 16 / 64-row blocks, the provisional prefill threshold
  // (256) and a fixed split's 256-row launches.
  const std::vector<int> ms = {1, 2, 3, 8, 17, 64, 129, 255, 256, 300, 512};
  const DispatchOptions defaults;
  {
    INFO("dense layer, N off the tiles, v1 asym");
    const test::DeviceLayer layer(test::make_layer(test::layer(2048, 1032).group(128).asym().v1().random_seed(101)));
    check_every_m(layer.weights, ref::dequantize(layer.host), defaults, ms, 5e-3);
  }
  {
    INFO("act-order layer, v2 sym, groups of 64");
    const test::DeviceLayer layer(
        test::make_layer(test::layer(1024, 520).group(64).sym().v2().desc_act().random_seed(102)));
    check_every_m(layer.weights, ref::dequantize(layer.host), defaults, ms, 5e-3);
  }
  {
    INFO("one group (group size -1)");
    const test::DeviceLayer layer(test::make_layer(test::layer(1000, 264).group(-1).asym().v2().random_seed(103)));
    check_every_m(layer.weights, ref::dequantize(layer.host), defaults, ms, 5e-3);
  }
  {
    INFO("act-order row shard (uneven groups)");
    const ref::QuantizedLayer whole =
        test::make_layer(test::layer(2048, 264).group(128).asym().v1().desc_act().random_seed(104));
    const ref::QuantizedLayer shard = ref::row_shard(whole, 328, 1536, true);
    const test::DeviceLayer layer(shard);
    check_every_m(layer.weights, ref::dequantize(shard), defaults, ms, 5e-3);
  }
  {
    INFO("column shard as a strided view");
    const test::DeviceLayer layer(test::make_layer(test::layer(640, 1024).group(128).asym().v1().random_seed(105)));
    const int n0 = 264, n1 = 776;
    QuantizedWeights view = layer.weights;
    view.n = n1 - n0;
    view.qweight = layer.qweight.get() + n0;
    view.ldq = 1024;
    view.qzeros = layer.qzeros.get() + n0 / 8;
    view.ldz = 1024 / 8;
    view.scales = reinterpret_cast<const half*>(layer.scales.get()) + n0;
    view.lds = 1024;
    check_every_m(view, ref::dequantize(ref::column_shard(layer.host, n0, n1)), defaults, ms, 5e-3);
  }
}

TEST_CASE("the dispatcher under each option: fp16 partials allowed, fp32 throughout, deterministic, batch invariant",
          "[gpu][dispatcher]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  const std::vector<int> ms = {1, 2, 8, 64, 300};
  const test::DeviceLayer layer(test::make_layer(test::layer(4096, 520).group(128).asym().v1().random_seed(111)));
  const test::DeviceLayer act_order(
      test::make_layer(test::layer(1536, 264).group(32).sym().v2().desc_act().random_seed(112)));
  DispatchOptions fast;
  fast.accumulation = Accumulation::kFp16Partials;
  DispatchOptions strict;
  strict.accumulation = Accumulation::kFp32;
  DispatchOptions deterministic;
  deterministic.deterministic = true;
  DispatchOptions invariant;
  invariant.batch_invariant = true;
  for (const DispatchOptions& o : {fast, strict, deterministic, invariant}) {
    INFO("accumulation " << static_cast<int>(o.accumulation) << ", deterministic " << o.deterministic
                         << ", batch invariant " << o.batch_invariant);
    check_every_m(layer.weights, ref::dequantize(layer.host), o, ms, 5e-3);
    check_every_m(act_order.weights, ref::dequantize(act_order.host), o, ms, 5e-3);
  }
}

TEST_CASE("the dispatcher in bf16: every M and option against the fp64 reference, the prefill path included",
          "[gpu][dispatcher][bf16]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  // bf16's unit roundoff is u = 2^-8. The error's norm relative to the result's: C's rounding (about u / sqrt(3) in
  // the norm), the weights' rounding to bf16 for the matrix cores and the prefill path (the same, averaged over K),
  // and, for the kernels whose K blocks meet in C through bf16 atomics, one rounding per K block (at most ~8 here).
  // 4u bounds ten such terms of u / sqrt(3) added in quadrature with room; a kernel that read a wrong row, group or
  // zero point is off by far more (relative errors of 0.1 and up).
  constexpr double kBf16Tolerance = 4.0 / 256;
  const std::vector<int> ms = {1, 2, 3, 8, 17, 64, 129, 256, 300};
  const test::DeviceLayer dense(test::make_layer(test::layer(2048, 1032).group(128).asym().v1().random_seed(131)));
  const test::DeviceLayer act_order(
      test::make_layer(test::layer(1536, 264).group(64).sym().v2().desc_act().random_seed(132)));
  const ref::QuantizedLayer whole =
      test::make_layer(test::layer(2048, 264).group(128).asym().v1().desc_act().random_seed(133));
  const ref::QuantizedLayer shard_host = ref::row_shard(whole, 328, 1536, true);
  const test::DeviceLayer shard(shard_host);
  DispatchOptions defaults;
  defaults.dtype = ElementType::kBf16;
  DispatchOptions strict = defaults;
  strict.accumulation = Accumulation::kFp32;
  DispatchOptions fast = defaults;  // rules naming the fp16-chain kernels are skipped: they have no bf16 build
  fast.accumulation = Accumulation::kFp16Partials;
  DispatchOptions invariant = defaults;
  invariant.batch_invariant = true;
  for (const DispatchOptions& o : {defaults, strict, fast, invariant}) {
    INFO("accumulation " << static_cast<int>(o.accumulation) << ", batch invariant " << o.batch_invariant);
    check_every_m(dense.weights, ref::dequantize(dense.host), o, ms, kBf16Tolerance);
    check_every_m(act_order.weights, ref::dequantize(act_order.host), o, ms, kBf16Tolerance);
    check_every_m(shard.weights, ref::dequantize(shard_host), o, ms, kBf16Tolerance);
  }
}

TEST_CASE("the dispatcher refuses a call of the other element type, naming problem.dtype", "[gpu][dispatcher][bf16]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  const test::DeviceLayer layer(test::make_layer(test::layer(512, 264).group(128).asym().v1().random_seed(134)));
  for (const ElementType created_for : {ElementType::kFp16, ElementType::kBf16}) {
    DispatchOptions o;
    o.dtype = created_for;
    Dispatcher d;
    REQUIRE(Dispatcher::create(layer.weights, o, &d).ok());
    Workspace ws(d.workspace_bytes());
    const test::DeviceArray<std::uint16_t> a(test::random_activations(4, 512, 135));
    std::vector<std::uint16_t> init(4 * 264, test::kSentinel);
    test::DeviceArray<std::uint16_t> c(init);
    GemmProblem p;
    p.m = 4;
    p.a = a.get();
    p.c = c.get();
    p.weights = &layer.weights;
    p.dtype = created_for == ElementType::kFp16 ? ElementType::kBf16 : ElementType::kFp16;
    const Status s = d.launch(p, ws.buffer.get(), ws.bytes, nullptr);
    INFO(s.message);
    CHECK(s.code == StatusCode::kUnsupported);
    CHECK(names(s, "problem.dtype"));
    OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
    CHECK(c.download() == init);  // nothing launched
  }
}

TEST_CASE("dequantize() writes every layer kind's dense weights bit for bit", "[gpu][dispatcher]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  for (const test::LayerSpec& spec : {test::layer(384, 264).group(128).sym().v1().random_seed(121),
                                      test::layer(1152, 776).group(128).asym().v2().random_seed(122),
                                      test::layer(1000, 200).group(-1).asym().v1().random_seed(123),
                                      test::layer(512, 1032).group(32).asym().v1().random_seed(124),
                                      test::layer(1024, 264).group(128).asym().v1().desc_act().random_seed(125),
                                      test::layer(768, 520).group(32).sym().v2().desc_act().random_seed(126)}) {
    INFO(test::describe(spec));
    const test::DeviceLayer layer(test::make_layer(spec));
    check_dense(layer.weights, layer.host);
  }
  {
    INFO("v1 zero points of 0, with the toolkits' borrow");
    const test::DeviceLayer layer(test::with_zero_points_of_zero(
        test::make_layer(test::layer(1024, 264).group(64).asym().v1().random_seed(127))));
    check_dense(layer.weights, layer.host);
  }
  {
    INFO("act-order row shard");
    const ref::QuantizedLayer whole =
        test::make_layer(test::layer(2048, 264).group(128).asym().v1().desc_act().random_seed(128));
    const ref::QuantizedLayer shard = ref::row_shard(whole, 328, 1536, true);
    const test::DeviceLayer layer(shard);
    check_dense(layer.weights, shard);
  }
  {
    INFO("row shard with its own groups");
    const ref::QuantizedLayer whole = test::make_layer(test::layer(1024, 520).group(64).sym().v2().random_seed(129));
    const ref::QuantizedLayer shard = ref::row_shard(whole, 256, 768, false);
    const test::DeviceLayer layer(shard);
    check_dense(layer.weights, shard);
  }
  {
    INFO("column shard as a strided view");
    const test::DeviceLayer layer(test::make_layer(test::layer(640, 1024).group(128).asym().v1().random_seed(130)));
    const int n0 = 264, n1 = 776;
    QuantizedWeights view = layer.weights;
    view.n = n1 - n0;
    view.qweight = layer.qweight.get() + n0;
    view.ldq = 1024;
    view.qzeros = layer.qzeros.get() + n0 / 8;
    view.ldz = 1024 / 8;
    view.scales = reinterpret_cast<const half*>(layer.scales.get()) + n0;
    view.lds = 1024;
    check_dense(view, ref::column_shard(layer.host, n0, n1));
  }
}

TEST_CASE("dequantize(): an invalid act-order layout gives NaN; bad arguments are named", "[gpu][dispatcher]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  ref::QuantizedLayer bad = test::make_layer(test::layer(512, 128).group(64).sym().v1().desc_act().random_seed(131));
  bad.g_idx[77] = bad.num_groups;  // one past the end: prepare_act_order marks the layout invalid
  test::DeviceArray<std::int32_t> qweight(bad.qweight), g_idx(bad.g_idx), qzeros(bad.qzeros);
  test::DeviceArray<std::uint16_t> scales(bad.scales);
  const std::size_t bytes = act_order_buffer_bytes(bad.k, bad.n, bad.num_groups);
  test::DeviceArray<unsigned char> buffer(bytes);
  PreparedActOrder prepared;
  REQUIRE(prepare_act_order(qweight.get(), 0, g_idx.get(), bad.k, bad.n, bad.num_groups, buffer.get(), bytes, nullptr,
                            &prepared)
              .ok());
  QuantizedWeights w;
  w.k = bad.k;
  w.n = bad.n;
  w.qzeros = qzeros.get();
  w.scales = reinterpret_cast<const half*>(scales.get());
  w.group_size = bad.group_size;
  w.num_groups = bad.num_groups;
  w.act_order = &prepared;
  for (const ElementType dtype : {ElementType::kFp16, ElementType::kBf16}) {
    INFO(element_name(dtype));
    const std::vector<std::uint16_t> dense = run_dequantize(w, w.n, dtype);
    const ref::ElementDecoder decode = test::decoder(dtype);
    CHECK(std::all_of(dense.begin(), dense.end(), [&](std::uint16_t h) { return std::isnan(decode(h)); }));
  }

  const test::DeviceLayer layer(test::make_layer(test::layer(256, 128).group(128).sym().v1().random_seed(132)));
  test::DeviceArray<std::uint16_t> out(static_cast<std::size_t>(256) * 136);
  half* o = reinterpret_cast<half*>(out.get());
  CHECK(names(dequantize(layer.weights, nullptr, 0, nullptr), "out: null"));
  CHECK(names(dequantize(layer.weights, o, 64, nullptr), "ldw: must be >= n"));
  CHECK(names(dequantize(layer.weights, o, 130, nullptr), "ldw: must be a multiple of 4"));
  CHECK(dequantize(layer.weights, o + 1, 0, nullptr).code == StatusCode::kMisalignedPointer);
  CHECK(names(dequantize(layer.weights, o + 1, 0, nullptr), "out: must be 8-byte aligned"));
  CHECK(names(dequantize(layer.weights, reinterpret_cast<half*>(layer.qweight.get()), 0, nullptr),
              "out: overlaps weights.qweight"));
  QuantizedWeights no_scales = layer.weights;
  no_scales.scales = nullptr;
  CHECK(names(dequantize(no_scales, o, 0, nullptr), "weights.scales: null"));
  CHECK(names(dequantize(layer.weights, out.get(), 0, static_cast<ElementType>(9), nullptr), "dtype: not an"));
}

TEST_CASE("batch invariance: row i of C has the same bits for every M and every content of the other rows",
          "[gpu][batch-invariance]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  // Long K over few columns (several K blocks even at M = 1), and an act-order layer; fp16 and bf16.
  for (const ElementType dtype : {ElementType::kFp16, ElementType::kBf16})
    for (const test::LayerSpec& spec : {test::layer(4096, 520).group(128).asym().v1().random_seed(141),
                                        test::layer(2048, 264).group(64).sym().v2().desc_act().random_seed(142)}) {
      INFO(test::describe(spec) << ", " << element_name(dtype));
      DispatchOptions options;
      options.batch_invariant = true;
      options.max_m = 600;
      options.dtype = dtype;
      const ref::ElementDecoder decode = test::decoder(dtype);
      const test::DeviceLayer layer(test::make_layer(spec));
      const int k = spec.k, n = spec.n;
      Dispatcher d;
      REQUIRE(Dispatcher::create(layer.weights, options, &d).ok());
      REQUIRE(d.rows_of_k_per_block() > 0);
      Workspace ws(d.workspace_bytes());

      // The rows under watch, each computed alone (M = 1).
      constexpr int kWatched = 3;
      const std::vector<std::uint16_t> watched = test::random_activations(kWatched, k, 143, dtype);
      std::vector<std::vector<std::uint16_t>> alone(kWatched);
      for (int i = 0; i < kWatched; ++i) {
        const test::DeviceArray<std::uint16_t> a(
            std::vector<std::uint16_t>(watched.begin() + static_cast<std::ptrdiff_t>(i) * k,
                                       watched.begin() + static_cast<std::ptrdiff_t>(i + 1) * k));
        const DispatchResult r = run_call(d, layer.weights, 1, a, ws);
        REQUIRE(r.status.ok());
        alone[i] = r.c;
        const ref::ErrorReport e = ref::compare(r.c.data(), 1, n, 0,
                                                ref::gemm(1, n, k, watched.data() + static_cast<std::ptrdiff_t>(i) * k,
                                                          0, ref::dequantize(layer.host), decode),
                                                decode);
        CHECK(e.non_finite == 0);
        CHECK(e.relative < (dtype == ElementType::kBf16 ? 4.0 / 256 : 5e-3));
      }
      DispatchPlan first;
      REQUIRE(d.plan(1, &first).ok());
      INFO("kernel " << first.kernel_name << ", rows of K per block " << d.rows_of_k_per_block() << ", K blocks "
                     << first.plan.grid_z);

      // Inside batches of M = 2 .. 600 (across the 16 / 32 / 64-row blocks and the 256-row launches), at random
      // positions among random rows; once with the other rows 100x larger.
      std::mt19937 rng(144);
      int batches = 0;
      for (const int m : {2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 200, 255, 256, 257, 600}) {
        for (const float other_scale : {1.0f, 100.0f}) {
          if (other_scale != 1.0f && m != 65 && m != 257) continue;
          std::vector<std::uint16_t> a = test::random_activations(m, k, 1000 + m, dtype);
          if (other_scale != 1.0f)
            for (auto& x : a)
              x = dtype == ElementType::kBf16 ? ref::float_to_bf16_bits(other_scale * ref::bf16_bits_to_float(x))
                                              : ref::float_to_half_bits(other_scale * ref::half_bits_to_float(x));
          std::vector<int> rows(m);
          std::iota(rows.begin(), rows.end(), 0);
          std::shuffle(rows.begin(), rows.end(), rng);
          const int placed = std::min(kWatched, m);
          for (int i = 0; i < placed; ++i)
            std::copy(watched.begin() + static_cast<std::ptrdiff_t>(i) * k,
                      watched.begin() + static_cast<std::ptrdiff_t>(i + 1) * k,
                      a.begin() + static_cast<std::ptrdiff_t>(rows[i]) * k);
          const test::DeviceArray<std::uint16_t> a_device(a);
          const DispatchResult r = run_call(d, layer.weights, m, a_device, ws);
          INFO("M = " << m << " (other rows x" << other_scale << "), " << r.plan.launches << " launch(es)");
          REQUIRE(r.status.ok());
          CHECK(r.plan.kernel == first.kernel);
          CHECK(r.plan.plan.rows_of_k_per_block == d.rows_of_k_per_block());
          CHECK(r.workspace_nonzero == 0);
          for (int i = 0; i < placed; ++i) {
            INFO("watched row " << i << " at position " << rows[i]);
            const std::vector<std::uint16_t> got(r.c.begin() + static_cast<std::ptrdiff_t>(rows[i]) * n,
                                                 r.c.begin() + static_cast<std::ptrdiff_t>(rows[i] + 1) * n);
            CHECK(got == alone[i]);
          }
          ++batches;
        }
      }
      CHECK(batches == 24);
      // A second Dispatcher of the same layer and options fixes the same split (the split is a function of the layer,
      // the options and the device).
      Dispatcher again;
      REQUIRE(Dispatcher::create(layer.weights, options, &again).ok());
      CHECK(again.rows_of_k_per_block() == d.rows_of_k_per_block());
    }
}

TEST_CASE("deterministic: the same bits every run; across SM counts only with a fixed K split", "[gpu][determinism]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  // 32 column tiles over a long K: the scheduler gives each tile about resident blocks / 32 K blocks, so the split
  // follows the SM count.
  const test::DeviceLayer layer(test::make_layer(test::layer(8192, 4096).group(128).asym().v1().random_seed(151)));
  const int m = 4;
  const std::vector<std::uint16_t> a = test::random_activations(m, layer.host.k, 152);
  const test::DeviceArray<std::uint16_t> a_device(a);
  const DeviceInfo device = this_device();
  DeviceInfo smaller = device;  // the same GPU described with half its multiprocessors: a smaller GPU of its kind
  smaller.multiprocessors = std::max(1, device.multiprocessors / 2);

  DispatchOptions o;
  o.deterministic = true;
  o.max_m = 16;
  Dispatcher full, half_size;
  REQUIRE(Dispatcher::create(layer.weights, o, device, &full).ok());
  REQUIRE(Dispatcher::create(layer.weights, o, smaller, &half_size).ok());
  DispatchPlan p_full, p_half;
  REQUIRE(full.plan(m, &p_full).ok());
  REQUIRE(half_size.plan(m, &p_half).ok());
  INFO(p_full.kernel_name << ": K blocks " << p_full.plan.grid_z << " on " << device.multiprocessors << " SMs, "
                          << p_half.plan.grid_z << " on " << smaller.multiprocessors);
  CHECK(p_full.plan.grid_z != p_half.plan.grid_z);  // so the order of the fp32 additions differs

  Workspace ws(std::max(full.workspace_bytes(), half_size.workspace_bytes()));
  const DispatchResult first = run_call(full, layer.weights, m, a_device, ws);
  REQUIRE(first.status.ok());
  for (int run = 0; run < 5; ++run) CHECK(run_call(full, layer.weights, m, a_device, ws).c == first.c);

  o.rows_of_k_per_block = 1024;  // a multiple of every tile's stage
  Dispatcher fixed_full, fixed_half;
  REQUIRE(Dispatcher::create(layer.weights, o, device, &fixed_full).ok());
  REQUIRE(Dispatcher::create(layer.weights, o, smaller, &fixed_half).ok());
  Workspace ws_fixed(std::max(fixed_full.workspace_bytes(), fixed_half.workspace_bytes()));
  const DispatchResult on_full = run_call(fixed_full, layer.weights, m, a_device, ws_fixed);
  const DispatchResult on_half = run_call(fixed_half, layer.weights, m, a_device, ws_fixed);
  REQUIRE(on_full.status.ok());
  REQUIRE(on_half.status.ok());
  CHECK(on_full.plan.plan.grid_z == 8);
  CHECK(on_full.c == on_half.c);
  const ref::ErrorReport e =
      ref::compare(on_full.c.data(), m, layer.host.n, 0,
                   ref::gemm(m, layer.host.n, layer.host.k, a.data(), 0, ref::dequantize(layer.host)));
  CHECK(e.non_finite == 0);
  CHECK(e.relative < 2e-3);
}

namespace {

/// A layer of random 4-bit values (uniform q and z, v2 zeros) with scales in [s, 2s): all of the 4-bit range is
/// used, unlike an RTN-quantized normal layer, so that the fp16 chain's 4-product partial sums reach their worst.
ref::QuantizedLayer uniform_layer(int k, int n, float s, std::uint32_t seed) {
  ref::QuantizedLayer l;
  l.k = k;
  l.n = n;
  l.group_size = 128;
  l.num_groups = k / 128;
  l.format = ZeroPointFormat::kGptqV2;
  l.symmetric = false;
  std::mt19937 rng(seed);
  l.qweight.resize(static_cast<std::size_t>(k / 8) * n);
  for (auto& q : l.qweight) q = static_cast<std::int32_t>(rng());
  l.qzeros.resize(static_cast<std::size_t>(l.num_groups) * (n / 8));
  for (auto& z : l.qzeros) z = static_cast<std::int32_t>(rng());
  std::uniform_real_distribution<float> scale(s, 2 * s);
  l.scales.resize(static_cast<std::size_t>(l.num_groups) * n);
  for (auto& x : l.scales) x = ref::float_to_half_bits(scale(rng));
  l.g_idx.resize(k);
  for (int i = 0; i < k; ++i) l.g_idx[i] = i / 128;
  return l;
}

}  // namespace

TEST_CASE("overflow-safe by default: activations of +-200 and +-2000 on a K = 14336 layer", "[gpu][overflow]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  const int k = 14336, n = 256;
  for (const float amplitude : {200.0f, 2000.0f}) {
    // Scales so that the exact outputs (standard deviation about 676 · amplitude · s) stay below ~35000.
    const ref::QuantizedLayer host = uniform_layer(k, n, 8.0f / amplitude, 161);
    const test::DeviceLayer layer(host);
    const std::vector<double> w = ref::dequantize(host);
    Dispatcher d;
    REQUIRE(Dispatcher::create(layer.weights, DispatchOptions{}, &d).ok());
    Workspace ws(d.workspace_bytes());
    for (const int m : {1, 2, 8, 64, 300}) {
      std::mt19937 rng(162 + m);
      std::uniform_real_distribution<float> uniform(-amplitude, amplitude);
      std::vector<std::uint16_t> a(static_cast<std::size_t>(m) * k);
      for (auto& x : a) x = ref::float_to_half_bits(uniform(rng));
      const test::DeviceArray<std::uint16_t> a_device(a);
      const std::vector<double> expected = ref::gemm(m, n, k, a.data(), 0, w);
      double largest = 0.0;
      for (const double x : expected) largest = std::max(largest, std::abs(x));
      REQUIRE(largest < 65504.0);  // the exact result fits in fp16
      const DispatchResult r = run_call(d, layer.weights, m, a_device, ws);
      INFO("|a| <= " << amplitude << ", M = " << m << ": " << r.plan.kernel_name << "; largest |C| " << largest);
      REQUIRE(r.status.ok());
      const ref::ErrorReport e = ref::compare(r.c.data(), m, n, 0, expected);
      INFO("relative error " << e.relative << ", " << e.non_finite << " non-finite");
      CHECK(e.non_finite == 0);
      CHECK(e.relative < 5e-3);
      CHECK(kernel_info(r.plan.kernel).accumulation != Accumulation::kFp16Partials);
      if (amplitude == 2000.0f && m == 1) {
        // The hazard is real: Baseline's fp16 4-product partial sums overflow (about 1 in 3500 of them here).
        const test::CallResult baseline = test::call<presets::Baseline>(layer.weights, m, a_device, 0, 0);
        REQUIRE(baseline.status.ok());
        CHECK(ref::compare(baseline.c.data(), m, n, 0, expected).non_finite > 0);
      }
    }
  }
}

TEST_CASE("K blocks that cancel: fp32 throughout stays finite where fp16 partial sums overflow", "[gpu][overflow]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  // Activations +200 over the first half of K and -200 over the second; every weight 15 · s (q = 15, z = 0) with the
  // second half's scales equal to the first half's or one step (1/256) below. Every 128-row partial sum is about
  // +-144000 (past fp16), the halves are about +-8e6, and the exact result, 200 · 15 · 128 / 256 per lower scale,
  // fits in fp16. Scales of 7 significant bits make every weight and product exact in fp16 / fp32.
  const int k = 14336, n = 256, groups = k / 128, m = 4;
  ref::QuantizedLayer host = uniform_layer(k, n, 0.25f, 171);
  for (auto& q : host.qweight) q = static_cast<std::int32_t>(0xFFFFFFFFu);  // q = 15
  for (auto& z : host.qzeros) z = 0;                                        // z = 0 (v2)
  std::mt19937 rng(172);
  std::uniform_int_distribution<int> mantissa(64, 127);
  std::bernoulli_distribution lower(0.15);
  for (int g = 0; g < groups / 2; ++g)
    for (int c = 0; c < n; ++c) {
      const int s = mantissa(rng);
      host.scales[static_cast<std::size_t>(g) * n + c] = ref::float_to_half_bits(s / 256.0f);
      host.scales[static_cast<std::size_t>(g + groups / 2) * n + c] =
          ref::float_to_half_bits((s - (lower(rng) ? 1 : 0)) / 256.0f);
    }
  const test::DeviceLayer layer(host);
  std::vector<std::uint16_t> a(static_cast<std::size_t>(m) * k);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < k; ++j)
      a[static_cast<std::size_t>(i) * k + j] = ref::float_to_half_bits(j < k / 2 ? 200.0f : -200.0f);
  const test::DeviceArray<std::uint16_t> a_device(a);
  const std::vector<double> expected = ref::gemm(m, n, k, a.data(), 0, ref::dequantize(host));
  double largest = 0.0;
  for (const double x : expected) largest = std::max(largest, std::abs(x));
  REQUIRE(largest < 65504.0);
  REQUIRE(largest > 0.0);

  DispatchOptions strict;
  strict.accumulation = Accumulation::kFp32;
  DispatchOptions invariant;
  invariant.batch_invariant = true;
  for (const DispatchOptions& o : {strict, invariant}) {
    Dispatcher d;
    REQUIRE(Dispatcher::create(layer.weights, o, &d).ok());
    Workspace ws(d.workspace_bytes());
    const DispatchResult r = run_call(d, layer.weights, m, a_device, ws);
    INFO(r.plan.kernel_name << ", K blocks " << r.plan.plan.grid_z);
    REQUIRE(r.status.ok());
    const ref::ErrorReport e = ref::compare(r.c.data(), m, n, 0, expected);
    INFO("relative error " << e.relative << ", " << e.non_finite << " non-finite; largest |C| " << largest);
    CHECK(e.non_finite == 0);
    CHECK(e.relative < 5e-3);
  }
  // The fp16 partial sums: Baseline's 128-row partials overflow (every output), and so may TensorCore's K blocks (the
  // default's residual hazard, Accumulation::kFp32PerKBlock): reported, not asserted.
  const test::CallResult baseline = test::call<presets::Baseline>(layer.weights, m, a_device, 0, 0);
  REQUIRE(baseline.status.ok());
  CHECK(ref::compare(baseline.c.data(), m, n, 0, expected).non_finite > 0);
  Dispatcher d;
  REQUIRE(Dispatcher::create(layer.weights, DispatchOptions{}, &d).ok());
  Workspace ws(d.workspace_bytes());
  const DispatchResult r = run_call(d, layer.weights, m, a_device, ws);
  REQUIRE(r.status.ok());
  const ref::ErrorReport e = ref::compare(r.c.data(), m, n, 0, expected);
  WARN("K blocks that cancel, default options (" << r.plan.kernel_name << ", " << r.plan.plan.grid_z
                                                 << " K blocks): " << e.non_finite << " non-finite of " << m * n
                                                 << " outputs, relative error " << e.relative);
}

TEST_CASE("presets::Auto: launch<presets::Auto> with the workspace it asks for, fp16 and bf16", "[gpu][dispatcher]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  const test::DeviceLayer layer(test::make_layer(test::layer(2048, 520).group(128).asym().v2().random_seed(181)));
  const std::vector<double> w = ref::dequantize(layer.host);
  for (const ElementType dtype : {ElementType::kFp16, ElementType::kBf16})
    for (const int m : {0, 1, 5, 64, 300}) {
      const std::vector<std::uint16_t> a = test::random_activations(std::max(m, 1), layer.host.k, 182 + m, dtype);
      const test::DeviceArray<std::uint16_t> a_device(a);
      test::DeviceArray<std::uint16_t> c(
          std::vector<std::uint16_t>(static_cast<std::size_t>(std::max(m, 1)) * layer.host.n, test::poison_for(dtype)));
      GemmProblem p = layer.problem();
      p.m = m;
      p.a = a_device.get();
      p.c = c.get();
      p.dtype = dtype;
      CHECK(validate<presets::Auto>(p).ok());
      std::size_t bytes = 0;
      REQUIRE(workspace_bytes<presets::Auto>(p, &bytes).ok());
      Workspace ws(bytes);
      INFO("M = " << m << " (" << element_name(dtype) << "), workspace " << bytes);
      REQUIRE(launch<presets::Auto>(p, ws.buffer.get(), ws.bytes, nullptr).ok());
      OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
      CHECK(ws.head_nonzero() == 0);
      if (m == 0) continue;
      const std::vector<std::uint16_t> out = c.download();
      const ref::ErrorReport e = ref::compare(
          out.data(), m, layer.host.n, 0,
          ref::gemm(m, layer.host.n, layer.host.k, a.data(), 0, w, test::decoder(dtype)), test::decoder(dtype));
      CHECK(e.non_finite == 0);
      CHECK(e.relative < (dtype == ElementType::kBf16 ? 4.0 / 256 : 5e-3));  // bf16: as in the bf16 dispatcher case
      if (bytes > 0) CHECK(launch<presets::Auto>(p, nullptr, 0, nullptr).code == StatusCode::kNullPointer);
    }
}

TEST_CASE("one workspace serves two layers and every kernel in sequence, its head left zero by each",
          "[gpu][dispatcher]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  // The deterministic kernels need zeros where their counters go (the workspace's head); their partial sums may land
  // where the prefill path left its dense weights (past the head), which they write before they read.
  const test::DeviceLayer long_k(test::make_layer(test::layer(4096, 520).group(128).asym().v1().random_seed(191)));
  const test::DeviceLayer wide(
      test::make_layer(test::layer(1024, 2056).group(64).sym().v2().desc_act().random_seed(192)));
  DispatchOptions o;
  o.deterministic = true;
  o.max_m = 512;
  Dispatcher d_long, d_wide;
  REQUIRE(Dispatcher::create(long_k.weights, o, &d_long).ok());
  REQUIRE(Dispatcher::create(wide.weights, o, &d_wide).ok());
  Workspace ws(std::max(d_long.workspace_bytes(), d_wide.workspace_bytes()));
  struct Step {
    const test::DeviceLayer* layer;
    const Dispatcher* d;
    int m;
  };
  std::vector<std::string> kernels;
  bool scratch_dirty_before_a_split_k_call = false;  // the case the contract is for: seen at least once below
  bool scratch_dirty = false;
  for (const Step& step :
       {Step{&long_k, &d_long, 8}, Step{&wide, &d_wide, 300}, Step{&long_k, &d_long, 8}, Step{&wide, &d_wide, 8},
        Step{&long_k, &d_long, 512}, Step{&wide, &d_wide, 3}, Step{&long_k, &d_long, 64}}) {
    const ref::QuantizedLayer& h = step.layer->host;
    const std::vector<std::uint16_t> a = test::random_activations(step.m, h.k, 193 + step.m);
    const test::DeviceArray<std::uint16_t> a_device(a);
    const DispatchResult r = run_call(*step.d, step.layer->weights, step.m, a_device, ws);
    INFO("K = " << h.k << ", M = " << step.m << ": " << r.plan.kernel_name);
    REQUIRE(r.status.ok());
    const ref::ErrorReport e =
        ref::compare(r.c.data(), step.m, h.n, 0, ref::gemm(step.m, h.n, h.k, a.data(), 0, ref::dequantize(h)));
    CHECK(e.non_finite == 0);
    CHECK(e.relative < 2e-3);
    CHECK(r.workspace_nonzero == 0);
    if (scratch_dirty && r.plan.kernel != KernelChoice::kDequantCublas && r.plan.workspace_bytes > 0)
      scratch_dirty_before_a_split_k_call = true;
    scratch_dirty = r.scratch_nonzero > 0;
    kernels.emplace_back(r.plan.kernel_name);
  }
  CAPTURE(kernels);
  // Both sides of the contract ran: a kernel that needs zeros, and (where built) the prefill path that writes W.
  CHECK(std::any_of(kernels.begin(), kernels.end(), [](const std::string& k) { return k != "DequantCublas"; }));
  // (The table decides which calls take the prefill path; M = 300 and 512 at least do on an H200, and small layers at
  // M = 64 may too.)
  if (prefill_path_built_for(this_device())) {
    CHECK(std::count(kernels.begin(), kernels.end(), std::string("DequantCublas")) >= 2);
    CHECK(scratch_dirty_before_a_split_k_call);
  }
}
