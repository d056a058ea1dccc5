// Correctness of one kernel over every shape class, against the fp64 reference. Included by a file that
// tests/CMakeLists.txt generates for each line of tests/test_kernels.def, defining OPT4GPTQ_TEST_COMBINATION (the
// line's index) and OPT4GPTQ_TEST_NAME (its name as a string literal, used in test names and tags), so that each
// kernel compiles in its own translation unit.

#include <iterator>
#include <string_view>
#include <type_traits>

#include "../common/test_support.hpp"
#include "combinations.hpp"

namespace {

using Gemm = test::Combination<OPT4GPTQ_TEST_COMBINATION>::type;
static_assert(std::string_view(test::Combination<OPT4GPTQ_TEST_COMBINATION>::name) == OPT4GPTQ_TEST_NAME,
              "the generated file's index and name must come from the same line of tests/test_kernels.def");
namespace ref = opt4gptq::reference;

constexpr bool kMatrixCore = test::Combination<OPT4GPTQ_TEST_COMBINATION>::matrix_core;

// Rows of M: around the SIMT kernels' 8-row chunks, and for matrix-core kernels also around their 16-row M tiles and
// 64-row blocks. Rows above 256 run on layers of at most 2M weights (the fp64 host reference is the cost).
constexpr int kSimtRowCounts[] = {1, 3, 8, 9, 31, 64, 200};
constexpr int kMatrixCoreRowCounts[] = {1, 3, 8, 9, 15, 16, 17, 31, 64, 127, 200, 1000};
constexpr std::int64_t kLargeRowsMaxWeights = 2 << 20;

// Bounds for fp16 outputs: the output rounding (2^-11 relative), the 8-term fp16 partial sums, and fp16 atomics
// (each K block's sum added in fp16). A wrong zero convention, a wrong group or a lost K block is off by 1e-2 or far
// more; every element must be written (C is poisoned with NaN) and finite.
constexpr double kMaxRelative = 5e-3;
constexpr double kMaxAbsOverRms = 5e-2;

// Bounds for bf16 outputs (kernels built with ElementBf16). A is bf16 in the reference too (the same bits), and the
// kernels' products and sums are fp32 (relative error ~1e-6 here), so the error is bf16's rounding of C: bf16 keeps
// 8 significant bits, unit roundoff u = 2^-8, so a stored output is within u·|C| of the exact value, and the
// rounding errors of a whole C have an rms near u/2.5 relative (uniform in half an ulp; an ulp is 2^-8..2^-7 of the
// value). Kernels that add into C (atomics across K blocks or per thread; C zero-filled first) round once per
// addition, at most one per K block and K sub-slice of a block: the rms bound grows as the square root of the additions (independent
// roundings), the per-element bound linearly (each rounding at most u of a running sum, itself at most max|C| plus
// what is still to come, bounded here by max|C| again). A wrong zero convention or group is off by 1e-2 or more.
constexpr double kBf16UnitRoundoff = 1.0 / 256;
// The bf16 matrix-core kernels also round each dequantized weight (q - z)·scale to bf16 (the instructions' input
// type): per output an error sum_k a_k w_k d_k with |d_k| <= u, independent, rms about 0.43 u of the reference's rms
// (the rms of a rounding relative to its value, times the rms of sum_k a_k w_k, which is C's); the bounds add u to
// the rms bound and 4 u of the reference's rms to the per-element one (about 9 standard deviations).
// The bf16 decode kernel (MainloopDecodeOf<ElementBf16>) converts A to range-scaled fp16 (exact for every value down
// to 2^-26 of its row's largest: all of these random activations but a vanishing few) and sums with the fp16 decode arithmetic: 4-product fp16 partial
// sums on NVIDIA, each of its 4 roundings 2^-11 of the partial sum, independent, so per output an error of rms about
// 2^-11 of the reference's rms (C's rms is that of the partial sums times sqrt of their count, as is the error's):
// well below the weight rounding's 0.43 u, so the same allowance covers it.
template <class Mainloop, class = void>
struct sums_in_fp16 : std::false_type {};
template <class Mainloop>
struct sums_in_fp16<Mainloop, std::void_t<decltype(Mainloop::kRangeScaled)>>
    : std::bool_constant<Mainloop::kRangeScaled> {};
constexpr bool kBf16 = Gemm::Element::kType == opt4gptq::ElementType::kBf16;
constexpr bool kBf16RoundsWeights = kBf16 && (kMatrixCore || sums_in_fp16<typename Gemm::Mainloop>::value);
constexpr opt4gptq::ElementType kElement = Gemm::Element::kType;

struct Coverage {
  int single_k_block = 0;
  int several_k_blocks = 0;
};

/// One call of m rows on one layer against the fp64 reference.
void check_rows(const opt4gptq::QuantizedWeights& weights, const std::vector<double>& w, int m, int lda_pad,
                int ldc_pad, Coverage& coverage) {
  const std::int64_t lda = weights.k + lda_pad;
  const std::int64_t ldc = ldc_pad ? weights.n + ldc_pad : 0;
  const std::vector<std::uint16_t> a = test::random_activations(m, lda, 1000 + m, kElement);
  const test::DeviceArray<std::uint16_t> a_device(a);
  const std::vector<double> expected = ref::gemm(m, weights.n, weights.k, a.data(), lda, w, test::decoder(kElement));
  const test::CallResult r = test::call<Gemm>(weights, m, a_device, lda_pad ? lda : 0, ldc);
  INFO("m=" << m << " lda=" << lda << " ldc=" << (ldc ? ldc : weights.n) << " grid=" << r.plan.grid_x << "x"
            << r.plan.grid_y << "x" << r.plan.grid_z << " status: " << r.status.message);
  REQUIRE(r.status.ok());
  const ref::ErrorReport e = ref::compare(r.c.data(), m, weights.n, ldc, expected, test::decoder(kElement));
  INFO("relative error " << e.relative << ", max abs " << e.max_abs << " (reference rms " << e.ref_rms << ", max "
                         << e.ref_max << "), " << e.non_finite << " non-finite");
  CHECK(e.non_finite == 0);
  if constexpr (kBf16) {
    const double additions = r.plan.zero_fill_output ? 1.0 * r.plan.grid_z * Gemm::TileShape::kSplitK : 1.0;
    INFO("bf16: " << additions << " roundings per output at most");
    const double weight_roundings = kBf16RoundsWeights ? 1.0 : 0.0;
    CHECK(e.relative < kBf16UnitRoundoff * std::sqrt(additions + weight_roundings));
    CHECK(e.max_abs <= kBf16UnitRoundoff * (e.ref_max * (additions == 1.0 ? 1.001 : 1.0 + additions) +
                                            4.0 * weight_roundings * e.ref_rms));
  } else {
    CHECK(e.relative < kMaxRelative);
    CHECK(e.max_abs <= kMaxAbsOverRms * e.ref_rms);
  }
  CHECK(r.touched_outside == 0);
  CHECK(r.workspace_left_nonzero == 0);
  (r.plan.grid_z == 1 ? coverage.single_k_block : coverage.several_k_blocks)++;
}

/// Runs every row count on one layer. `weights` may carry strides (views); `w` is the dense fp64 dequantized layer
/// they mean; A gets `lda_pad` extra columns per row and C `ldc_pad` (both stay unread / unwritten).
void check_all_rows(const opt4gptq::QuantizedWeights& weights, const std::vector<double>& w, int lda_pad, int ldc_pad,
                    Coverage& coverage) {
  auto run_rows = [&](const auto& row_counts) {
    for (const int m : row_counts) {
      if (m > 256 && static_cast<std::int64_t>(weights.k) * weights.n > kLargeRowsMaxWeights) continue;
      check_rows(weights, w, m, lda_pad, ldc_pad, coverage);
    }
  };
  if constexpr (kMatrixCore)
    run_rows(kMatrixCoreRowCounts);
  else
    run_rows(kSimtRowCounts);
}

void check_layer(const test::LayerSpec& spec, Coverage& coverage, int lda_pad = 0, int ldc_pad = 0) {
  INFO(test::describe(spec));
  const test::DeviceLayer layer(test::make_layer(spec));
  check_all_rows(layer.weights, ref::dequantize(layer.host), lda_pad, ldc_pad, coverage);
}

}  // namespace

