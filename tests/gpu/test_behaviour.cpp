// Device behaviour beyond plain correctness: the act-order prepare step, invalid g_idx, determinism of the
// in-block reduction, the fp16 overflow that fp32 dot products avoid, and launches that must not run.

#include "../common/test_support.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

using namespace opt4gptq;
namespace ref = opt4gptq::reference;

TEST_CASE("prepare_act_order sorts rows by group, stably, padding each group to 8 rows", "[gpu][act-order]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  // A row shard of an act-order layer: uneven group sizes (some not multiples of 8), groups in scattered order.
  const ref::QuantizedLayer whole =
      test::make_layer(test::layer(4096, 64).group(128).asym().v1().desc_act().random_seed(31));
  const ref::QuantizedLayer shard = ref::row_shard(whole, 1000, 3000, true);
  const test::DeviceLayer layer(shard);
  const int k = shard.k, n = shard.n, groups = shard.num_groups;

  // Host model: groups in order, rows of a group in their original order, each group padded to a multiple of 8.
  std::vector<int> expected_perm, expected_word_group;
  for (int g = 0; g < groups; ++g) {
    int count = 0;
    for (int row = 0; row < k; ++row)
      if (shard.g_idx[row] == g) {
        expected_perm.push_back(row);
        ++count;
      }
    while (count % 8 != 0) {
      expected_perm.push_back(-1);
      ++count;
    }
    for (int w = 0; w < count / 8; ++w) expected_word_group.push_back(g);
  }
  const int rows_used = static_cast<int>(expected_perm.size());
  REQUIRE(rows_used > k);  // the shard's groups are uneven, so there is padding
  REQUIRE(rows_used <= layer.prepared.k_rows_max);

  std::vector<std::int32_t> perm(layer.prepared.k_rows_max), word_group(layer.prepared.k_rows_max / 8), info(2);
  std::vector<std::int32_t> sorted(static_cast<std::size_t>(layer.prepared.k_rows_max / 8) * n);
  OPT4GPTQ_CHECK_RUNTIME(platform::copy_to_host(perm.data(), layer.prepared.perm, perm.size() * 4));
  OPT4GPTQ_CHECK_RUNTIME(platform::copy_to_host(word_group.data(), layer.prepared.word_group, word_group.size() * 4));
  OPT4GPTQ_CHECK_RUNTIME(platform::copy_to_host(info.data(), layer.prepared.info, 8));
  OPT4GPTQ_CHECK_RUNTIME(platform::copy_to_host(sorted.data(), layer.prepared.qweight, sorted.size() * 4));
  CHECK(info[0] == rows_used);
  CHECK(info[1] == 0);
  for (int i = 0; i < rows_used; ++i) REQUIRE(perm[i] == expected_perm[i]);
  for (int i = rows_used; i < layer.prepared.k_rows_max; ++i) REQUIRE(perm[i] == -1);
  for (int w = 0; w < rows_used / 8; ++w) REQUIRE(word_group[w] == expected_word_group[w]);
  for (int i = 0; i < layer.prepared.k_rows_max; ++i)
    for (int c = 0; c < n; ++c) {
      const int q = format::unpack(static_cast<std::uint32_t>(sorted[(i / 8) * n + c]), i % 8);
      REQUIRE(q == (perm[i] >= 0 ? shard.q(perm[i], c) : 0));
    }
}

