// The host reference itself: the quantizer writes exactly the tensors GPTQ checkpoints hold, and dequantize / gemm
// compute what those tensors mean.

#include <opt4gptq/reference/gptq_reference.hpp>

#include <cmath>
#include <numeric>
#include <random>

#include <catch2/catch.hpp>

using namespace opt4gptq;
namespace ref = opt4gptq::reference;

namespace {
std::vector<float> random_weights(int k, int n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> w(static_cast<std::size_t>(k) * n);
  for (float& x : w) x = normal(rng);
  return w;
}
}  // namespace

TEST_CASE("quantize_rtn: a hand-made layer gives the expected words", "[host][reference]") {
  // k = 8 rows, n = 8 columns, one group. Column c holds the values (r - 8) * 0.5 * (c + 1) for rows r: symmetric
  // range [-4(c+1), 3.5(c+1)], so scale = 8(c+1)/15... choose exact steps instead: rows r = 0..7 of column c are
  // (r - 4) * s_c with s_c = 2^-c; symmetric max |w| = 4 s_c, scale = 8 s_c / 15, zero 8.
  const int k = 8, n = 8;
  std::vector<float> w(k * n);
  for (int r = 0; r < k; ++r)
    for (int c = 0; c < n; ++c) w[r * n + c] = static_cast<float>(r - 4) * std::ldexp(1.0f, -c);
  ref::QuantizeOptions o;
  o.group_size = -1;
  o.symmetric = true;
  o.format = ZeroPointFormat::kGptqV1;
  const ref::QuantizedLayer l = ref::quantize_rtn(w, k, n, o);
  REQUIRE(l.num_groups == 1);
  REQUIRE(l.qweight.size() == 8);
  REQUIRE(l.qzeros.size() == 1);
  CHECK(static_cast<std::uint32_t>(l.qzeros[0]) == 0x77777777u);  // v1 symmetric: zero 8 stored as 7
  for (int c = 0; c < n; ++c) {
    const float scale = l.scale(0, c);
    CHECK(scale == ref::round_to_half(8.0f * std::ldexp(1.0f, -c) / 15.0f));
    for (int r = 0; r < k; ++r) {
      const int expected = std::clamp(static_cast<int>(std::nearbyint(w[r * n + c] / scale)) + 8, 0, 15);
      CHECK(l.q(r, c) == expected);
    }
  }
  // Row 4 is 0 in every column: q = 8 exactly. Row 0 is -4 s_c: -4 / (8/15) = -7.5 -> -8 (ties to even) + 8 = 0.
  for (int c = 0; c < n; ++c) {
    CHECK(l.q(4, c) == 8);
    CHECK(l.q(0, c) == 0);
  }
  o.format = ZeroPointFormat::kGptqV2;
  const ref::QuantizedLayer l2 = ref::quantize_rtn(w, k, n, o);
  CHECK(static_cast<std::uint32_t>(l2.qzeros[0]) == 0x88888888u);  // v2 stores the zero itself
  CHECK(l2.qweight == l.qweight);
  CHECK(l2.zero(0, 3) == 8);
  CHECK(l.zero(0, 3) == 8);
}

