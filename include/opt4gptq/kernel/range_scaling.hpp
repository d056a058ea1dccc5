#pragma once
/// @file
/// Range scaling of staged activations: what lets a mainloop sum products in fp16 without the fp16 overflow hazard.
///
/// The exllama chain adds 4 products a · (q - z) per fp16 lane (policy/math.hpp); with |q - z| <= 15 the partial sum
/// overflows once |a| passes about 1092, although the result, after the group's scale, may be small. Here each row of
/// M of a staged window of activations is multiplied by a power of two 2^-s chosen from the window's largest |a| of
/// that row, so that the largest becomes 512 <= |a'| < 1024: a partial sum is then at most 4 · 15 · 1024 = 61440 <
/// 65504 and cannot overflow, and small activations are scaled up rather than lost to fp16's subnormals. Multiplying
/// by a power of two is exact (a value more than 2^23 below the row's largest may round as a subnormal, which changes
/// the result by less than an fp16 rounding of it). The caller's fp32 accumulators stay in units of 2^s: when the next
/// window has another s they are rescaled by a power of two (exact), and multiplied by 2^s at the end.
/// A row whose window holds inf or NaN is left as it is, so that they propagate as without the scaling.
/// Cost per window: two barriers, one pass over the staged activations to find the largest, one packed multiply per
/// pair of activations, and a wave reduction per row.
///
/// bf16 activations (kFromBf16) take the same path into fp16: the window is staged as bf16 and converted in place, each
/// value times the row's 2^s in fp32 and rounded to fp16. A bf16 has 8 significant bits and fp16 11, so the conversion
/// is exact for every value down to 2^-26 of the row's largest: fp16's normals reach 2^-23 of it (the largest lands in
/// [2^9, 2^10), the smallest normal is 2^-14), and its subnormals still hold 8 significant bits down to 2^-17, 2^-26 of
/// the largest (for a row whose largest is at least 2^-110; below, the capped shift leaves it under 2^9). Smaller
/// values round, each by at most 2^-25 after the scaling (half of fp16's smallest subnormal): below 2^-34 of the
/// largest. The mainloop then runs the
/// fp16 arithmetic of fp16 activations (packed fp16 partial sums or fp16 dot products into fp32), which sums more
/// bits than bf16 arithmetic would, at the fp16 kernel's speed. The shift is at most 120 (a window whose largest |a| is
/// below 2^-110 keeps it below 2^10 rather than above 2^9; 2^-120 stays a normal fp32), and at least -118 (bf16's
/// largest is below 2^128). A row holding inf or NaN is converted with no shift (its finite values above 65504 become
/// inf: the row's outputs are not finite either way).
/// Not API.
/// @ingroup kernel

#include <cstdint>

#include "../detail/block_primitives.hpp"
#include "../platform.hpp"
#include "activation_staging.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace detail {

/// Shared memory of range_scale_window: one wave reduction's storage and one maximum per wave and row.
template <int kThreads, int kRows>
struct RangeScaleStorage {
  static constexpr int kWaves = (kThreads + platform::kWaveSize - 1) / platform::kWaveSize;
  typename WarpMaxUnsigned<platform::kWaveSize>::TempStorage reduce[kWaves];
  unsigned int wave_max[kWaves][kRows];  ///< largest |a| of a wave's vectors, as fp16 bits (ordered as integers)
};

/// Running maximum of |x| over the halves of `v`, as two packed fp16 bit patterns (low and high halves apart): with
/// the sign cleared, fp16 (and bf16) values order as their bits do (inf and NaN above every finite value).
OPT4GPTQ_DEVICE std::uint32_t abs_max_packed(const Words4& v, std::uint32_t packed) {
  constexpr std::uint32_t kAbs = 0x7FFF7FFFu;
#if defined(OPT4GPTQ_BACKEND_CUDA) && defined(__CUDA_ARCH__)
  // VIMNMX.U16x2: one instruction per pair of halves.
  return __vmaxu2(__vmaxu2(packed, __vmaxu2(v.x & kAbs, v.y & kAbs)), __vmaxu2(v.z & kAbs, v.w & kAbs));
#else
  const std::uint32_t words[4] = {v.x & kAbs, v.y & kAbs, v.z & kAbs, v.w & kAbs};
  std::uint32_t low = packed & 0xFFFFu, high = packed >> 16;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    low = max(low, words[i] & 0xFFFFu);
    high = max(high, words[i] >> 16);
  }
  return low | (high << 16);
#endif
}

/// `v` times `factor` (a power of two that fp16 holds as a normal number): one packed multiply per pair, exact unless a
/// result is subnormal.
OPT4GPTQ_DEVICE Words4 scale_vector(const Words4& v, half2 factor) {
  auto mul = [&](std::uint32_t w) {
    return platform::bit_cast<std::uint32_t>(__hmul2(platform::bit_cast<half2>(w), factor));
  };
  return Words4{mul(v.x), mul(v.y), mul(v.z), mul(v.w)};
}

