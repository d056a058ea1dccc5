#pragma once
/// @file
/// MathPolicy: the packed-fp16 arithmetic of dequantization and dot products (ILA-Opt).
///
/// Contract (checked at compile time by `check_math_policy`):
/// @code
/// struct MyMath {
///   __device__ static opt4gptq::half2 fma2(opt4gptq::half2 a, opt4gptq::half2 b, opt4gptq::half2 c);  // a*b+c
///   __device__ static opt4gptq::half2 add2(opt4gptq::half2 a, opt4gptq::half2 b);                     // a+b
///   // optional: sum of the 8 products a[i].x*w[i].x + a[i].y*w[i].y, in whatever precision the policy wants.
///   __device__ static float dot8(const opt4gptq::half2 (&a)[4], const opt4gptq::half2 (&w)[4]);
/// };
/// @endcode
/// - Dequantization uses `add2` and `fma2` on exactly representable values (see codec/int4.hpp), so any correctly
///   rounded implementation gives the same (q - z) bits.
/// - Without `dot8`, the kernel computes each 8-term dot product as a chain of four `fma2` (fp16 partial sums, as the
///   exllama kernel does), adds the two halves in fp32 and accumulates across K in fp32. Each half's 4-product fp16
///   partial overflows when |a·(q - z)| sums past 65504 over 4 rows: never while every |a| < 1092 (|q - z| <= 15);
///   measured on an H200, outputs become infinite for activations of magnitude about 1000 to 2100, depending on the
///   layer (a host simulation of the chain on uniform 4-bit values at |a| <= 2000: one partial in 3500 overflows). Policies with an fp32 `dot8`
///   (`MathDot2F32`) avoid that; the dispatcher's default options never choose a kernel with the fp16 chain.
/// @ingroup math_policies

#include "../platform.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup math_policies
/// The compiler's fp16 intrinsics `__hfma2` / `__hadd2`: the baseline. With clang 15 for gfx9 they already become
/// `v_pk_fma_f16` / `v_pk_add_f16`; with nvcc, `HFMA2` / `HADD2`.
struct MathBuiltin {
  OPT4GPTQ_DEVICE static half2 fma2(half2 a, half2 b, half2 c) { return __hfma2(a, b, c); }
  OPT4GPTQ_DEVICE static half2 add2(half2 a, half2 b) { return __hadd2(a, b); }
};

/// @ingroup math_policies
/// Inline assembly of the packed instructions (the paper's ILA-Opt): `v_pk_fma_f16` / `v_pk_add_f16` on AMD gfx9
/// (DCU Z100 = gfx906, gfx90a, gfx94x), `fma.rn.f16x2` / `add.rn.f16x2` PTX on NVIDIA. The statements are not
/// `volatile`: they are pure functions of their inputs, so the compiler may still schedule and deduplicate them.
/// The host pass (never executed) uses the intrinsics.
struct MathInlineAsm {
  OPT4GPTQ_DEVICE static half2 fma2(half2 a, half2 b, half2 c) {
#if defined(__HIP_DEVICE_COMPILE__) && (defined(__GFX9__) || defined(__GFX10__) || defined(__GFX11__))
    unsigned int d;
    asm("v_pk_fma_f16 %0, %1, %2, %3"
        : "=v"(d)
        : "v"(platform::bit_cast<unsigned int>(a)), "v"(platform::bit_cast<unsigned int>(b)),
          "v"(platform::bit_cast<unsigned int>(c)));
    return platform::bit_cast<half2>(d);
#elif defined(__CUDA_ARCH__)
    unsigned int d;
    asm("fma.rn.f16x2 %0, %1, %2, %3;"
        : "=r"(d)
        : "r"(platform::bit_cast<unsigned int>(a)), "r"(platform::bit_cast<unsigned int>(b)),
          "r"(platform::bit_cast<unsigned int>(c)));
    return platform::bit_cast<half2>(d);
#else
    return __hfma2(a, b, c);
#endif
  }
  OPT4GPTQ_DEVICE static half2 add2(half2 a, half2 b) {
#if defined(__HIP_DEVICE_COMPILE__) && (defined(__GFX9__) || defined(__GFX10__) || defined(__GFX11__))
    unsigned int d;
    asm("v_pk_add_f16 %0, %1, %2"
        : "=v"(d)
        : "v"(platform::bit_cast<unsigned int>(a)), "v"(platform::bit_cast<unsigned int>(b)));
    return platform::bit_cast<half2>(d);
#elif defined(__CUDA_ARCH__)
    unsigned int d;
    asm("add.rn.f16x2 %0, %1, %2;"
        : "=r"(d)
        : "r"(platform::bit_cast<unsigned int>(a)), "r"(platform::bit_cast<unsigned int>(b)));
    return platform::bit_cast<half2>(d);
#else
    return __hadd2(a, b);
#endif
  }
};

/// @ingroup math_policies
/// fp32 accumulation of every product (no fp16 partial sums, so no fp16 overflow). On gfx9 with dot instructions
/// (gfx906, gfx908, gfx90a, gfx94x) the dot product is `v_dot2_f32_f16` (two fp16 products added into an fp32
/// accumulator per instruction: 4 per 8 values, as many as the fp16 chain); clang does not form it by itself, so it is
/// called through `__builtin_amdgcn_fdot2`. Elsewhere the halves are widened to fp32 and fused in fp32 (more
/// instructions: at M = 1 the kernel is memory-bound and hides them, at larger M it is slower than the fp16 chain).
struct MathDot2F32 {
  OPT4GPTQ_DEVICE static half2 fma2(half2 a, half2 b, half2 c) { return __hfma2(a, b, c); }
  OPT4GPTQ_DEVICE static half2 add2(half2 a, half2 b) { return __hadd2(a, b); }
  OPT4GPTQ_DEVICE static float dot8(const half2 (&a)[4], const half2 (&w)[4]) {
#if defined(__gfx906__) || defined(__gfx908__) || defined(__gfx90a__) || defined(__gfx940__) || defined(__gfx941__) || \
    defined(__gfx942__)
    using v2f16 = _Float16 __attribute__((ext_vector_type(2)));
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i)
      sum = __builtin_amdgcn_fdot2(platform::bit_cast<v2f16>(a[i]), platform::bit_cast<v2f16>(w[i]), sum, false);
    return sum;
#else
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      sum = fmaf(__low2float(a[i]), __low2float(w[i]), sum);
      sum = fmaf(__high2float(a[i]), __high2float(w[i]), sum);
    }
    return sum;
#endif
  }
};

OPT4GPTQ_NAMESPACE_END
