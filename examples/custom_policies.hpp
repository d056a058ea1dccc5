#pragma once
// User-written policies, one of each family, as an engine would write them: each is a plain struct with static
// device members; DequantGemm checks the contract at compile time. The example custom_policies.cpp runs them, and
// the GPU tests check them against the fp64 reference.

#include <opt4gptq/opt4gptq.hpp>

namespace user {

//! [custom-load-policy]
// LoadPolicy: activations through the read-only data path, 4 halves (8 bytes) per load.
struct LoadReadOnly4 {
  static constexpr int kVectorHalves = 4;
  __device__ static void load(const opt4gptq::half* src, opt4gptq::half (&dst)[4]) {
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(src));
    const auto lo = opt4gptq::platform::bit_cast<opt4gptq::half2>(v.x);
    const auto hi = opt4gptq::platform::bit_cast<opt4gptq::half2>(v.y);
    dst[0] = __low2half(lo);
    dst[1] = __high2half(lo);
    dst[2] = __low2half(hi);
    dst[3] = __high2half(hi);
  }
};
//! [custom-load-policy]

//! [custom-math-policy]
// MathPolicy: unfused multiply then add (two roundings), and an fp32 dot product built from fp16 products.
struct MathMulAdd {
  __device__ static opt4gptq::half2 fma2(opt4gptq::half2 a, opt4gptq::half2 b, opt4gptq::half2 c) {
    return __hadd2(__hmul2(a, b), c);
  }
  __device__ static opt4gptq::half2 add2(opt4gptq::half2 a, opt4gptq::half2 b) { return __hadd2(a, b); }
  __device__ static float dot8(const opt4gptq::half2 (&a)[4], const opt4gptq::half2 (&w)[4]) {
    float sum = 0.0f;
    for (int i = 0; i < 4; ++i) {
      const opt4gptq::half2 p = __hmul2(a[i], w[i]);  // |a·(q - z)| <= 16|a|: fp16 products do not overflow
      sum += __low2float(p) + __high2float(p);
    }
    return sum;
  }
};
//! [custom-math-policy]

//! [custom-reduce-policy]
// ReducePolicy: the block's partials meet through fp32 atomics in shared memory, then one commit per output pair.
struct ReduceSharedAtomics {
  template <class Tile, int kRows>
  struct SharedStorage {
    float sum[kRows][Tile::kBlockCols];
  };
  static constexpr bool accumulates_into_output(int k_blocks) { return k_blocks > 1; }

  template <class Tile, int kRows>
  __device__ static void reduce(SharedStorage<Tile, kRows>& s, const float (&partial)[kRows][4],
                                const opt4gptq::ThreadOutput& out) {
    for (int i = out.thread; i < kRows * Tile::kBlockCols; i += Tile::kThreads) (&s.sum[0][0])[i] = 0.0f;
    __syncthreads();
    for (int r = 0; r < kRows; ++r)
      for (int j = 0; j < 4; ++j) atomicAdd(&s.sum[r][4 * out.lane + j], partial[r][j]);
    __syncthreads();
    for (int i = out.thread; i < kRows * Tile::kBlockCols / 2; i += Tile::kThreads) {
      const int r = i / (Tile::kBlockCols / 2), c = 2 * (i % (Tile::kBlockCols / 2)), col = out.block_col + c;
      if (r >= out.rows || col >= out.n) continue;
      auto* dst = reinterpret_cast<opt4gptq::half2*>(out.c + r * out.ldc + col);
      const auto value = __floats2half2_rn(s.sum[r][c], s.sum[r][c + 1]);
      if (out.whole_k)
        *dst = value;
      else
        opt4gptq::platform::atomic_add_half2(dst, value);
    }
  }
};
//! [custom-reduce-policy]

//! [custom-kernel]
// All three plugged into the one kernel (the tile defaults to SplitKTile for non-atomic reductions).
using CustomGemm = opt4gptq::DequantGemm<LoadReadOnly4, ReduceSharedAtomics, MathMulAdd>;
//! [custom-kernel]

}  // namespace user
