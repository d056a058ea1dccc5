#pragma once
/// @file
/// The dequantize kernel: a layer's packed weights to dense fp16 or bf16 `W[k][n]` in the original row order, for a
/// dense GEMM to consume (the prefill path, host/dequant_cublas.hpp; the host call is host/dequantize.hpp). Each
/// thread takes 4 columns of one packed word (8 rows): one 16-byte load of qweight, the codec's exact q - z, one
/// multiply by the group's scale rounded once to the element type (the rounding the matrix-core mainloop of that type
/// applies to its B values, with the same codec function: an fp16 multiply; for bf16 the exact product rounded once,
/// CodecInt4::dequant_scaled_bf16), and one 8-byte store per row. With act-order, row j of the prepared (sorted)
/// layout is row perm[j] of W; padding rows (perm -1) are skipped, and every original row is some perm[j] once, so all
/// of W is written.
/// @ingroup kernel

#include <cstdint>

#include "../codec/int4.hpp"
#include "../element.hpp"
#include "../platform.hpp"
#include "../policy/math.hpp"
#include "act_order_rows.hpp"
#include "activation_staging.hpp"
#include "params.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup kernel
/// Threads per block of dequantize_kernel (each covers 4 columns, so a block covers 1024 columns of one word).
inline constexpr int kDequantizeThreads = 256;

/// @ingroup kernel
/// W = dequant(qweight): KernelParams as for a GEMM, with `c` / `ldc` the output W [k][n] of `Element` (4 columns per
/// 8-byte store: ldc a multiple of 4) and `m` unused. Grid: x covers the column quads, y strides over the packed words.
template <class Codec, bool kActOrder, class Element = ElementFp16>
__global__ static void __launch_bounds__(kDequantizeThreads) dequantize_kernel(const KernelParams p) {
  static_assert(Codec::kRowsPerWord == 8, "dequantize_kernel: a packed word holds 8 rows (CodecInt4)");
  const int col = 4 * static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (col >= p.n) return;  // n % 8 == 0: all 4 columns exist, or none
  const detail::RowsInUse in_use = detail::rows_in_use<kActOrder>(p);
  const int words = p.k_rows / 8;
  if (!in_use.data_valid) {
    // A g_idx entry outside [0, num_groups), or a view of another layout: W is NaN, as the GEMM kernels' outputs.
    const std::uint32_t nan2 = Element::kType == ElementType::kBf16 ? 0x7FC07FC0u : 0x7E007E00u;
    const int rows = kActOrder ? p.act_order_k : p.k_rows;
    for (int w = blockIdx.y; w < rows / 8; w += gridDim.y)
#pragma unroll
      for (int j = 0; j < 8; ++j)
        *reinterpret_cast<uint2*>(p.c + static_cast<std::int64_t>(8 * w + j) * p.ldc + col) = make_uint2(nan2, nan2);
    return;
  }
  for (int w = blockIdx.y; w < words; w += gridDim.y) {
    if (8 * w >= in_use.k_rows) break;  // act-order: the rows past those in use are padding
    const detail::Words4 q =
        *reinterpret_cast<const detail::Words4*>(p.qweight + static_cast<std::int64_t>(w) * p.ldq + col);
    const int group = kActOrder ? p.word_group[w] : 8 * w / p.group_size;
    const uint2 s = *reinterpret_cast<const uint2*>(p.scales + static_cast<std::int64_t>(group) * p.lds + col);
    const half2 s01 = platform::bit_cast<half2>(s.x);
    const half2 s23 = platform::bit_cast<half2>(s.y);
    const half2 scale[4] = {__low2half2(s01), __high2half2(s01), __low2half2(s23), __high2half2(s23)};
    // col % 4 == 0: the 4 zero points are nibbles 0..3 or 4..7 of one qzeros word (v1's offset added first).
    const std::uint32_t zeros =
        (p.qzeros[static_cast<std::int64_t>(group) * p.ldz + col / Codec::kColumnsPerZeroWord] + p.zero_word_offset) >>
        (Codec::kBits * (col % Codec::kColumnsPerZeroWord));
    const std::uint32_t word[4] = {q.x, q.y, q.z, q.w};
    if constexpr (Element::kType == ElementType::kBf16) {
      std::uint32_t value[4][4];  // [column][pair]: bf16 pairs (row 0, 4) (1, 5) (2, 6) (3, 7), the codec's order
#pragma unroll
      for (int c = 0; c < 4; ++c)
        Codec::dequant_scaled_bf16(word[c], Codec::scaled_zero_bf16(__low2float(scale[c]), Codec::zero_of(zeros, c)),
                                   value[c]);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int row = kActOrder ? p.perm[8 * w + j] : 8 * w + j;
        if (row < 0) continue;  // act-order padding
        const int shift = j >= 4 ? 16 : 0;
        auto half_of = [&](int c) { return (value[c][j & 3] >> shift) & 0xFFFFu; };
        const uint2 out = make_uint2(half_of(0) | (half_of(1) << 16), half_of(2) | (half_of(3) << 16));
        *reinterpret_cast<uint2*>(p.c + static_cast<std::int64_t>(row) * p.ldc + col) = out;
      }
    } else {
      half2 value[4][4];  // [column][pair]: pairs (row 0, 4) (1, 5) (2, 6) (3, 7), the codec's order
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        Codec::template dequant<MathBuiltin>(word[c], Codec::zero_terms(Codec::zero_of(zeros, c)), value[c]);
#pragma unroll
        for (int pr = 0; pr < 4; ++pr) value[c][pr] = __hmul2(value[c][pr], scale[c]);
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int row = kActOrder ? p.perm[8 * w + j] : 8 * w + j;
        if (row < 0) continue;  // act-order padding
        const int pair = j & 3;
        const bool high = j >= 4;
        half h[4];
#pragma unroll
        for (int c = 0; c < 4; ++c) h[c] = high ? __high2half(value[c][pair]) : __low2half(value[c][pair]);
        const uint2 out = make_uint2(platform::bit_cast<std::uint32_t>(__halves2half2(h[0], h[1])),
                                     platform::bit_cast<std::uint32_t>(__halves2half2(h[2], h[3])));
        *reinterpret_cast<uint2*>(p.c + static_cast<std::int64_t>(row) * p.ldc + col) = out;
      }
    }
  }
}

OPT4GPTQ_NAMESPACE_END