/// 2^e as fp16 bits, for -14 <= e <= 15.
OPT4GPTQ_DEVICE half2 power_of_two_half2(int e) {
  const std::uint32_t bits = static_cast<std::uint32_t>(e + 15) << 10;
  return platform::bit_cast<half2>(bits | (bits << 16));
}

/// `v`, 8 bf16 values, times `factor` (a power of two) in fp32, rounded to 8 fp16 values in the same places.
OPT4GPTQ_DEVICE Words4 bf16_to_scaled_fp16(const Words4& v, float factor) {
  auto convert = [&](std::uint32_t w) {
    // A bf16 is the upper half of an fp32: the low value widens with a shift, the high one with a mask.
    const float low = platform::bit_cast<float>(w << 16) * factor;
    const float high = platform::bit_cast<float>(w & 0xFFFF0000u) * factor;
    return platform::bit_cast<std::uint32_t>(__floats2half2_rn(low, high));
  };
  return Words4{convert(v.x), convert(v.y), convert(v.z), convert(v.w)};
}

/// The 2^shift that brings a row whose largest |a| has the bits `bits` (fp16 bits, or bf16 bits with kFromBf16) to
/// 512 <= |a| < 1024: 0 for a row of zeros, inf or NaN.
template <bool kFromBf16>
OPT4GPTQ_DEVICE int range_shift(unsigned int bits) {
  constexpr unsigned int kInf = kFromBf16 ? 0x7F80u : 0x7C00u;
  if (bits == 0 || bits >= kInf) return 0;
  const float largest = kFromBf16 ? platform::bit_cast<float>(bits << 16)
                                  : __half2float(platform::bit_cast<half>(static_cast<unsigned short>(bits)));
  int exponent;
  (void)frexpf(largest, &exponent);
  const int shift = 10 - exponent;
  return kFromBf16 && shift > 120 ? 120 : shift;
}

/// Scales the staged window `a` (kRows rows of kWords 16-byte vectors, every vector staged: zeros past the data) row by
/// row as the file comment says (and, with kFromBf16, converts it from bf16 to fp16), and brings `acc` (the caller's
/// fp32 accumulators, kColumns per row, in units of `unit[r]` = 2^s of the previous window) to the new units. Called by
/// all kThreads threads after the window's staging barrier; returns after a barrier, so the scaled window is visible
/// to every thread.
template <int kThreads, int kRows, int kWords, int kColumns, bool kFromBf16 = false>
OPT4GPTQ_DEVICE void range_scale_window(Words4 (&a)[kRows][kWords], RangeScaleStorage<kThreads, kRows>& storage,
                                        float (&acc)[kRows][kColumns], float (&unit)[kRows]) {
  constexpr int kWave = platform::kWaveSize;
  const int thread = static_cast<int>(threadIdx.x);
  const int wave = thread / kWave;
  unsigned int largest[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    std::uint32_t packed = 0;
    for (int i = thread; i < kWords; i += kThreads) packed = abs_max_packed(a[r][i], packed);
    largest[r] = WarpMaxUnsigned<kWave>::max(max(packed & 0xFFFFu, packed >> 16), storage.reduce[wave]);
  }
  if (thread % kWave == 0) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) storage.wave_max[wave][r] = largest[r];
  }
  __syncthreads();
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    unsigned int bits = 0;
#pragma unroll
    for (int w = 0; w < RangeScaleStorage<kThreads, kRows>::kWaves; ++w) bits = max(bits, storage.wave_max[w][r]);
    const int shift = range_shift<kFromBf16>(bits);
    const float factor = ldexpf(1.0f, shift);
    if constexpr (kFromBf16) {
      // Every bf16 window is converted, whatever its shift (one fp32 multiply holds any of them).
      for (int i = thread; i < kWords; i += kThreads) a[r][i] = bf16_to_scaled_fp16(a[r][i], factor);
    } else {
      // The largest fp16 is below 2^16 and the smallest above 2^-25, so -6 <= shift <= 34: applied in steps that
      // fp16 holds (at most three).
      for (int left = shift; left != 0;) {
        const int step = left > 15 ? 15 : left;
        const half2 step_factor = power_of_two_half2(step);
        for (int i = thread; i < kWords; i += kThreads) a[r][i] = scale_vector(a[r][i], step_factor);
        left -= step;
      }
    }
    // acc holds sums in units of unit[r]; this window's products come in units of 1 / factor.
#pragma unroll
    for (int j = 0; j < kColumns; ++j) acc[r][j] *= unit[r] * factor;
    unit[r] = 1.0f / factor;  // a power of two: exact
  }
  __syncthreads();
}

}  // namespace detail
OPT4GPTQ_NAMESPACE_END