TEST_CASE(OPT4GPTQ_TEST_NAME ": dense layers, group sizes, v1/v2, sym/asym", "[gpu][" OPT4GPTQ_TEST_NAME "]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  if constexpr (kMatrixCore) OPT4GPTQ_REQUIRE_MATRIX_CORES_OR_SKIP();
  using opt4gptq::ZeroPointFormat;
  Coverage coverage;
  // N and K off every tile (N not a multiple of 128 or 512 columns, K not a multiple of the 1024-row stage).
  check_layer(test::layer(384, 264).group(128).sym().v1().random_seed(1), coverage);
  check_layer(test::layer(1152, 776).group(128).asym().v2().random_seed(2), coverage);
  check_layer(test::layer(512, 1032).group(32).asym().v1().random_seed(3), coverage);
  check_layer(test::layer(640, 136).group(64).sym().v2().random_seed(4), coverage);
  check_layer(test::layer(1000, 200).group(-1).asym().v1().random_seed(5), coverage);
  check_layer(test::layer(96, 72).group(32).asym().v2().random_seed(6), coverage);
  // Long K: several stages per block and several K blocks.
  check_layer(test::layer(4096, 264).group(128).asym().v1().random_seed(7), coverage);
  // Wide N: enough column tiles that adaptive tiles use one K block at large M.
  check_layer(test::layer(2048, 8200).group(128).sym().v2().random_seed(8), coverage);
  CHECK(coverage.several_k_blocks > 0);
}

