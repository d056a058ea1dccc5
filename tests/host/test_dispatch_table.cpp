// The dispatch tables (dispatch_table.hpp, dispatch/): choose_kernel() applies the first matching rule (among the
// allowed kernels), kernel_info() describes every kernel, and the committed H200 table, checked against the
// measurements it was generated from, never picks a kernel more than 5% slower than the fastest one measured at any
// (layer, M) point (the dispatcher issue's target, offline); above them, the provisional prefill rule. Plain C++.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <opt4gptq/dispatch/sm90_h200.hpp>
#include <opt4gptq/dispatch_options.hpp>
#include <opt4gptq/dispatch_table.hpp>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

using namespace opt4gptq;

TEST_CASE("choose_kernel applies the first rule that matches, then the fallback", "[host][dispatch]") {
  static constexpr DispatchRule rules[] = {
      {2, 1000, 0, KernelChoice::kTensorCore},
      {2, -1, -1, KernelChoice::kBaseline},
      {64, -1, 1, KernelChoice::kOpt4Gptq},
      {64, -1, 0, KernelChoice::kTensorCore},
  };
  static constexpr DispatchTable table{
      "test", 9, rules, 4, KernelChoice::kTensorCoreDeterministic, KernelChoice::kTensorCoreDeterministic};
  STATIC_REQUIRE(choose_kernel(table, 1, 1000, false) == KernelChoice::kTensorCore);
  CHECK(choose_kernel(table, 1, 1001, false) == KernelChoice::kBaseline);
  CHECK(choose_kernel(table, 2, 10, true) == KernelChoice::kBaseline);  // the size rule is for act-order 0 only
  CHECK(choose_kernel(table, 3, 10, true) == KernelChoice::kOpt4Gptq);
  CHECK(choose_kernel(table, 64, 1 << 30, false) == KernelChoice::kTensorCore);
  CHECK(choose_kernel(table, 65, 10, false) == KernelChoice::kTensorCoreDeterministic);
  CHECK(std::string(kernel_name(KernelChoice::kTensorCoreDeterministic)) == "TensorCoreDeterministic");
  // Among allowed kernels: a rule whose kernel is not allowed is skipped (the next rule that matches decides), then
  // the fallback, then the invariant kernel, then DeterministicF32.
  const KernelSet no_baseline = KernelSet::all().without(KernelChoice::kBaseline);
  CHECK(choose_kernel(table, 1, 1001, false, no_baseline) == KernelChoice::kTensorCore);  // rule 4
  CHECK(choose_kernel(table, 2, 10, true, no_baseline) == KernelChoice::kOpt4Gptq);       // rule 3
  CHECK(choose_kernel(table, 65, 10, false, no_baseline) == KernelChoice::kTensorCoreDeterministic);
  const KernelSet simt = KernelSet()
                             .with(KernelChoice::kBaseline)
                             .with(KernelChoice::kOpt4Gptq)
                             .with(KernelChoice::kDeterministic)
                             .with(KernelChoice::kDeterministicF32);
  CHECK(choose_kernel(table, 1, 1000, false, simt) == KernelChoice::kBaseline);
  CHECK(choose_kernel(table, 64, 10, false, simt) == KernelChoice::kDeterministicF32);  // no rule, no fallback left
  CHECK(choose_kernel(table, 64, 10, false, KernelSet()) == KernelChoice::kDeterministicF32);
  // The bytes the tables count: int4 weights + fp16 scales + 4-bit zeros (as bench_gemm's weight_bytes).
  STATIC_REQUIRE(layer_weight_bytes(4096, 12288, 32) == 4096 / 8 * 12288 * 4 + 32 * 12288 * 2 + 32 * 12288 / 8 * 4);
}