TEST_CASE("an out-of-range g_idx entry is reported and poisons the output", "[gpu][act-order]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  ref::QuantizedLayer bad = test::make_layer(test::layer(512, 128).group(64).sym().v1().desc_act().random_seed(41));
  bad.g_idx[77] = bad.num_groups;  // one past the end
  CHECK(validate_g_idx(bad.g_idx.data(), bad.k, bad.num_groups).code == StatusCode::kInvalidData);

  test::DeviceArray<std::int32_t> qweight(bad.qweight), g_idx(bad.g_idx), qzeros(bad.qzeros);
  test::DeviceArray<std::uint16_t> scales(bad.scales);
  const std::size_t bytes = act_order_buffer_bytes(bad.k, bad.n, bad.num_groups);
  test::DeviceArray<unsigned char> buffer(bytes);
  PreparedActOrder prepared;
  REQUIRE(prepare_act_order(qweight.get(), 0, g_idx.get(), bad.k, bad.n, bad.num_groups, buffer.get(), bytes, nullptr,
                            &prepared)
              .ok());
  const Status checked = check_act_order(prepared, nullptr);
  CHECK(checked.code == StatusCode::kInvalidData);
  CHECK(std::string(checked.message).rfind("g_idx:", 0) == 0);

  const int m = 4;
  const test::DeviceArray<std::uint16_t> a(test::random_activations(m, bad.k, 5));
  test::DeviceArray<std::uint16_t> c(std::vector<std::uint16_t>(m * bad.n, 0));
  QuantizedWeights w;
  w.k = bad.k;
  w.n = bad.n;
  w.qzeros = qzeros.get();
  w.scales = reinterpret_cast<const half*>(scales.get());
  w.group_size = bad.group_size;
  w.num_groups = bad.num_groups;
  w.act_order = &prepared;
  GemmProblem p;
  p.m = m;
  p.a = reinterpret_cast<const half*>(a.get());
  p.c = reinterpret_cast<half*>(c.get());
  p.weights = &w;
  REQUIRE(launch<presets::Opt4Gptq>(p, nullptr).ok());
  OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
  const std::vector<std::uint16_t> out = c.download();
  const auto nan_count =
      std::count_if(out.begin(), out.end(), [](std::uint16_t h) { return std::isnan(ref::half_bits_to_float(h)); });
  CHECK(nan_count == static_cast<long>(out.size()));
  REQUIRE(launch<presets::Baseline>(p, nullptr).ok());
  OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
  const std::vector<std::uint16_t> out2 = c.download();
  CHECK(std::all_of(out2.begin(), out2.end(), [](std::uint16_t h) { return std::isnan(ref::half_bits_to_float(h)); }));
}

TEST_CASE("SharedBuffered with one K block is bitwise reproducible", "[gpu][determinism]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  const test::DeviceLayer layer(test::make_layer(test::layer(1024, 2048).group(128).asym().v2().random_seed(51)));
  const int m = 8;
  const test::DeviceArray<std::uint16_t> a(test::random_activations(m, layer.host.k, 52));
  const test::CallResult first = test::call<presets::Opt4Gptq>(layer.weights, m, a, 0, 0);
  REQUIRE(first.status.ok());
  REQUIRE(first.plan.grid_z == 1);  // K = 1024 is one stage: one K block, plain stores
  CHECK_FALSE(first.plan.zero_fill_output);
  for (int run = 0; run < 5; ++run) {
    const test::CallResult again = test::call<presets::Opt4Gptq>(layer.weights, m, a, 0, 0);
    REQUIRE(again.c == first.c);
  }
}

TEST_CASE("fp32 dot products survive activations that overflow the fp16 chain", "[gpu][precision]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  // Positive weights (q - z up to 7) and activations of 3000: the fp16 chain adds 4 products per half,
  // 4 * 3000 * 7 = 84000 > 65504, and becomes infinite; the outputs themselves (~3000) fit in fp16.
  const int k = 256, n = 64, m = 2;
  std::vector<float> w(k * n);
  for (int i = 0; i < k * n; ++i) w[i] = 1e-3f * static_cast<float>(i % 7 + 1);
  ref::QuantizeOptions o;
  o.group_size = 128;
  o.symmetric = true;
  const test::DeviceLayer layer(ref::quantize_rtn(w, k, n, o));
  std::vector<std::uint16_t> a(m * k);
  for (int i = 0; i < m * k; ++i) a[i] = ref::float_to_half_bits(3000.0f + static_cast<float>(i % 13));
  const test::DeviceArray<std::uint16_t> a_device(a);
  const std::vector<double> expected = ref::gemm(m, n, k, a.data(), 0, ref::dequantize(layer.host));

  const test::CallResult fp16 = test::call<presets::Opt4Gptq>(layer.weights, m, a_device, 0, 0);
  const test::CallResult fp32 =
      test::call<DequantGemm<LoadHalf2, ReduceSharedBuffered, MathDot2F32>>(layer.weights, m, a_device, 0, 0);
  REQUIRE(fp16.status.ok());
  REQUIRE(fp32.status.ok());
  CHECK(ref::compare(fp16.c.data(), m, n, 0, expected).non_finite > 0);  // the hazard is real
  const ref::ErrorReport e = ref::compare(fp32.c.data(), m, n, 0, expected);
  CHECK(e.non_finite == 0);
  CHECK(e.relative < 2e-3);
}

