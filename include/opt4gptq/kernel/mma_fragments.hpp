#pragma once
/// @file
/// What the matrix-core mainloops (kernel/mainloop_mma.hpp, kernel/mainloop_mma_pipelined.hpp) share around their
/// fragments: the group constants a lane's B fragments are dequantized with (scales in both halves, zero-point terms,
/// the next group's raw constants in flight), and the epilogue step that turns accumulator fragments into one fp32 sum
/// per output of the block for a ReducePolicy of the block-sum contract. Not API.
/// @ingroup kernel

#include <cstdint>
#include <type_traits>

#include "../element.hpp"
#include "../mma/layout.hpp"
#include "../platform.hpp"
#include "../policy/math.hpp"
#include "../policy/reduce.hpp"
#include "params.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace detail {

/// The group's scales (in both halves) and zero-point terms for a lane's 4 columns, and the raw constants of the next
/// group, loaded when this one is entered: groups follow each other in K order (with act-order too: the prepared
/// layout sorts rows by group), so a group boundary finds its constants arrived instead of waiting a memory latency
/// with the whole block.
/// bf16 (`Element` ElementBf16): the codec's ScaledZeroBf16 per column (the scale split for packed bf16 arithmetic).
struct NoZeroTerms {};
template <class Codec, class Element = ElementFp16>
struct MmaGroupConstants {
  static constexpr bool kBf16 = Element::kType == ElementType::kBf16;
  int group = -1;     ///< the group loaded (-1: none)
  int next_row = -1;  ///< without act-order: first row of the next group (-1: none loaded)
  /// Per column: fp16: the scale in both halves; bf16: the codec's scale split and zero term (ScaledZeroBf16).
  std::conditional_t<kBf16, typename Codec::ScaledZeroBf16, half2> scale[4];
  /// Per column: fp16: the codec's zero-point terms; bf16: nothing (they are in `scale`).
  std::conditional_t<kBf16, NoZeroTerms, typename Codec::ZeroTerms> zero[4];
  int ahead = -1;  ///< the group whose raw constants are in flight (-1: none)
  uint2 ahead_scales;
  std::uint32_t ahead_zeros;

  /// No group yet: scales of 0 and zero points of 0, so that words past the end (zero-filled) give a finite B of 0.
  OPT4GPTQ_DEVICE MmaGroupConstants() {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if constexpr (kBf16) {
        scale[j] = Codec::scaled_zero_bf16(0.0f, 0);
      } else {
        scale[j] = platform::bit_cast<half2>(0u);
        zero[j] = Codec::zero_terms(0);
      }
    }
  }

  /// The 4 scales (8 bytes) and the qzeros word of `group` for the 4 columns from `col`.
  OPT4GPTQ_DEVICE static void load_raw(const KernelParams& p, int group, int col, uint2& scales, std::uint32_t& zeros) {
    scales = *reinterpret_cast<const uint2*>(p.scales + static_cast<std::int64_t>(group) * p.lds + col);
    zeros = p.qzeros[static_cast<std::int64_t>(group) * p.ldz + col / Codec::kColumnsPerZeroWord];
  }

  /// Puts `group`'s raw constants in flight (before the first stage arrives).
  OPT4GPTQ_DEVICE void prefetch(const KernelParams& p, int group_to_load, int col) {
    ahead = group_to_load;
    load_raw(p, ahead, col, ahead_scales, ahead_zeros);
  }

  /// Makes `group_to_enter` current (from the constants loaded ahead when it is the one in flight) and loads the next
  /// one's (`groups` groups in all).
  OPT4GPTQ_DEVICE void enter(const KernelParams& p, int group_to_enter, int groups, int col) {
    uint2 s;
    std::uint32_t z;
    if (group_to_enter == ahead) {
      s = ahead_scales;
      z = ahead_zeros;
    } else {
      load_raw(p, group_to_enter, col, s, z);
    }
    group = group_to_enter;
    const half2 s01 = platform::bit_cast<half2>(s.x);
    const half2 s23 = platform::bit_cast<half2>(s.y);
    // col % 4 == 0: the 4 zero points are nibbles 0..3 or 4..7 of one qzeros word (v1's offset added first).
    const std::uint32_t zeros = (z + p.zero_word_offset) >> (Codec::kBits * (col % Codec::kColumnsPerZeroWord));
    if constexpr (kBf16) {
      const float scales[4] = {__low2float(s01), __high2float(s01), __low2float(s23), __high2float(s23)};
#pragma unroll
      for (int j = 0; j < 4; ++j) scale[j] = Codec::scaled_zero_bf16(scales[j], Codec::zero_of(zeros, j));
    } else {
      scale[0] = __low2half2(s01);
      scale[1] = __high2half2(s01);
      scale[2] = __low2half2(s23);
      scale[3] = __high2half2(s23);
#pragma unroll
      for (int j = 0; j < 4; ++j) zero[j] = Codec::zero_terms(Codec::zero_of(zeros, j));
    }
    if (group_to_enter + 1 < groups) {
      load_raw(p, group_to_enter + 1, col, ahead_scales, ahead_zeros);
      ahead = group_to_enter + 1;
    } else {
      ahead = -1;
    }
  }
};