TEST_CASE("quantize_rtn: v1 with zero points of 0 is written with the toolkits' borrow", "[host][reference]") {
  // All weights >= 0: asymmetric range [0, max], zero point 0 in every column. GPTQModel packs the v2 word 0x00000000
  // and subtracts 0x11111111: 0xEEEEEEEF. Read back word-wise, every zero point is 0 again.
  const int k = 8, n = 8;
  std::vector<float> w(k * n);
  for (int i = 0; i < k * n; ++i) w[i] = 0.01f * static_cast<float>(i % 7 + 1);
  ref::QuantizeOptions o;
  o.group_size = -1;
  o.symmetric = false;
  o.format = ZeroPointFormat::kGptqV1;
  const ref::QuantizedLayer l = ref::quantize_rtn(w, k, n, o);
  CHECK(static_cast<std::uint32_t>(l.qzeros[0]) == 0xEEEEEEEFu);
  for (int c = 0; c < n; ++c) CHECK(l.zero(0, c) == 0);
  // Column 3 negative too: its zero point is no longer 0, the others keep theirs, and the borrow chain breaks there.
  for (int r = 0; r < k; ++r) w[r * n + 3] = -w[r * n + 3];
  const ref::QuantizedLayer mixed = ref::quantize_rtn(w, k, n, o);
  CHECK(mixed.zero(0, 3) == 15);
  for (int c : {0, 1, 2, 4, 5, 6, 7}) CHECK(mixed.zero(0, c) == 0);
  o.format = ZeroPointFormat::kGptqV2;
  const ref::QuantizedLayer v2 = ref::quantize_rtn(w, k, n, o);
  CHECK(static_cast<std::uint32_t>(v2.qzeros[0]) == 0x0000F000u);
  CHECK(static_cast<std::uint32_t>(mixed.qzeros[0]) == 0x0000F000u - 0x11111111u);
  CHECK(ref::dequantize(mixed) == ref::dequantize(v2));
}

TEST_CASE("quantize_rtn: v1 and v2 layers with zero points of 0 dequantize alike, within half a step",
          "[host][reference]") {
  // Half the (group, column) blocks nonnegative: many zero points of 0, in every nibble position.
  const int k = 512, n = 64, gs = 64;
  auto w = random_weights(k, n, 13);
  for (int r = 0; r < k; ++r)
    for (int c = 0; c < n; ++c)
      if (((r / gs) * 7 + c) % 2 == 0) w[r * n + c] = std::abs(w[r * n + c]);
  ref::QuantizeOptions o;
  o.group_size = gs;
  o.symmetric = false;
  o.format = ZeroPointFormat::kGptqV1;
  const ref::QuantizedLayer v1 = ref::quantize_rtn(w, k, n, o);
  o.format = ZeroPointFormat::kGptqV2;
  const ref::QuantizedLayer v2 = ref::quantize_rtn(w, k, n, o);
  int zeros_of_zero = 0;
  for (int g = 0; g < v1.num_groups; ++g)
    for (int c = 0; c < n; ++c) {
      REQUIRE(v1.zero(g, c) == v2.zero(g, c));
      zeros_of_zero += v1.zero(g, c) == 0;
    }
  CHECK(zeros_of_zero >= v1.num_groups * n / 4);
  const std::vector<double> dq = ref::dequantize(v1);
  CHECK(dq == ref::dequantize(v2));
  for (int r = 0; r < k; ++r)
    for (int c = 0; c < n; ++c) REQUIRE(std::abs(dq[r * n + c] - w[r * n + c]) <= 0.52 * v1.scale(r / gs, c) + 1e-7);
}

TEST_CASE("quantize_rtn: dequantized weights are within half a step of the originals", "[host][reference]") {
  for (const bool symmetric : {true, false})
    for (const int gs : {32, 64, 128, -1}) {
      const int k = 256, n = 64;
      const auto w = random_weights(k, n, 3);
      ref::QuantizeOptions o;
      o.group_size = gs;
      o.symmetric = symmetric;
      o.format = symmetric ? ZeroPointFormat::kGptqV1 : ZeroPointFormat::kGptqV2;
      const ref::QuantizedLayer l = ref::quantize_rtn(w, k, n, o);
      CHECK(l.num_groups == format::num_groups(k, gs));
      const std::vector<double> dq = ref::dequantize(l);
      for (int r = 0; r < k; ++r)
        for (int c = 0; c < n; ++c) {
          const double step = l.scale(l.g_idx[r], c);
          // Half a step, plus a hair at the clamped range ends (the fp16 scale is rounded: <= 15 * 2^-11 steps).
          REQUIRE(std::abs(dq[r * n + c] - w[r * n + c]) <= 0.52 * step + 1e-7);
        }
    }
}