namespace {
/// A layer of K x N positive weights (1e-4 .. 7e-4: no output cancels, so the sums are large and a row's relative error
/// means what it says), group 128, asymmetric, drawn from `rng` (which the caller goes on using).
ref::QuantizedLayer positive_layer(int k, int n, std::mt19937& rng) {
  std::vector<float> w(static_cast<std::size_t>(k) * n);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  for (auto& x : w) x = 1e-4f * (1.0f + 6.0f * unit(rng));
  ref::QuantizeOptions o;
  o.group_size = 128;
  o.symmetric = false;
  return ref::quantize_rtn(w, k, n, o);
}
}  // namespace

TEST_CASE("range-scaled fp16 chain: no overflow at any magnitude, and tiny activations keep their precision",
          "[gpu][precision][range-scaling]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  // MainloopDecode with an fp16-chain MathPolicy scales each row of each staged window by a power of two
  // (kernel/range_scaling.hpp). Rows of very different magnitudes in one call: 3000 (the plain chain's 4-product
  // partial sums, 4 * 3000 * 7 = 84000, overflow; the outputs fit), +-60000 of alternating sign (near fp16's largest:
  // single products overflow), 1e-5 (fp16 subnormals, whose products with q - z are partly subnormal too: scaled up,
  // they keep their relative precision) and ordinary random activations. Each row is compared with the fp64 reference on its own. K = 20480 spans three
  // activation windows at M = 1..4 (8192 rows each), so the accumulators change units between windows.
  const int k = 20480, n = 128, m = 4;
  std::mt19937 rng(191);
  const test::DeviceLayer layer(positive_layer(k, n, rng));
  const float magnitude[m] = {3000.0f, 60000.0f, 1e-5f, 0.0f};
  std::vector<std::uint16_t> a(static_cast<std::size_t>(m) * k);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int r = 0; r < m; ++r)
    for (int i = 0; i < k; ++i) {
      const float sign = r == 1 && i % 2 == 1 ? -1.0f : 1.0f;
      const float x =
          magnitude[r] > 0.0f ? sign * magnitude[r] * (1.0f - 0.01f * static_cast<float>(i % 13)) : normal(rng);
      a[static_cast<std::size_t>(r) * k + i] = ref::float_to_half_bits(x);
    }
  const test::DeviceArray<std::uint16_t> a_device(a);
  const std::vector<double> expected = ref::gemm(m, n, k, a.data(), 0, ref::dequantize(layer.host));
  for (int r = 0; r < m; ++r)
    for (int j = 0; j < n; ++j) REQUIRE(std::abs(expected[static_cast<std::size_t>(r) * n + j]) < 65504.0);

  using RangeScaled = DecodeGemm<LoadVec8, ReduceSharedSerial, MathBuiltin>;
  static_assert(RangeScaled::Mainloop::kRangeScaled, "an fp16-chain MathPolicy must select the range scaling");
  using Unscaled = DequantGemm<LoadVec8, ReduceSharedSerial, MathBuiltin, SplitKTile>;  // same chain, no scaling
  for (const int rows : {1, 4}) {
    const test::CallResult scaled = test::call<RangeScaled>(layer.weights, rows, a_device, 0, 0);
    REQUIRE(scaled.status.ok());
    for (int r = 0; r < rows; ++r) {
      const std::vector<double> want(expected.begin() + static_cast<std::ptrdiff_t>(r) * n,
                                     expected.begin() + static_cast<std::ptrdiff_t>(r + 1) * n);
      const ref::ErrorReport e = ref::compare(scaled.c.data() + static_cast<std::size_t>(r) * n, 1, n, 0, want);
      INFO("M = " << rows << ", row " << r << " (|a| ~ " << magnitude[r] << "): relative error " << e.relative << ", "
                  << e.non_finite << " non-finite");
      CHECK(e.non_finite == 0);
      CHECK(e.relative < 2e-3);
    }
  }
  // The hazard is real: the same chain without the scaling overflows on rows 0 and 1, and row 2 loses its precision.
  const test::CallResult plain = test::call<Unscaled>(layer.weights, m, a_device, 0, 0);
  REQUIRE(plain.status.ok());
  CHECK(ref::compare(plain.c.data(), 2, n, 0, expected).non_finite > 0);
}

