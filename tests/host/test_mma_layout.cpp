// The matrix-instruction layouts of mma/layout.hpp, checked on the host: each layout covers its tile exactly once,
// the k-order of a 32-row chunk is a permutation, each lane's B registers are the codec's pairs of one packed word
// as they come out of the dequantization, each A register is one 32-bit component of the staged activations, and a
// whole wave (32 lanes for NVIDIA mma.sync, 64 for AMD MFMA) executing the instruction from these layouts computes
// the chunk's GEMM tile exactly. No GPU needed: this is the proof for AMD, where nothing runs here.

#include <opt4gptq/format.hpp>
#include <opt4gptq/mma/layout.hpp>

#include <random>
#include <vector>

#include <catch2/catch.hpp>

namespace {

using namespace opt4gptq;
using mma::Coord;

template <class Shape>
void check_layouts_cover_their_tiles() {
  std::vector<int> a(Shape::kM * Shape::kK), b(Shape::kK * Shape::kN), c(Shape::kM * Shape::kN);
  for (int lane = 0; lane < Shape::kLanes; ++lane) {
    for (int e = 0; e < Shape::kAElements; ++e) {
      const Coord p = Shape::a(lane, e);
      REQUIRE((p.row >= 0 && p.row < Shape::kM && p.col >= 0 && p.col < Shape::kK));
      ++a[p.row * Shape::kK + p.col];
    }
    for (int e = 0; e < Shape::kBElements; ++e) {
      const Coord p = Shape::b(lane, e);
      REQUIRE((p.row >= 0 && p.row < Shape::kK && p.col >= 0 && p.col < Shape::kN));
      ++b[p.row * Shape::kN + p.col];
    }
    for (int e = 0; e < Shape::kCElements; ++e) {
      const Coord p = Shape::c(lane, e);
      REQUIRE((p.row >= 0 && p.row < Shape::kM && p.col >= 0 && p.col < Shape::kN));
      ++c[p.row * Shape::kN + p.col];
    }
  }
  for (int count : a) CHECK(count == 1);
  for (int count : b) CHECK(count == 1);
  for (int count : c) CHECK(count == 1);
}

template <class Shape>
void check_chunk_order() {
  // The two K steps of a chunk take each of its 32 physical rows once.
  std::vector<int> seen(32);
  for (int step = 0; step < 2; ++step)
    for (int k = 0; k < Shape::kK; ++k) ++seen[Shape::chunk_row(step, k)];
  for (int count : seen) CHECK(count == 1);

  for (int lane = 0; lane < Shape::kLanes; ++lane) {
    for (int step = 0; step < 2; ++step) {
      // B: all of a lane's elements come from its one word, and register r (elements 2r, 2r+1) is the codec's pair
      // 2 step + r as it comes out of the dequantization (low half, then high half): no shuffle, no repack.
      for (int e = 0; e < Shape::kBElements; ++e) {
        const mma::StagedSource s = mma::b_source<Shape>(lane, step, e);
        INFO("lane " << lane << " step " << step << " B element " << e);
        CHECK(s.word == Shape::b_word(lane));
        CHECK(s.pair == 2 * step + e / 2);
        CHECK(s.half == e % 2);
      }
      // A: each 32-bit register is one component of one staged 16-byte vector, halves in order.
      for (int e = 0; e < Shape::kAElements; e += 2) {
        const mma::StagedSource lo = mma::a_source<Shape>(lane, step, e);
        const mma::StagedSource hi = mma::a_source<Shape>(lane, step, e + 1);
        INFO("lane " << lane << " step " << step << " A register " << e / 2);
        CHECK(lo.row == hi.row);
        CHECK(lo.word == hi.word);
        CHECK(lo.pair == hi.pair);
        CHECK(lo.half == 0);
        CHECK(hi.half == 1);
      }
    }
  }
}

/// One wave computes D = A[kM x 32] · (q - z)[32 x kN] for one chunk of 4 packed words per column, with every value
/// an integer (so fp16 inputs and fp32 sums are exact, and the result must match exactly).
template <class Shape>
void check_wave_computes_the_chunk(unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> nibble(0, 15), small(-8, 8);
  // Physical data: activations A[row][physical k], packed weights (one word per column per 8 rows), zero points.
  std::vector<int> act(Shape::kM * 32);
  for (int& v : act) v = small(rng);
  std::vector<std::uint32_t> qweight(4 * Shape::kN);  // [word][column]
  std::vector<int> zero(Shape::kN);
  for (int n = 0; n < Shape::kN; ++n) {
    zero[n] = nibble(rng);
    for (int w = 0; w < 4; ++w) {
      std::uint32_t word = 0;
      for (int j = 0; j < 8; ++j) word = format::pack(word, j, nibble(rng));
      qweight[w * Shape::kN + n] = word;
    }
  }
  // Staged A as the mainloop stages it: per row and word, 4 pairs (p, p + 4) of physical rows (the codec's order).
  auto staged = [&](int row, int word, int pair, int half) { return act[row * 32 + 8 * word + pair + 4 * half]; };
  // The codec's output for a word: pair p = (q_p - z, q_{p+4} - z) (CodecInt4::dequant; the GPU test checks the real
  // one against this model).
  auto dequantized = [&](int word, int column, int pair, int half) {
    return format::unpack(qweight[word * Shape::kN + column], pair + 4 * half) - zero[column];
  };

  std::vector<long long> d(Shape::kLanes * Shape::kCElements, 0);  // the lanes' accumulators
  for (int step = 0; step < 2; ++step) {
    // Registers, filled as the mainloop fills them.
    std::vector<int> a_reg(Shape::kLanes * Shape::kAElements), b_reg(Shape::kLanes * Shape::kBElements);
    for (int lane = 0; lane < Shape::kLanes; ++lane) {
      for (int e = 0; e < Shape::kAElements; ++e) {
        const mma::StagedSource s = mma::a_source<Shape>(lane, step, e);
        a_reg[lane * Shape::kAElements + e] = staged(s.row, s.word, s.pair, s.half);
      }
      const int column = Shape::b(lane, 0).col;
      for (int e = 0; e < Shape::kBElements; ++e)
        b_reg[lane * Shape::kBElements + e] = dequantized(Shape::b_word(lane), column, 2 * step + e / 2, e % 2);
    }
    // The instruction, from its documented layouts: gather the tiles, multiply, scatter into the accumulators.
    std::vector<int> a_tile(Shape::kM * Shape::kK), b_tile(Shape::kK * Shape::kN);
    for (int lane = 0; lane < Shape::kLanes; ++lane) {
      for (int e = 0; e < Shape::kAElements; ++e) {
        const Coord p = Shape::a(lane, e);
        a_tile[p.row * Shape::kK + p.col] = a_reg[lane * Shape::kAElements + e];
      }
      for (int e = 0; e < Shape::kBElements; ++e) {
        const Coord p = Shape::b(lane, e);
        b_tile[p.row * Shape::kN + p.col] = b_reg[lane * Shape::kBElements + e];
      }
    }
    for (int lane = 0; lane < Shape::kLanes; ++lane)
      for (int e = 0; e < Shape::kCElements; ++e) {
        const Coord p = Shape::c(lane, e);
        for (int k = 0; k < Shape::kK; ++k)
          d[lane * Shape::kCElements + e] +=
              static_cast<long long>(a_tile[p.row * Shape::kK + k]) * b_tile[k * Shape::kN + p.col];
      }
  }
  // The chunk's GEMM in physical order.
  for (int lane = 0; lane < Shape::kLanes; ++lane)
    for (int e = 0; e < Shape::kCElements; ++e) {
      const Coord p = Shape::c(lane, e);
      long long expected = 0;
      for (int k = 0; k < 32; ++k)
        expected += static_cast<long long>(act[p.row * 32 + k]) *
                    (format::unpack(qweight[(k / 8) * Shape::kN + p.col], k % 8) - zero[p.col]);
      INFO("lane " << lane << " element " << e << " = D[" << p.row << "][" << p.col << "]");
      CHECK(d[lane * Shape::kCElements + e] == expected);
    }
}

}  // namespace

