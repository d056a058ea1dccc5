#pragma once
/// @file
/// Staging of a block's activations in shared memory, shared by the mainloops: rows [stage, stage_end) of K for the
/// block's rows of M, each run of 8 rows interleaved in the codec's order (a0 a4 a1 a5 a2 a6 a3 a7, so that one
/// 16-byte vector per 8 rows lines up with one dequantized packed word), read through the LoadPolicy, or gathered
/// through the prepared permutation with act-order. Rows of M past `rows` and rows of K past stage_end are zero.
/// @ingroup kernel

#include <cstdint>

#include "../platform.hpp"
#include "params.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

namespace detail {

/// 16 bytes: 8 halves of activations, or 4 columns' words of qweight. A plain aggregate so that it can live in a
/// union in shared memory (HIP's uint4 has constructors); alignas(16) lets the compilers use 128-bit accesses.
struct alignas(16) Words4 {
  std::uint32_t x, y, z, w;
};

/// Stages kRows rows of M x kStageRows rows of K at `dst` (row r of M at dst + r * kRowStride halves: a stride above
/// kStageRows pads rows against bank conflicts) and, with act-order, the group of each 8-row word in `word_group`.
/// Called by all kThreads threads of the block; the caller synchronizes. kBatch > 1 (16-byte LoadPolicies only):
/// each thread issues up to kBatch loads before it stores any, so that a large stage costs a few memory latencies,
/// not one per vector.
template <class Load, class Codec, int kThreads, int kStageRows, int kRowStride, int kRows, bool kActOrder,
          int kBatch = 1>
OPT4GPTQ_DEVICE void stage_activations(const KernelParams& p, half* dst, int* word_group, int stage, int stage_end,
                                       int m0, int rows) {
  const int len = stage_end - stage;
  const half zero = platform::bit_cast<half>(static_cast<unsigned short>(0));
  if constexpr (!kActOrder && kBatch > 1 && Load::kVectorHalves == 8) {
    constexpr int kVectorsPerRow = kStageRows / 8;
    constexpr int kVectors = kRows * kVectorsPerRow;
    for (int first = 0; first < kVectors; first += kThreads * kBatch) {
      // Every load of the batch is unconditional (vectors outside the tensor read row m0's first vector instead and
      // are zeroed afterwards), so that all are in flight before the first is used: a predicated load followed by
      // its use was compiled as load, wait, store, one vector after the other.
      Words4 packed[kBatch];
      bool inside[kBatch];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int i = first + b * kThreads + static_cast<int>(threadIdx.x);
        const int r = i / kVectorsPerRow;
        const int kk = (i % kVectorsPerRow) * 8;
        inside[b] = i < kVectors && r < rows && kk < len;
        half v[8];
        Load::load(inside[b] ? p.a + (m0 + r) * p.lda + stage + kk : p.a + m0 * p.lda + stage, v);
        packed[b] = Words4{platform::bit_cast<std::uint32_t>(__halves2half2(v[0], v[4])),
                           platform::bit_cast<std::uint32_t>(__halves2half2(v[1], v[5])),
                           platform::bit_cast<std::uint32_t>(__halves2half2(v[2], v[6])),
                           platform::bit_cast<std::uint32_t>(__halves2half2(v[3], v[7]))};
      }
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int i = first + b * kThreads + static_cast<int>(threadIdx.x);
        if (i < kVectors) {
          const int r = i / kVectorsPerRow;
          const int kk = (i % kVectorsPerRow) * 8;
          *reinterpret_cast<Words4*>(dst + r * kRowStride + kk) = inside[b] ? packed[b] : Words4{0u, 0u, 0u, 0u};
        }
      }
    }
  } else if constexpr (!kActOrder) {
    constexpr int kVector = Load::kVectorHalves;
    constexpr int kVectorsPerRow = kStageRows / kVector;
    for (int i = threadIdx.x; i < kRows * kVectorsPerRow; i += kThreads) {
      const int r = i / kVectorsPerRow;
      const int kk = (i % kVectorsPerRow) * kVector;
      half v[kVector];
      if (r < rows && kk < len) {
        Load::load(p.a + (m0 + r) * p.lda + stage + kk, v);
      } else {
#pragma unroll
        for (int e = 0; e < kVector; ++e) v[e] = zero;
      }
      half* row = dst + r * kRowStride;
      if constexpr (kVector == 8) {
        // One 16-byte store: (v0,v4) (v1,v5) (v2,v6) (v3,v7).
        *reinterpret_cast<Words4*>(row + kk) = Words4{platform::bit_cast<std::uint32_t>(__halves2half2(v[0], v[4])),
                                                      platform::bit_cast<std::uint32_t>(__halves2half2(v[1], v[5])),
                                                      platform::bit_cast<std::uint32_t>(__halves2half2(v[2], v[6])),
                                                      platform::bit_cast<std::uint32_t>(__halves2half2(v[3], v[7]))};
      } else {
#pragma unroll
        for (int e = 0; e < kVector; ++e) {
          const int j = kk + e;
          row[(j & ~7) + Codec::interleaved_position(j & 7)] = v[e];
        }
      }
    }
  } else {
    // Act-order: gather column perm[k] of A for sorted row k (a gather cannot be vectorized).
    for (int kk = threadIdx.x; kk < kStageRows; kk += kThreads) {
      const int src = kk < len ? p.perm[stage + kk] : -1;
      const int pos = (kk & ~7) + Codec::interleaved_position(kk & 7);
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        dst[r * kRowStride + pos] = (r < rows && src >= 0 && src < p.act_order_k) ? p.a[(m0 + r) * p.lda + src] : zero;
    }
    for (int w = threadIdx.x; w < kStageRows / 8; w += kThreads)
      word_group[w] = 8 * w < len ? p.word_group[stage / 8 + w] : 0;
  }
}

}  // namespace detail

OPT4GPTQ_NAMESPACE_END