TEST_CASE("bf16 decode: activations far outside fp16's range become range-scaled fp16 and keep their precision",
          "[gpu][precision][range-scaling][bf16]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  // MainloopDecodeOf<ElementBf16> converts each staged window of bf16 activations to fp16 scaled per row by a power of
  // two (kernel/range_scaling.hpp). Rows that fp16 cannot hold as they are: 1e30 (products far above 65504), -1e-35
  // (below fp16's smallest subnormal; the shift is capped at 2^120, so the row lands near 13, not 512), values of one
  // row 2^29 apart (1e6 and 1/512 alternating: the small ones land below fp16's subnormal precision and round, which
  // moves the result by far less than its bf16 rounding), and ordinary random activations.
  // Positive weights, so that no output cancels and each row's relative error means what it says; K = 20480 spans
  // three windows (8192 rows each at M = 1..4), so the accumulators change units between windows. Bound: bf16's unit
  // roundoff u = 2^-8, relative (the output rounding; the fp16 sums add ~2^-11).
  const int k = 20480, n = 128, m = 4;
  std::mt19937 rng(193);
  const test::DeviceLayer layer(positive_layer(k, n, rng));
  std::vector<std::uint16_t> a(static_cast<std::size_t>(m) * k);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const char* what[m] = {"1e30", "-1e-35", "1e6 and 2^-9", "random"};
  for (int i = 0; i < k; ++i) {
    const float wobble = 1.0f - 0.01f * static_cast<float>(i % 13);
    a[i] = ref::float_to_bf16_bits(1e30f * wobble);
    a[static_cast<std::size_t>(k) + i] = ref::float_to_bf16_bits(-1e-35f * wobble);
    a[2 * static_cast<std::size_t>(k) + i] = ref::float_to_bf16_bits((i % 2 ? 1e6f : 1.0f / 512) * wobble);
    a[3 * static_cast<std::size_t>(k) + i] = ref::float_to_bf16_bits(normal(rng));
  }
  const test::DeviceArray<std::uint16_t> a_device(a);
  const std::vector<double> expected =
      ref::gemm(m, n, k, a.data(), 0, ref::dequantize(layer.host), ref::bf16_bits_to_float);

  auto check = [&](const test::CallResult& r, int rows) {
    REQUIRE(r.status.ok());
    for (int row = 0; row < rows; ++row) {
      const std::vector<double> want(expected.begin() + static_cast<std::ptrdiff_t>(row) * n,
                                     expected.begin() + static_cast<std::ptrdiff_t>(row + 1) * n);
      const ref::ErrorReport e =
          ref::compare(r.c.data() + static_cast<std::size_t>(row) * n, 1, n, 0, want, ref::bf16_bits_to_float);
      INFO("M = " << rows << ", row " << row << " (" << what[row] << "): relative error " << e.relative << ", "
                  << e.non_finite << " non-finite");
      CHECK(e.non_finite == 0);
      CHECK(e.relative < 1.0 / 256);
    }
  };
  using Chain = DecodeGemmOf<ElementBf16, LoadVec8, ReduceSharedSerial, MathBuiltin>;  // fp16 partial sums
  using Dot = DecodeGemmOf<ElementBf16, LoadVec8, ReduceSharedSerial, MathDot2F32>;    // fp32 sums of fp16 products
  static_assert(Chain::Mainloop::kRangeScaled && Dot::Mainloop::kRangeScaled, "bf16 windows are always range scaled");
  for (const int rows : {1, 4}) {
    check(test::call<presets::Bf16Decode>(layer.weights, rows, a_device, 0, 0), rows);
    check(test::call<Chain>(layer.weights, rows, a_device, 0, 0), rows);
    check(test::call<Dot>(layer.weights, rows, a_device, 0, 0), rows);
  }
}