TEST_CASE("NVIDIA mma.sync m16n8k16: layouts, k-order and one warp's product", "[host][mma]") {
  using Shape = mma::MmaM16N8K16;
  check_layouts_cover_their_tiles<Shape>();
  check_chunk_order<Shape>();
  for (unsigned seed = 1; seed <= 20; ++seed) check_wave_computes_the_chunk<Shape>(seed);
}

TEST_CASE("AMD v_mfma_f32_16x16x16f16: layouts, k-order and one wave's product", "[host][mma]") {
  using Shape = mma::MfmaF32x16x16x16F16;
  check_layouts_cover_their_tiles<Shape>();
  check_chunk_order<Shape>();
  for (unsigned seed = 1; seed <= 20; ++seed) check_wave_computes_the_chunk<Shape>(seed);
}

TEST_CASE("a k-order that ignores the codec's pairs is caught", "[host][mma]") {
  // The test above must be able to fail: a layout whose chunk_row takes the rows in plain order (the lane's word
  // holds rows 8w .. 8w+7, but its B registers would need rows p, p+1 instead of p, p+4) breaks the B check.
  struct PlainOrder : mma::MmaM16N8K16 {
    static OPT4GPTQ_LAYOUT_FUNCTION int chunk_row(int step, int k) { return 16 * step + k; }
  };
  int wrong = 0;
  for (int lane = 0; lane < 32; ++lane)
    for (int e = 0; e < 4; ++e) {
      const mma::StagedSource s = mma::b_source<PlainOrder>(lane, 0, e);
      wrong += s.word != PlainOrder::b_word(lane) || s.pair != e / 2 || s.half != e % 2;
    }
  CHECK(wrong > 0);
}
