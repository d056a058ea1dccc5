#pragma once
/// @file
/// Matrix-instruction fragment layouts, as plain constexpr functions of (lane, element) -> (row, col), and the order
/// of K inside a 32-row chunk that lets a packed GPTQ word feed the B operand as saved (no weight repack). No GPU
/// code: host tests simulate one wave executing the instruction from these functions (tests/host/test_mma_layout.cpp)
/// and a GPU test checks the same model against the real instruction.
///
/// The k-order. A 32-row chunk of K holds 4 packed words per column (rows 8w .. 8w+7 in word w). The codec turns one
/// word into the pairs (q0,q4) (q1,q5) (q2,q6) (q3,q7) (codec/int4.hpp). Every shape below gives each lane the B
/// elements of one column and of K positions that the lanes of one lane group share: the lane group takes one word,
/// and its pairs fill the lane's B registers for two K steps of 16, pairs 0-1 in step 0 and pairs 2-3 in step 1.
/// A K position of a step is therefore a fixed physical row of the chunk (chunk_row()), and A is staged in that order:
/// the same interleaved 16-byte vectors per 8 rows that the SIMT mainloop stages, from which each A register is one
/// 32-bit component (a_source()).
/// @ingroup kernel

#include "../version.hpp"

// Host and device functions under a GPU compiler, plain functions under a host compiler (this header includes no GPU
// header, so that g++ tests use it).
#if defined(__CUDACC__) || defined(__HIP__)
#define OPT4GPTQ_LAYOUT_FUNCTION __host__ __device__ constexpr
#else
#define OPT4GPTQ_LAYOUT_FUNCTION constexpr
#endif

OPT4GPTQ_NAMESPACE_BEGIN
namespace mma {

/// A position in an operand tile: row and column (for B: row = k, col = n).
struct Coord {
  int row;
  int col;
};

/// Where an A element comes from in the staged activations: row of A, word of the chunk (8 physical rows), pair
/// (32-bit component of the 16-byte vector: physical rows p and p + 4 of the word) and half of the pair.
struct StagedSource {
  int row;
  int word;
  int pair;
  int half;
};

/// NVIDIA `mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32` (sm_80 and later), one warp. Element e of an operand
/// is half e % 2 of 32-bit register e / 2 (A: 4 registers, B: 2), or fp32 register e of C/D. groupID = lane / 4,
/// threadID_in_group = lane % 4 (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type").
struct MmaM16N8K16 {
  static constexpr int kM = 16, kN = 8, kK = 16, kLanes = 32;
  static constexpr int kAElements = 8, kBElements = 4, kCElements = 4;

  static OPT4GPTQ_LAYOUT_FUNCTION Coord a(int lane, int e) {
    return Coord{lane / 4 + 8 * ((e / 2) % 2), 2 * (lane % 4) + e % 2 + 8 * (e / 4)};
  }
  static OPT4GPTQ_LAYOUT_FUNCTION Coord b(int lane, int e) {
    return Coord{2 * (lane % 4) + e % 2 + 8 * (e / 2), lane / 4};
  }
  static OPT4GPTQ_LAYOUT_FUNCTION Coord c(int lane, int e) {
    return Coord{lane / 4 + 8 * (e / 2), 2 * (lane % 4) + e % 2};
  }

  /// The word of the chunk whose pairs fill the lane's B registers: the 4 lanes of a group share column lane / 4
  /// and take words 0..3.
  static OPT4GPTQ_LAYOUT_FUNCTION int b_word(int lane) { return lane % 4; }
  /// The lane's B column in the tile (groupID).
  static OPT4GPTQ_LAYOUT_FUNCTION int b_column(int lane) { return lane / 4; }