TEST_CASE("every preset runs on a non-default stream", "[gpu][stream]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  const test::DeviceLayer layer(test::make_layer(test::layer(2048, 1024).group(128).sym().v1().random_seed(61)));
  const int m = 3;
  const std::vector<std::uint16_t> a = test::random_activations(m, layer.host.k, 62);
  const test::DeviceArray<std::uint16_t> a_device(a);
  const std::vector<double> expected =
      ref::gemm(m, layer.host.n, layer.host.k, a.data(), 0, ref::dequantize(layer.host));
  platform::stream_t stream;
  OPT4GPTQ_CHECK_RUNTIME(platform::stream_create(&stream));
  auto run = [&](auto preset) {
    using Gemm = decltype(preset);
    test::DeviceArray<std::uint16_t> c(std::vector<std::uint16_t>(m * layer.host.n, test::kPoison));
    GemmProblem p = layer.problem();
    p.m = m;
    p.a = reinterpret_cast<const half*>(a_device.get());
    p.c = reinterpret_cast<half*>(c.get());
    REQUIRE(launch<Gemm>(p, stream).ok());
    REQUIRE(platform::stream_synchronize(stream) == platform::kNativeSuccess);
    const std::vector<std::uint16_t> out = c.download();
    const ref::ErrorReport e = ref::compare(out.data(), m, layer.host.n, 0, expected);
    CHECK(e.non_finite == 0);
    CHECK(e.relative < 5e-3);
  };
  run(presets::Baseline{});
  run(presets::Smb{});
  run(presets::Vml{});
  run(presets::Ila{});
  run(presets::Opt4Gptq{});
  OPT4GPTQ_CHECK_RUNTIME(platform::stream_destroy(stream));
}

TEST_CASE("the deterministic preset: one launch, no zero-fill, same bits for many K blocks", "[gpu][determinism]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  using G = presets::Deterministic;
  // Few column tiles and a long K: the grid splits K into several blocks.
  const test::DeviceLayer layer(test::make_layer(test::layer(8192, 256).group(128).asym().v1().random_seed(71)));
  const int m = 5;
  const std::vector<std::uint16_t> a_host = test::random_activations(m, layer.host.k, 72);
  const test::DeviceArray<std::uint16_t> a(a_host);
  const test::CallResult first = test::call<G>(layer.weights, m, a, 0, 0);
  REQUIRE(first.status.ok());
  REQUIRE(first.plan.grid_z > 1);
  CHECK_FALSE(first.plan.zero_fill_output);
  CHECK(first.plan.workspace_bytes > 0);
  const ref::ErrorReport e =
      ref::compare(first.c.data(), m, layer.host.n, 0,
                   ref::gemm(m, layer.host.n, layer.host.k, a_host.data(), 0, ref::dequantize(layer.host)));
  CHECK(e.non_finite == 0);
  CHECK(e.relative < 2e-3);  // fp32 across K blocks: tighter than the fp16-atomic presets
  for (int run = 0; run < 5; ++run) {
    const test::CallResult again = test::call<G>(layer.weights, m, a, 0, 0);
    REQUIRE(again.c == first.c);
  }

  // The workspace is required and checked.
  GemmProblem p = layer.problem();
  p.m = m;
  p.a = reinterpret_cast<const half*>(a.get());
  test::DeviceArray<std::uint16_t> c(static_cast<std::size_t>(m) * layer.host.n);
  p.c = reinterpret_cast<half*>(c.get());
  std::size_t bytes = 0;
  REQUIRE(workspace_bytes<G>(p, &bytes).ok());
  CHECK(bytes == first.plan.workspace_bytes);
  Status s = launch<G>(p, nullptr, 0, nullptr);
  CHECK(s.code == StatusCode::kNullPointer);
  CHECK(std::string(s.message).rfind("workspace:", 0) == 0);
  test::DeviceArray<unsigned char> small(bytes - 4);
  s = launch<G>(p, small.get(), bytes - 4, nullptr);
  CHECK(s.code == StatusCode::kWorkspaceTooSmall);
  // One cleared workspace serves calls back to back, with its counters left at zero by each.
  test::DeviceArray<unsigned char> ws(bytes);
  REQUIRE(clear_workspace(ws.get(), bytes, nullptr).ok());
  for (int i = 0; i < 3; ++i) REQUIRE(launch<G>(p, ws.get(), bytes, nullptr).ok());
  OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
  CHECK(c.download() == first.c);
}

