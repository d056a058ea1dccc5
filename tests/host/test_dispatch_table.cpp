// The dispatch tables (dispatch_table.hpp, dispatch/): choose_kernel() applies the first matching rule, and the
// committed H200 table, checked against the measurements it was generated from, never picks a kernel more than 5%
// slower than the fastest one measured at any (layer, M) point (the dispatcher issue's target, offline). Plain C++.

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <opt4gptq/dispatch/sm90_h200.hpp>
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
  static constexpr DispatchTable table{"test", 9, rules, 4, KernelChoice::kTensorCoreDeterministic};
  STATIC_REQUIRE(choose_kernel(table, 1, 1000, false) == KernelChoice::kTensorCore);
  CHECK(choose_kernel(table, 1, 1001, false) == KernelChoice::kBaseline);
  CHECK(choose_kernel(table, 2, 10, true) == KernelChoice::kBaseline);  // the size rule is for act-order 0 only
  CHECK(choose_kernel(table, 3, 10, true) == KernelChoice::kOpt4Gptq);
  CHECK(choose_kernel(table, 64, 1 << 30, false) == KernelChoice::kTensorCore);
  CHECK(choose_kernel(table, 65, 10, false) == KernelChoice::kTensorCoreDeterministic);
  CHECK(std::string(kernel_name(KernelChoice::kTensorCoreDeterministic)) == "TensorCoreDeterministic");
  // The bytes the tables count: int4 weights + fp16 scales + 4-bit zeros (as bench_gemm's weight_bytes).
  STATIC_REQUIRE(layer_weight_bytes(4096, 12288, 32) == 4096 / 8 * 12288 * 4 + 32 * 12288 * 2 + 32 * 12288 / 8 * 4);
}

TEST_CASE("the H200 table picks, at every measured point, a kernel within 5% of the fastest", "[host][dispatch]") {
  const auto& table = dispatch::kSm90H200;
  std::ifstream in(std::string(OPT4GPTQ_SOURCE_DIR) + "/bench/results/2026-12-02-h200/results.csv");
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
  // (k, n, act, m) -> kernel -> us; and the bytes of each layer.
  std::map<std::tuple<int, int, int, int>, std::map<std::string, double>> times;
  std::map<std::tuple<int, int, int, int>, double> bytes;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream s(line);
    std::string cell;
    while (std::getline(s, cell, ',')) cells.push_back(cell);
    REQUIRE(cells.size() == header.size());
    const auto key =
        std::make_tuple(std::stoi(cells[c_k]), std::stoi(cells[c_n]), std::stoi(cells[c_act]), std::stoi(cells[c_m]));
    times[key][cells[c_kernel]] = std::stod(cells[c_us]);
    bytes[key] = std::stod(cells[c_bytes]);
  }
  REQUIRE(times.size() > 100);
  double worst = 1.0;
  for (const auto& [key, by_kernel] : times) {
    const auto [k, n, act, m] = key;
    const KernelChoice choice = choose_kernel(table, m, static_cast<std::int64_t>(bytes[key]), act != 0);
    INFO(k << "x" << n << (act ? " act-order" : "") << " M=" << m << ": " << kernel_name(choice));
    const auto chosen = by_kernel.find(kernel_name(choice));
    REQUIRE(chosen != by_kernel.end());  // the table only names kernels that were measured
    double best = chosen->second;
    for (const auto& [name, us] : by_kernel) best = std::min(best, us);
    const double ratio = chosen->second / best;
    worst = std::max(worst, ratio);
    CHECK(ratio <= 1.05);
  }
  INFO("worst point: " << worst << "x the fastest");
  CHECK(worst < 1.05);
}