TEST_CASE(OPT4GPTQ_TEST_NAME ": act-order layers", "[gpu][" OPT4GPTQ_TEST_NAME "]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  if constexpr (kMatrixCore) OPT4GPTQ_REQUIRE_MATRIX_CORES_OR_SKIP();
  using opt4gptq::ZeroPointFormat;
  Coverage coverage;
  check_layer(test::layer(1024, 264).group(128).asym().v1().desc_act().random_seed(11), coverage);
  check_layer(test::layer(768, 520).group(32).sym().v2().desc_act().random_seed(12), coverage);
  check_layer(test::layer(2560, 136).group(64).asym().v2().desc_act().random_seed(13), coverage);
  constexpr int kRowRuns = kMatrixCore ? std::size(kMatrixCoreRowCounts) : std::size(kSimtRowCounts);
  CHECK(coverage.several_k_blocks + coverage.single_k_block == 3 * kRowRuns);  // every row count ran
}

TEST_CASE(OPT4GPTQ_TEST_NAME ": v1 zero points of 0, with the toolkits' borrow", "[gpu][" OPT4GPTQ_TEST_NAME "]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  if constexpr (kMatrixCore) OPT4GPTQ_REQUIRE_MATRIX_CORES_OR_SKIP();
  using opt4gptq::ZeroPointFormat;
  Coverage coverage;
  // Zero points of 0 in the lowest, a middle and the highest nibble of every qzeros word (and, from make_layer, 5% of
  // the others): v1 stores them with a borrow into the next nibble, which a nibble-wise "+1" reads wrong.
  for (const bool act_order : {false, true}) {
    for (const ZeroPointFormat format : {ZeroPointFormat::kGptqV1, ZeroPointFormat::kGptqV2}) {
      const test::LayerSpec spec =
          test::layer(1024, 264).group(64).asym().zero_format(format).desc_act(act_order).random_seed(91);
      INFO(test::describe(spec) << ", hand-placed zero points of 0");
      const test::DeviceLayer layer(test::with_zero_points_of_zero(test::make_layer(spec)));
      check_all_rows(layer.weights, ref::dequantize(layer.host), 0, 0, coverage);
    }
  }
}

TEST_CASE(OPT4GPTQ_TEST_NAME ": tensor-parallel shards and strided views", "[gpu][" OPT4GPTQ_TEST_NAME "]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
  if constexpr (kMatrixCore) OPT4GPTQ_REQUIRE_MATRIX_CORES_OR_SKIP();
  using opt4gptq::ZeroPointFormat;
  Coverage coverage;
  {
    // Row shard of an act-order layer: rows [328, 1536) of 2048 (not group-aligned), g_idx sliced, scales and
    // qzeros of all 16 groups. Groups now have uneven sizes inside the shard.
    INFO("act-order row shard");
    const ref::QuantizedLayer whole =
        test::make_layer(test::layer(2048, 264).group(128).asym().v1().desc_act().random_seed(21));
    const ref::QuantizedLayer shard = ref::row_shard(whole, 328, 1536, true);
    const test::DeviceLayer layer(shard);
    REQUIRE(layer.act_order);
    check_all_rows(layer.weights, ref::dequantize(shard), 0, 0, coverage);
  }
  {
    // Row shard of a layer without act-order: rows [256, 768) with its own 8 groups of 64.
    INFO("row shard");
    const ref::QuantizedLayer whole = test::make_layer(test::layer(1024, 520).group(64).sym().v2().random_seed(22));
    const ref::QuantizedLayer shard = ref::row_shard(whole, 256, 768, false);
    const test::DeviceLayer layer(shard);
    REQUIRE_FALSE(layer.act_order);
    check_all_rows(layer.weights, ref::dequantize(shard), 0, 0, coverage);
  }
  {
    // Column shard as a view into the whole layer's tensors (no copy): columns [264, 776) of 1024, through strides.
    INFO("column shard view, with strided A and C");
    const test::LayerSpec spec = test::layer(640, 1024).group(128).asym().v1().random_seed(23);
    const test::DeviceLayer layer(test::make_layer(spec));
    const int n0 = 264, n1 = 776;
    opt4gptq::QuantizedWeights view = layer.weights;
    view.n = n1 - n0;
    view.qweight = layer.qweight.get() + n0;
    view.ldq = spec.n;
    view.qzeros = layer.qzeros.get() + n0 / 8;
    view.ldz = spec.n / 8;
    view.scales = reinterpret_cast<const opt4gptq::half*>(layer.scales.get()) + n0;
    view.lds = spec.n;
    check_all_rows(view, ref::dequantize(ref::column_shard(layer.host, n0, n1)), 16, 24, coverage);
  }
  {
    // Column shard of an act-order layer, copied out as an engine's loader does, then prepared.
    INFO("act-order column shard");
    const ref::QuantizedLayer whole =
        test::make_layer(test::layer(512, 1024).group(32).sym().v2().desc_act().random_seed(24));
    const ref::QuantizedLayer shard = ref::column_shard(whole, 512, 768);
    const test::DeviceLayer layer(shard);
    check_all_rows(layer.weights, ref::dequantize(shard), 0, 0, coverage);
  }
}