TEST_CASE("quantize_rtn: act-order groups are runs of the permutation", "[host][reference]") {
  const int k = 256, n = 16, gs = 64;
  std::vector<int> order(k);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(5);
  std::shuffle(order.begin(), order.end(), rng);
  ref::QuantizeOptions o;
  o.group_size = gs;
  o.order = order;
  const auto w = random_weights(k, n, 9);
  const ref::QuantizedLayer l = ref::quantize_rtn(w, k, n, o);
  for (int p = 0; p < k; ++p) REQUIRE(l.g_idx[order[p]] == p / gs);
  CHECK(l.act_order());
  // Each group's scale covers exactly its own rows: the largest |w| of the group maps to the range end.
  for (int g = 0; g < l.num_groups; ++g)
    for (int c = 0; c < n; ++c) {
      float max_abs = 0.0f;
      for (int p = g * gs; p < (g + 1) * gs; ++p) max_abs = std::max(max_abs, std::abs(w[order[p] * n + c]));
      REQUIRE(l.scale(g, c) == ref::round_to_half(2.0f * max_abs / 15.0f));
    }
  o.order.clear();
  CHECK_FALSE(ref::quantize_rtn(w, k, n, o).act_order());
}

TEST_CASE("row and column shards dequantize to slices of the whole", "[host][reference]") {
  const int k = 512, n = 64;
  const auto w = random_weights(k, n, 21);
  ref::QuantizeOptions o;
  o.group_size = 128;
  o.symmetric = false;
  const ref::QuantizedLayer whole = ref::quantize_rtn(w, k, n, o);
  const std::vector<double> dq = ref::dequantize(whole);

  const ref::QuantizedLayer rows = ref::row_shard(whole, 128, 384, false);
  CHECK(rows.num_groups == 2);
  const std::vector<double> dq_rows = ref::dequantize(rows);
  for (int r = 0; r < 256; ++r)
    for (int c = 0; c < n; ++c) REQUIRE(dq_rows[r * n + c] == dq[(r + 128) * n + c]);

  const ref::QuantizedLayer rows_all = ref::row_shard(whole, 200, 328, true);  // not group-aligned: keep all groups
  CHECK(rows_all.num_groups == whole.num_groups);
  const std::vector<double> dq_rows_all = ref::dequantize(rows_all);
  for (int r = 0; r < 128; ++r)
    for (int c = 0; c < n; ++c) REQUIRE(dq_rows_all[r * n + c] == dq[(r + 200) * n + c]);

  const ref::QuantizedLayer cols = ref::column_shard(whole, 16, 40);
  const std::vector<double> dq_cols = ref::dequantize(cols);
  for (int r = 0; r < k; ++r)
    for (int c = 0; c < 24; ++c) REQUIRE(dq_cols[r * 24 + c] == dq[r * n + c + 16]);

  CHECK_THROWS(ref::row_shard(whole, 100, 300, false));
}

TEST_CASE("gemm and compare", "[host][reference]") {
  const int m = 3, k = 16, n = 8;
  std::vector<double> w(k * n);
  std::vector<std::uint16_t> a(m * k);
  for (int i = 0; i < k * n; ++i) w[i] = 0.25 * (i % 5) - 0.5;
  for (int i = 0; i < m * k; ++i) a[i] = ref::float_to_half_bits(static_cast<float>(i % 3) - 1.0f);
  const std::vector<double> c = ref::gemm(m, n, k, a.data(), 0, w);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double expected = 0;
      for (int kk = 0; kk < k; ++kk) expected += (static_cast<double>((i * k + kk) % 3) - 1.0) * w[kk * n + j];
      REQUIRE(c[i * n + j] == expected);
    }
  std::vector<std::uint16_t> c_half(m * n);
  for (int i = 0; i < m * n; ++i) c_half[i] = ref::float_to_half_bits(static_cast<float>(c[i]));
  const ref::ErrorReport same = ref::compare(c_half.data(), m, n, 0, c);
  CHECK(same.relative < 1e-3);
  CHECK(same.non_finite == 0);
  c_half[5] = 0x7E00;  // NaN
  CHECK(ref::compare(c_half.data(), m, n, 0, c).non_finite == 1);
}