TEST_CASE("kernel_info names every kernel once and states what it promises", "[host][dispatch]") {
  std::vector<std::string> names;
  for (int i = 0; i < kKernelChoiceCount; ++i) {
    const KernelInfo info = kernel_info(static_cast<KernelChoice>(i));
    INFO("KernelChoice " << i);
    CHECK(std::string(info.name) != "?");
    CHECK(std::find(names.begin(), names.end(), info.name) == names.end());
    names.emplace_back(info.name);
    // A batch-invariant kernel adds in a fixed order (it is deterministic); a kernel with fp32 everywhere has no
    // atomics on C, so it is deterministic too.
    if (info.batch_invariant) CHECK(info.deterministic);
    if (info.accumulation == Accumulation::kFp32) CHECK(info.deterministic);
  }
  CHECK(std::string(kernel_name(static_cast<KernelChoice>(kKernelChoiceCount))) == "?");
  // The kernels the docs name as overflow-safe, and those with fp16 partial sums.
  CHECK(kernel_info(KernelChoice::kBaseline).accumulation == Accumulation::kFp16Partials);
  CHECK(kernel_info(KernelChoice::kOpt4Gptq).accumulation == Accumulation::kFp16Partials);
  CHECK(kernel_info(KernelChoice::kDeterministic).accumulation == Accumulation::kFp16Partials);
  CHECK(kernel_info(KernelChoice::kTensorCore).accumulation == Accumulation::kFp32PerKBlock);
  CHECK(kernel_info(KernelChoice::kTensorCoreDeterministic).accumulation == Accumulation::kFp32);
  CHECK(kernel_info(KernelChoice::kDeterministicF32).accumulation == Accumulation::kFp32);
  CHECK(kernel_info(KernelChoice::kDecode).accumulation == Accumulation::kFp16RangeScaled);
  CHECK(kernel_info(KernelChoice::kDequantCublas).accumulation == Accumulation::kFp32);
  CHECK_FALSE(kernel_info(KernelChoice::kDequantCublas).batch_invariant);  // cuBLAS chooses its algorithm per M
}

TEST_CASE("the H200 table: the prefill path from M = 129, and what serves without cuBLAS", "[host][dispatch]") {
  const auto& table = dispatch::kSm90H200;
  CHECK(table.invariant == KernelChoice::kTensorCoreDeterministic);
  for (const bool act_order : {false, true})
    for (const std::int64_t bytes : {std::int64_t{1} << 20, std::int64_t{1} << 30}) {
      INFO("act-order " << act_order << ", " << bytes << " bytes");
      // Measured at M = 256 (DequantCublas fastest on every layer there); the rule serves M = 129 .. 256 and, above
      // the largest measured M, every M.
      CHECK(choose_kernel(table, 129, bytes, act_order) == KernelChoice::kDequantCublas);
      CHECK(choose_kernel(table, 256, bytes, act_order) == KernelChoice::kDequantCublas);
      CHECK(choose_kernel(table, 8192, bytes, act_order) == KernelChoice::kDequantCublas);
      const KernelSet no_cublas = KernelSet::all().without(KernelChoice::kDequantCublas);
      CHECK(choose_kernel(table, 256, bytes, act_order, no_cublas) == KernelChoice::kTensorCorePipelined);
      CHECK(choose_kernel(table, 8192, bytes, act_order, no_cublas) == KernelChoice::kTensorCorePipelined);
    }
}

namespace {

/// The H200 measurements the table was generated from: (k, n, act-order, m) -> kernel -> us (graph replay), and the
/// layer's bytes.
struct Measurements {
  std::map<std::tuple<int, int, int, int>, std::map<std::string, double>> times;
  std::map<std::tuple<int, int, int, int>, double> bytes;
};

Measurements read_h200_measurements() {
  Measurements out;
  std::ifstream in(std::string(OPT4GPTQ_SOURCE_DIR) + "/bench/results/2026-12-02-h200-pipelined/results.csv");
  REQUIRE(in.good());
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  {
    std::stringstream s(line);
    std::string cell;
    while (std::getline(s, cell, ',')) header.push_back(cell);
  }
  auto column = [&](const char* name) {
    const auto it = std::find(header.begin(), header.end(), name);
    REQUIRE(it != header.end());
    return static_cast<std::size_t>(it - header.begin());
  };
  const std::size_t c_k = column("k"), c_n = column("n"), c_m = column("m"), c_act = column("act_order"),
                    c_kernel = column("kernel"), c_us = column("us_graph"), c_bytes = column("weight_bytes");
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream s(line);
    std::string cell;
    while (std::getline(s, cell, ',')) cells.push_back(cell);
    REQUIRE(cells.size() == header.size());
    const auto key =
        std::make_tuple(std::stoi(cells[c_k]), std::stoi(cells[c_n]), std::stoi(cells[c_act]), std::stoi(cells[c_m]));
    out.times[key][cells[c_kernel]] = std::stod(cells[c_us]);
    out.bytes[key] = std::stod(cells[c_bytes]);
  }
  return out;
}

}  // namespace