/// The ReducePolicy step of a matrix-core mainloop: the fragments `acc[kMTiles][Tile::kNTiles][Shape::kCElements]`
/// become one fp32 sum per output of the block in the policy's shared storage (row-major [kRows][Tile::kBlockCols];
/// Shape::c() says which output each accumulator is; column 4c + i of a wave is B column c of n-tile i), then the
/// policy commits them. A block of half an M tile (kRows = 8) leaves out the tile's rows 8..15.
template <class Shape, class Tile, class Reduce, int kRows, class Storage, class Accumulators, class Output>
OPT4GPTQ_DEVICE void reduce_fragments(Storage& storage, const Accumulators& acc, const Output& out) {
  constexpr int kMTiles = (kRows + Shape::kM - 1) / Shape::kM;
  float* sums = Reduce::template block_sums<Tile, kRows>(storage);
  const int lane = out.thread % Shape::kLanes;
  float* wave_sums = sums + (out.thread / Shape::kLanes) * Tile::kWarpCols;
#pragma unroll
  for (int t = 0; t < kMTiles; ++t)
#pragma unroll
    for (int e = 0; e < Shape::kCElements; ++e) {
      const mma::Coord at = Shape::c(lane, e);
      if (kRows % Shape::kM == 0 || at.row < kRows) {
#pragma unroll
        for (int i = 0; i < Tile::kNTiles; ++i)
          wave_sums[(t * Shape::kM + at.row) * Tile::kBlockCols + Tile::kNTiles * at.col + i] = acc[t][i][e];
      }
    }
  __syncthreads();
  Reduce::template commit<Tile, kRows>(storage, out);
}

/// A lane's B registers for one packed word of column `i` of its group constants: the 8 values (q - z) x scale,
/// rounded once to the element type, as 4 registers of 2 elements in the codec's pair order (q0,q4) (q1,q5) (q2,q6)
/// (q3,q7). fp16: the fp16 magic numbers and one __hmul2 (the rounding of the fp16 reference dequantization); bf16:
/// the exact product rounded once to bf16 (Codec::dequant_scaled_bf16: three fma.rn.bf16x2 per pair on NVIDIA).
template <class Codec, class Element>
OPT4GPTQ_DEVICE void dequant_b(std::uint32_t word, const MmaGroupConstants<Codec, Element>& gc, int i,
                               std::uint32_t (&b)[4]) {
  if constexpr (Element::kType == ElementType::kBf16) {
    Codec::dequant_scaled_bf16(word, gc.scale[i], b);
  } else {
    half2 h[4];
    Codec::template dequant<MathBuiltin>(word, gc.zero[i], h);
#pragma unroll
    for (int pr = 0; pr < 4; ++pr) b[pr] = platform::bit_cast<std::uint32_t>(__hmul2(h[pr], gc.scale[i]));
  }
}

}  // namespace detail
OPT4GPTQ_NAMESPACE_END
