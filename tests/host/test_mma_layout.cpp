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
  STATIC_REQUIRE(2 * Shape::kARegisters == Shape::kAElements);
  STATIC_REQUIRE(2 * Shape::kBRegisters == Shape::kBElements);
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
        // The closed form the mainloop uses (MainloopMma reads these, not a_source()).
        const int r = e / 2;
        CHECK(lo.row == Shape::a_vector_row(lane, Shape::a_vector(r)));
        CHECK(lo.word == Shape::a_vector_word(lane));
        CHECK(lo.pair == Shape::a_component(step, r));
        CHECK((Shape::a_vector(r) >= 0 && Shape::a_vector(r) < Shape::kAVectors));
      }
      CHECK(Shape::b_column(lane) == Shape::b(lane, 0).col);
      for (int e = 0; e < Shape::kBElements; ++e) CHECK(Shape::b(lane, e).col == Shape::b_column(lane));
    }
  }
}

/// The instruction from its documented C layout: every lane's accumulators += the gathered tiles' product.
template <class Shape>
void execute(const std::vector<int>& a_tile, const std::vector<int>& b_tile, std::vector<long long>& d) {
  for (int lane = 0; lane < Shape::kLanes; ++lane)
    for (int e = 0; e < Shape::kCElements; ++e) {
      const Coord p = Shape::c(lane, e);
      for (int k = 0; k < Shape::kK; ++k)
        d[lane * Shape::kCElements + e] +=
            static_cast<long long>(a_tile[p.row * Shape::kK + k]) * b_tile[k * Shape::kN + p.col];
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
    execute<Shape>(a_tile, b_tile, d);
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

/// The MMA mainloop's whole wave tile (kernel/mainloop_mma.hpp), as it forms it: each lane loads one 16-byte vector
/// per chunk, 4 consecutive columns 4 b_column(lane) .. +3 of packed word b_word(lane); column 4 c + i of the wave is
/// B column c of n-tile i; A registers come from the closed forms (a_vector_row, a_vector_word, a_vector,
/// a_component), not from a_source(); the epilogue writes accumulator e of n-tile i to wave column
/// 4 c(lane, e).col + i. The wave's 16 x (4 kN) outputs must each be written once, with the chunk's exact product.
template <class Shape>
void check_mainloop_wave_tile(unsigned seed) {
  constexpr int kNTiles = 4, kCols = kNTiles * Shape::kN;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> nibble(0, 15), small(-8, 8);
  std::vector<int> act(Shape::kM * 32);
  for (int& v : act) v = small(rng);
  std::vector<std::uint32_t> qweight(4 * kCols);  // [word][wave column]
  std::vector<int> zero(kCols);
  for (int n = 0; n < kCols; ++n) {
    zero[n] = nibble(rng);
    for (int w = 0; w < 4; ++w) {
      std::uint32_t word = 0;
      for (int j = 0; j < 8; ++j) word = format::pack(word, j, nibble(rng));
      qweight[w * kCols + n] = word;
    }
  }
  std::vector<long long> out(Shape::kM * kCols, 0);
  std::vector<int> written(Shape::kM * kCols, 0);
  for (int i = 0; i < kNTiles; ++i) {
    std::vector<long long> d(Shape::kLanes * Shape::kCElements, 0);
    for (int step = 0; step < 2; ++step) {
      std::vector<int> a_tile(Shape::kM * Shape::kK), b_tile(Shape::kK * Shape::kN);
      for (int lane = 0; lane < Shape::kLanes; ++lane) {
        const int first_col = 4 * Shape::b_column(lane);  // the lane's 16-byte load: columns first_col .. +3
        const std::uint32_t word = qweight[Shape::b_word(lane) * kCols + first_col + i];
        for (int e = 0; e < Shape::kBElements; ++e) {
          const int pair = 2 * step + e / 2, half = e % 2;  // register e / 2 is dequantized pair 2 step + e / 2
          const Coord p = Shape::b(lane, e);
          b_tile[p.row * Shape::kN + p.col] = format::unpack(word, pair + 4 * half) - zero[first_col + i];
        }
        for (int e = 0; e < Shape::kAElements; ++e) {
          const int r = e / 2, half = e % 2;
          const int row = Shape::a_vector_row(lane, Shape::a_vector(r));
          const int pair = Shape::a_component(step, r);
          const Coord p = Shape::a(lane, e);
          a_tile[p.row * Shape::kK + p.col] = act[row * 32 + 8 * Shape::a_vector_word(lane) + pair + 4 * half];
        }
      }
      execute<Shape>(a_tile, b_tile, d);
    }
    for (int lane = 0; lane < Shape::kLanes; ++lane)
      for (int e = 0; e < Shape::kCElements; ++e) {
        const Coord p = Shape::c(lane, e);
        const int col = kNTiles * p.col + i;
        out[p.row * kCols + col] = d[lane * Shape::kCElements + e];
        ++written[p.row * kCols + col];
      }
  }
  for (int row = 0; row < Shape::kM; ++row)
    for (int col = 0; col < kCols; ++col) {
      long long expected = 0;
      for (int k = 0; k < 32; ++k)
        expected += static_cast<long long>(act[row * 32 + k]) *
                    (format::unpack(qweight[(k / 8) * kCols + col], k % 8) - zero[col]);
      INFO("output row " << row << " wave column " << col);
      CHECK(written[row * kCols + col] == 1);
      CHECK(out[row * kCols + col] == expected);
    }
}

}  // namespace

TEST_CASE("NVIDIA mma.sync m16n8k16: layouts, k-order and one warp's product", "[host][mma]") {
  using Shape = mma::MmaM16N8K16;
  check_layouts_cover_their_tiles<Shape>();
  check_chunk_order<Shape>();
  for (unsigned seed = 1; seed <= 20; ++seed) check_wave_computes_the_chunk<Shape>(seed);
  for (unsigned seed = 1; seed <= 8; ++seed) check_mainloop_wave_tile<Shape>(seed);
}

TEST_CASE("AMD v_mfma_f32_16x16x16f16: layouts, k-order and one wave's product", "[host][mma]") {
  using Shape = mma::MfmaF32x16x16x16F16;
  check_layouts_cover_their_tiles<Shape>();
  check_chunk_order<Shape>();
  for (unsigned seed = 1; seed <= 20; ++seed) check_wave_computes_the_chunk<Shape>(seed);
  for (unsigned seed = 1; seed <= 8; ++seed) check_mainloop_wave_tile<Shape>(seed);
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