TEST_CASE("one deterministic workspace serves layers of different shapes in sequence", "[gpu][determinism]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  using G = presets::Deterministic;
  // Two layers whose split-K grids differ (tiles, K blocks): the second's counters fall where the first's slots were.
  const test::DeviceLayer wide(
      test::make_layer(test::layer(2048, 5632).group(64).asym().v2().desc_act().random_seed(81)));
  const test::DeviceLayer tall(
      test::make_layer(test::layer(2816, 1024).group(128).sym().v1().desc_act().random_seed(82)));
  const int m = 20;
  std::size_t bytes = 0;
  for (const test::DeviceLayer* layer : {&wide, &tall}) {
    GemmProblem p = layer->problem();
    p.m = m;
    p.a = reinterpret_cast<const half*>(0x8000000);  // only the shape matters for the size query (disjoint fakes)
    p.c = reinterpret_cast<half*>(0x10000);
    std::size_t b = 0;
    REQUIRE(workspace_bytes<G>(p, &b).ok());
    bytes = std::max(bytes, b);
  }
  REQUIRE(bytes > 0);
  test::DeviceArray<unsigned char> ws(bytes);
  REQUIRE(clear_workspace(ws.get(), bytes, nullptr).ok());
  for (int round = 0; round < 2; ++round)
    for (const test::DeviceLayer* layer : {&wide, &tall, &wide}) {
      const std::vector<std::uint16_t> a_host = test::random_activations(m, layer->host.k, 83 + round);
      const test::DeviceArray<std::uint16_t> a(a_host);
      test::DeviceArray<std::uint16_t> c(
          std::vector<std::uint16_t>(static_cast<std::size_t>(m) * layer->host.n, test::kPoison));
      GemmProblem p = layer->problem();
      p.m = m;
      p.a = reinterpret_cast<const half*>(a.get());
      p.c = reinterpret_cast<half*>(c.get());
      Plan planned;
      REQUIRE(plan<G>(p, &planned).ok());
      CHECK(planned.grid_z > 1);
      REQUIRE(launch<G>(p, ws.get(), bytes, nullptr).ok());
      OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
      const std::vector<std::uint16_t> out = c.download();
      const ref::ErrorReport e =
          ref::compare(out.data(), m, layer->host.n, 0,
                       ref::gemm(m, layer->host.n, layer->host.k, a_host.data(), 0, ref::dequantize(layer->host)));
      INFO("layer k=" << layer->host.k << " n=" << layer->host.n << " round " << round);
      CHECK(e.non_finite == 0);
      CHECK(e.relative < 2e-3);
      const std::vector<unsigned char> left = ws.download();
      CHECK(std::all_of(left.begin(), left.end(), [](unsigned char b) { return b == 0; }));
    }
}