  // How the mainloop forms A registers from the staged 16-byte vectors (a_source() in closed form; the host test
  // checks that they agree): per 16-row tile and chunk, a lane reads kAVectors vectors, vector v of row
  // a_vector_row(lane, v) and word a_vector_word(lane); A register r of step `step` is component
  // a_component(step, r) of vector a_vector(r).
  static constexpr int kARegisters = 4, kBRegisters = 2, kAVectors = 2;
  static OPT4GPTQ_LAYOUT_FUNCTION int a_vector_row(int lane, int v) { return lane / 4 + 8 * v; }
  static OPT4GPTQ_LAYOUT_FUNCTION int a_vector_word(int lane) { return lane % 4; }
  static OPT4GPTQ_LAYOUT_FUNCTION int a_vector(int r) { return r % 2; }
  static OPT4GPTQ_LAYOUT_FUNCTION int a_component(int step, int r) { return 2 * step + r / 2; }
  /// Physical row (0..31) of the chunk at K position k (0..15) of step `step` (0 or 1): the lane holding B row k
  /// is threadID_in_group (k % 8) / 2; its element e = k % 2 + 2 (k / 8) is half e % 2 of pair 2 step + e / 2.
  static OPT4GPTQ_LAYOUT_FUNCTION int chunk_row(int step, int k) {
    const int word = (k % 8) / 2;
    const int pair = 2 * step + k / 8;
    const int half = k % 2;
    return 8 * word + pair + 4 * half;
  }
};

/// AMD `v_mfma_f32_16x16x16f16` (gfx908, gfx90a, gfx940), one wave of 64 lanes. A, B: 4 halves per lane in 2
/// registers; C/D: 4 fp32 per lane. Lane l holds A row l % 16, B and D column l % 16, and K (or D rows)
/// 4 (l / 16) .. 4 (l / 16) + 3 (the lane's K block; AMD matrix instruction calculator, CDNA2/3).
struct MfmaF32x16x16x16F16 {
  static constexpr int kM = 16, kN = 16, kK = 16, kLanes = 64;
  static constexpr int kAElements = 4, kBElements = 4, kCElements = 4;

  static OPT4GPTQ_LAYOUT_FUNCTION Coord a(int lane, int e) { return Coord{lane % 16, 4 * (lane / 16) + e}; }
  static OPT4GPTQ_LAYOUT_FUNCTION Coord b(int lane, int e) { return Coord{4 * (lane / 16) + e, lane % 16}; }
  static OPT4GPTQ_LAYOUT_FUNCTION Coord c(int lane, int e) { return Coord{4 * (lane / 16) + e, lane % 16}; }

  /// The 16 lanes of a K block share it; K block w takes word w.
  static OPT4GPTQ_LAYOUT_FUNCTION int b_word(int lane) { return lane / 16; }
  /// The lane's B column in the tile.
  static OPT4GPTQ_LAYOUT_FUNCTION int b_column(int lane) { return lane % 16; }

  // A registers from staged vectors (see MmaM16N8K16): one vector per lane, row lane % 16, word lane / 16; register r
  // of step `step` is its component 2 step + r.
  static constexpr int kARegisters = 2, kBRegisters = 2, kAVectors = 1;
  static OPT4GPTQ_LAYOUT_FUNCTION int a_vector_row(int lane, int /*v*/) { return lane % 16; }
  static OPT4GPTQ_LAYOUT_FUNCTION int a_vector_word(int lane) { return lane / 16; }
  static OPT4GPTQ_LAYOUT_FUNCTION int a_vector(int /*r*/) { return 0; }
  static OPT4GPTQ_LAYOUT_FUNCTION int a_component(int step, int r) { return 2 * step + r; }
  /// K position k of step `step`: K block k / 4, element e = k % 4: half e % 2 of pair 2 step + e / 2.
  static OPT4GPTQ_LAYOUT_FUNCTION int chunk_row(int step, int k) {
    const int word = k / 4;
    const int pair = 2 * step + (k % 4) / 2;
    const int half = k % 2;
    return 8 * word + pair + 4 * half;
  }
};

/// The pair (0..3) and half of the lane's dequantized word that B element e of step `step` is.
template <class Shape>
OPT4GPTQ_LAYOUT_FUNCTION StagedSource b_source(int lane, int step, int e) {
  const int row = Shape::chunk_row(step, Shape::b(lane, e).row);
  return StagedSource{-1, row / 8, row % 4, (row % 8) / 4};
}

/// Where A element e of step `step` comes from in the staged chunk (rows of A, interleaved 16-byte vectors).
template <class Shape>
OPT4GPTQ_LAYOUT_FUNCTION StagedSource a_source(int lane, int step, int e) {
  const Coord at = Shape::a(lane, e);
  const int row = Shape::chunk_row(step, at.col);
  return StagedSource{at.row, row / 8, row % 4, (row % 8) / 4};
}

}  // namespace mma
OPT4GPTQ_NAMESPACE_END