/// Whether the shipped H200 table was generated over this kernel of the CSV: a KernelChoice (the `auto` rows are the
/// dispatcher itself).
bool in_h200_table(const std::string& name) {
  for (int i = 0; i < kKernelChoiceCount; ++i)
    if (name == kernel_info(static_cast<KernelChoice>(i)).name) return true;
  return false;
}

TEST_CASE("the H200 table picks, at every measured point, a kernel within 5% of the fastest it was made from",
          "[host][dispatch]") {
  const auto& table = dispatch::kSm90H200;
  const Measurements measured = read_h200_measurements();
  REQUIRE(measured.times.size() > 100);
  double worst = 1.0;
  for (const auto& [key, by_kernel] : measured.times) {
    const auto [k, n, act, m] = key;
    const KernelChoice choice = choose_kernel(table, m, static_cast<std::int64_t>(measured.bytes.at(key)), act != 0);
    INFO(k << "x" << n << (act ? " act-order" : "") << " M=" << m << ": " << kernel_name(choice));
    const auto chosen = by_kernel.find(kernel_name(choice));
    REQUIRE(chosen != by_kernel.end());  // the table only names kernels that were measured
    double best = chosen->second;
    for (const auto& [name, us] : by_kernel)
      if (in_h200_table(name)) best = std::min(best, us);
    const double ratio = chosen->second / best;
    worst = std::max(worst, ratio);
    CHECK(ratio <= 1.05);
  }
  INFO("worst point: " << worst << "x the fastest");
  CHECK(worst < 1.05);
}

TEST_CASE("the default options' cost on the H200 measurements: no fp16 partial sums", "[host][dispatch]") {
  // The dispatcher's default options (overflow-safe: no kernel with fp16 partial sums) choose among the kernels the
  // H200 table was made from. What that costs, per M, against the fastest kernel measured, fp16 partial sums included
  // (Baseline's lead at M = 1 and 2 on NVIDIA: the numbers docs/host_api.md quotes).
  const auto& table = dispatch::kSm90H200;
  const Measurements measured = read_h200_measurements();
  const DispatchOptions defaults;
  std::map<int, std::vector<double>> ratios;  // m -> chosen / fastest
  for (const auto& [key, by_kernel] : measured.times) {
    const auto [k, n, act, m] = key;
    const KernelChoice choice = choose_kernel(table, defaults, KernelSet::all(), m,
                                              static_cast<std::int64_t>(measured.bytes.at(key)), act != 0);
    INFO(k << "x" << n << (act ? " act-order" : "") << " M=" << m << ": " << kernel_name(choice));
    CHECK(kernel_info(choice).accumulation != Accumulation::kFp16Partials);
    const auto chosen = by_kernel.find(kernel_name(choice));
    REQUIRE(chosen != by_kernel.end());
    double best = chosen->second;
    for (const auto& [name, us] : by_kernel)
      if (name != "auto") best = std::min(best, us);  // `auto` rows: the dispatcher itself
    ratios[m].push_back(chosen->second / best);
  }
  for (const auto& [m, r] : ratios) {
    double log_sum = 0.0;
    for (const double x : r) log_sum += std::log(x);
    const double geomean = std::exp(log_sum / static_cast<double>(r.size()));
    const double worst = *std::max_element(r.begin(), r.end());
    INFO("M = " << m << ": geomean " << geomean << "x, worst " << worst << "x the fastest (" << r.size() << " points)");
    CHECK(worst < 2.2);
    if (m >= 8) CHECK(worst < 1.05);  // from M = 8 the fastest kernels are the overflow-safe tensor-core ones
  }
}