TEST_CASE("the K split of each kernel instantiation uses its own occupancy (F1)", "[gpu][planning]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  using G = presets::Opt4Gptq;
  using Tile = G::TileShape;
  using Scheduler = G::Scheduler;
  DeviceInfo device;
  REQUIRE(current_device_info(&device).ok());
  auto occupancy = [](auto kernel) {
    int blocks = 0;
    REQUIRE(platform::max_active_blocks(kernel, Tile::kThreads, &blocks) == platform::kNativeSuccess);
    return blocks;
  };
  // The 1-row and the 8-row kernels differ in registers, so in resident blocks (on sm_90: 64 against ~127 registers).
  const int per_sm_1 = occupancy(dequant_gemm_kernel<G, 1, false>);
  const int per_sm_8 = occupancy(dequant_gemm_kernel<G, 8, false>);
  INFO("blocks per SM: 1 row " << per_sm_1 << ", 8 rows " << per_sm_8 << "; " << device.multiprocessors << " SMs");
  QuantizedWeights w;
  w.k = 8192;
  w.group_size = 128;
  w.zero_format = ZeroPointFormat::kGptqV2;
  w.qweight = reinterpret_cast<const std::int32_t*>(0x20000000);  // only the shape matters for the plan
  w.qzeros = reinterpret_cast<const std::int32_t*>(0x30000000);
  w.scales = reinterpret_cast<const half*>(0x40000000);
  GemmProblem p;
  p.a = reinterpret_cast<const half*>(0x10000000);
  p.c = reinterpret_cast<half*>(0x50000000);
  p.weights = &w;
  int sensitive = 0;
  for (const int n : {4096, 8192, 16384, 28672}) {
    w.n = n;
    // The 1-row kernel is planned first: with one cache slot for all kernels, its occupancy decided the 8-row one's.
    p.m = 1;
    Plan one;
    REQUIRE(plan<G>(p, &one).ok());
    CHECK(one.rows_of_k_per_block ==
          Scheduler::rows_of_k_per_block(w.k, one.grid_x * one.grid_y, device.multiprocessors * per_sm_1));
    p.m = 8;
    Plan eight;
    REQUIRE(plan<G>(p, &eight).ok());
    const int blocks_xy = eight.grid_x * eight.grid_y;
    const int expected = Scheduler::rows_of_k_per_block(w.k, blocks_xy, device.multiprocessors * per_sm_8);
    INFO("n = " << n);
    CHECK(eight.rows_of_k_per_block == expected);
    sensitive += expected != Scheduler::rows_of_k_per_block(w.k, blocks_xy, device.multiprocessors * per_sm_1);
  }
  if (per_sm_1 != per_sm_8 && sensitive == 0) WARN("no shape here where the two occupancies give different K splits");
}

TEST_CASE("a view of a prepared buffer with another num_groups reads nothing and gives NaN (F4)", "[gpu][act-order]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  const ref::QuantizedLayer host =
      test::make_layer(test::layer(2048, 264).group(64).asym().v1().desc_act().random_seed(95));
  const test::DeviceLayer layer(host);  // prepared for 32 groups
  REQUIRE(layer.act_order);
  const int m = 3;
  const test::DeviceArray<std::uint16_t> a(test::random_activations(m, host.k, 96));
  // scales and qzeros with room for 64 groups (the first 32 real), so that every view below is in bounds as far as
  // the problem's own extents go: only the prepared buffer disagrees.
  test::DeviceArray<std::uint16_t> scales(static_cast<std::size_t>(64) * host.n);
  test::DeviceArray<std::int32_t> qzeros(static_cast<std::size_t>(64) * host.n / 8);
  scales.upload(host.scales);
  qzeros.upload(host.qzeros);
  for (const int wrong_groups : {16, 31, 33, 64}) {
    INFO("view with num_groups = " << wrong_groups << " of a buffer prepared for " << host.num_groups);
    const PreparedActOrder view = act_order_view(layer.prepared_buffer.get(), host.k, host.n, wrong_groups);
    const Status checked = check_act_order(view, nullptr);
    CHECK(checked.code == StatusCode::kInvalidArgument);
    CHECK(std::string(checked.message).rfind("prepared:", 0) == 0);
    QuantizedWeights w = layer.weights;
    w.act_order = &view;
    w.num_groups = 0;  // as the view says
    w.scales = reinterpret_cast<const half*>(scales.get());
    w.qzeros = qzeros.get();
    // scales and qzeros hold 32 groups, the view claims another count: the kernel must read nothing through it.
    const test::CallResult r = test::call<presets::Opt4Gptq>(w, m, a, 0, 0);
    REQUIRE(r.status.ok());
    const ref::ErrorReport e = ref::compare(r.c.data(), m, host.n, 0, std::vector<double>(m * host.n, 0.0));
    CHECK(e.non_finite == m * host.n);
    CHECK(r.touched_outside == 0);
  }
}

