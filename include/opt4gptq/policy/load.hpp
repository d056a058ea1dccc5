#pragma once
/// @file
/// LoadPolicy: how a block copies its slice of the activations A from global into shared memory (VML-Opt).
///
/// Contract (checked at compile time by `check_load_policy`):
/// @code
/// struct MyLoad {
///   static constexpr int kVectorHalves = V;  // halves per load: 1, 2, 4 or 8 (8 = one 16-byte load)
///   __device__ static void load(const opt4gptq::half* src, opt4gptq::half (&dst)[V]);  // dst[i] = src[i]
/// };
/// @endcode
/// - `src` is aligned to `V` halves: `validate()` requires A's pointer and row stride to be multiples of V, and names
///   them when they are not. The kernel calls `load` for consecutive vectors from consecutive threads (coalesced).
/// - The kernel stores the halves into shared memory itself (in the order its dequantization wants), so a policy only
///   decides how the global read is made: width, cache hints, non-temporal loads.
/// - Act-order layers gather activation columns through a permutation; a gather cannot be vectorized, so those
///   layers read A one half at a time whatever the policy.
/// - `load` must be a `__device__` function: the compile-time check cannot tell host from device functions, and a
///   host-only `load` fails later with "calling a __host__ function ... from a __device__ function ... is not allowed"
///   (nvcc 13) or "reference to __host__ function 'load' in __device__ function" (hipcc 5.2 / clang 15).
/// @ingroup load_policies

#include "../platform.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup load_policies
/// One `half` per load instruction: the baseline (vLLM's exllama kernel loads A this way: one half per thread per row).
/// On gfx906 these are `global_load_ushort` / `global_load_short_d16`, 2 bytes per lane.
struct LoadScalar {
  static constexpr int kVectorHalves = 1;
  OPT4GPTQ_DEVICE static void load(const half* src, half (&dst)[1]) { dst[0] = *src; }
};

/// @ingroup load_policies
/// Two halves per load (`half2`, 32 bits): the paper's VML-Opt. Halves the load instructions of the staging loop.
struct LoadHalf2 {
  static constexpr int kVectorHalves = 2;
  OPT4GPTQ_DEVICE static void load(const half* src, half (&dst)[2]) {
    const half2 v = *reinterpret_cast<const half2*>(src);
    dst[0] = __low2half(v);
    dst[1] = __high2half(v);
  }
};

/// @ingroup load_policies
/// Eight halves per load (16 bytes: `global_load_dwordx4` / `LDG.128`): the widest load a thread can make.
/// Requires A and its row stride aligned to 8 halves.
struct LoadVec8 {
  static constexpr int kVectorHalves = 8;
  OPT4GPTQ_DEVICE static void load(const half* src, half (&dst)[8]) {
    const uint4 v = *reinterpret_cast<const uint4*>(src);
    const half2 h[4] = {platform::bit_cast<half2>(v.x), platform::bit_cast<half2>(v.y), platform::bit_cast<half2>(v.z),
                        platform::bit_cast<half2>(v.w)};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      dst[2 * i] = __low2half(h[i]);
      dst[2 * i + 1] = __high2half(h[i]);
    }
  }
};

OPT4GPTQ_NAMESPACE_END