TEST_CASE("a plan made once serves every call of its shape, and no other", "[gpu][planning]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  using G = presets::Opt4Gptq;
  // K = 1024 is one stage: one K block, plain stores, so equal plans give equal bits.
  const test::DeviceLayer layer(test::make_layer(test::layer(1024, 2048).group(128).asym().v2().random_seed(101)));
  const int m = 6, n = layer.host.n;
  const std::vector<std::uint16_t> a_host = test::random_activations(m, layer.host.k, 102);
  const test::DeviceArray<std::uint16_t> a(a_host);
  const std::vector<double> expected = ref::gemm(m, n, layer.host.k, a_host.data(), 0, ref::dequantize(layer.host));
  test::DeviceArray<std::uint16_t> c(std::vector<std::uint16_t>(static_cast<std::size_t>(m) * n, test::kPoison));
  GemmProblem p = layer.problem();
  p.m = m;
  p.a = reinterpret_cast<const half*>(a.get());
  p.c = reinterpret_cast<half*>(c.get());

  Plan planned;
  REQUIRE(plan<G>(p, &planned).ok());
  CHECK(planned.m == m);
  CHECK(planned.n == n);
  CHECK(planned.k_rows == layer.host.k);
  CHECK_FALSE(planned.act_order);
  REQUIRE(planned.grid_z == 1);
  // Planned for an explicit device: the same plan.
  DeviceInfo device;
  REQUIRE(current_device_info(&device).ok());
  Plan for_device;
  REQUIRE(plan<G>(p, device, &for_device).ok());
  CHECK(for_device.rows_per_block == planned.rows_per_block);
  CHECK(for_device.grid_x == planned.grid_x);
  CHECK(for_device.grid_y == planned.grid_y);
  CHECK(for_device.grid_z == planned.grid_z);
  CHECK(for_device.rows_of_k_per_block == planned.rows_of_k_per_block);
  CHECK(for_device.workspace_bytes == planned.workspace_bytes);
  // Facts of another device than the current one are refused (the occupancy query asks about the current one).
  DeviceInfo other = device;
  other.device = device.device + 1;
  Plan for_other;
  const Status refused = plan<G>(p, other, &for_other);
  CHECK(refused.code == StatusCode::kInvalidArgument);
  CHECK(std::string(refused.message).rfind("device:", 0) == 0);

  // launch(problem) plans the same grid: the same bits.
  REQUIRE(launch<G>(p, nullptr).ok());
  OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
  const std::vector<std::uint16_t> by_problem = c.download();
  const ref::ErrorReport e = ref::compare(by_problem.data(), m, n, 0, expected);
  CHECK(e.non_finite == 0);
  CHECK(e.relative < 5e-3);
  for (int call = 0; call < 3; ++call) {
    c.upload(std::vector<std::uint16_t>(static_cast<std::size_t>(m) * n, test::kPoison));
    REQUIRE(launch<G>(planned, p, nullptr, 0, nullptr).ok());
    OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
    REQUIRE(c.download() == by_problem);
  }

  // A call of another M is refused before anything runs: C keeps its poison.
  const std::vector<std::uint16_t> poison(static_cast<std::size_t>(m) * n, test::kPoison);
  c.upload(poison);
  p.m = m - 1;
  const Status s = launch<G>(planned, p, nullptr, 0, nullptr);
  CHECK(s.code == StatusCode::kInvalidArgument);
  CHECK(std::string(s.message).rfind("plan", 0) == 0);
  OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
  CHECK(c.download() == poison);
}
