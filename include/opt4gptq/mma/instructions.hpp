#pragma once
/// @file
/// The matrix instructions of mma/layout.hpp, one device function each, and whether the target being compiled has
/// them. Asking for one on a target without it is a compile-time error that says which targets have it (gfx906, the
/// HYGON DCU Z100, has no matrix instructions: the SIMT presets are the kernels for it).
/// @ingroup kernel

#include <cstdint>

#include "../platform.hpp"
#include "layout.hpp"

// Which matrix instructions the device pass being compiled has (0 in the host pass: the answer belongs to the
// device code). The only architecture lists of the matrix path.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define OPT4GPTQ_HAS_MMA_M16N8K16 1
#else
#define OPT4GPTQ_HAS_MMA_M16N8K16 0
#endif
#if defined(__gfx908__) || defined(__gfx90a__) || defined(__gfx940__) || defined(__gfx941__) || defined(__gfx942__)
#define OPT4GPTQ_HAS_MFMA_F32_16X16X16F16 1
#else
#define OPT4GPTQ_HAS_MFMA_F32_16X16X16F16 0
#endif
// bf16 with fp16's layouts: v_mfma_f32_16x16x16bf16_1k is gfx90a's and gfx94x's (gfx908 has only the 16x16x8 bf16
// form, with other layouts).
#if defined(__gfx90a__) || defined(__gfx940__) || defined(__gfx941__) || defined(__gfx942__)
#define OPT4GPTQ_HAS_MFMA_F32_16X16X16BF16_1K 1
#else
#define OPT4GPTQ_HAS_MFMA_F32_16X16X16BF16_1K 0
#endif

OPT4GPTQ_NAMESPACE_BEGIN
namespace mma {

/// `d += a · b` with mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 (MmaM16N8K16's layouts): `a` 4 registers of
/// 2 halves, `b` 2, `d` 4 fp32. NVIDIA sm_80 and later.
template <int kDeferred = 0>
OPT4GPTQ_DEVICE void mma_m16n8k16(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
#if OPT4GPTQ_HAS_MMA_M16N8K16
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif defined(OPT4GPTQ_DEVICE_PASS)
  static_assert(kDeferred != 0,
                "mma.sync m16n8k16 needs NVIDIA sm_80 or later: build for -arch=sm_80 (or newer), or use the SIMT "
                "presets (opt4gptq::presets::Opt4Gptq, Baseline, ...)");
#endif
}

/// `d += a · b` with mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: the fp16 instruction's layouts (each
/// register holds 2 bf16 instead of 2 halves). NVIDIA sm_80 and later.
template <int kDeferred = 0>
OPT4GPTQ_DEVICE void mma_m16n8k16_bf16(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
#if OPT4GPTQ_HAS_MMA_M16N8K16
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif defined(OPT4GPTQ_DEVICE_PASS)
  static_assert(kDeferred != 0,
                "mma.sync m16n8k16 (bf16) needs NVIDIA sm_80 or later: build for -arch=sm_80 (or newer), or use the "
                "SIMT bf16 presets (opt4gptq::presets::Bf16Deterministic, Bf16Decode, ...)");
#endif
}

/// `d += a · b` with v_mfma_f32_16x16x16bf16_1k: v_mfma_f32_16x16x16f16's layouts with bf16 elements. AMD gfx90a and
/// gfx940-942.
template <int kDeferred = 0>
OPT4GPTQ_DEVICE void mfma_f32_16x16x16bf16_1k(float (&d)[4], const std::uint32_t (&a)[2], const std::uint32_t (&b)[2]) {
#if OPT4GPTQ_HAS_MFMA_F32_16X16X16BF16_1K
  typedef short short4 __attribute__((ext_vector_type(4)));
  typedef float float4 __attribute__((ext_vector_type(4)));
  const short4 av = __builtin_bit_cast(short4, (static_cast<std::uint64_t>(a[1]) << 32) | a[0]);
  const short4 bv = __builtin_bit_cast(short4, (static_cast<std::uint64_t>(b[1]) << 32) | b[0]);
  float4 acc = {d[0], d[1], d[2], d[3]};
  acc = __builtin_amdgcn_mfma_f32_16x16x16bf16_1k(av, bv, acc, 0, 0, 0);
  d[0] = acc[0];
  d[1] = acc[1];
  d[2] = acc[2];
  d[3] = acc[3];
#elif defined(OPT4GPTQ_DEVICE_PASS)
  static_assert(kDeferred != 0,
                "v_mfma_f32_16x16x16bf16_1k needs AMD gfx90a or gfx940-942 (gfx908 has only the 16x16x8 bf16 MFMA; "
                "gfx906, the HYGON DCU Z100, has no matrix instructions and no bf16 arithmetic): use the SIMT bf16 "
                "presets (opt4gptq::presets::Bf16Deterministic, Bf16Decode, ...), which compute in fp32");
#endif
}

/// `d += a · b` with v_mfma_f32_16x16x16f16 (MfmaF32x16x16x16F16's layouts): `a` and `b` 2 registers of 2 halves,
/// `d` 4 fp32. AMD gfx908, gfx90a, gfx940-942.
template <int kDeferred = 0>
OPT4GPTQ_DEVICE void mfma_f32_16x16x16f16(float (&d)[4], const std::uint32_t (&a)[2], const std::uint32_t (&b)[2]) {
#if OPT4GPTQ_HAS_MFMA_F32_16X16X16F16
  typedef _Float16 half4 __attribute__((ext_vector_type(4)));
  typedef float float4 __attribute__((ext_vector_type(4)));
  const half4 av = __builtin_bit_cast(half4, (static_cast<std::uint64_t>(a[1]) << 32) | a[0]);
  const half4 bv = __builtin_bit_cast(half4, (static_cast<std::uint64_t>(b[1]) << 32) | b[0]);
  float4 acc = {d[0], d[1], d[2], d[3]};
  acc = __builtin_amdgcn_mfma_f32_16x16x16f16(av, bv, acc, 0, 0, 0);
  d[0] = acc[0];
  d[1] = acc[1];
  d[2] = acc[2];
  d[3] = acc[3];
#elif defined(OPT4GPTQ_DEVICE_PASS)
  static_assert(kDeferred != 0,
                "v_mfma_f32_16x16x16f16 needs AMD gfx908, gfx90a or gfx940-942 (CDNA). gfx906 (HYGON DCU Z100, "
                "MI50/60) has no matrix instructions: use the SIMT presets (opt4gptq::presets::Opt4Gptq, Baseline, "
                "...); HYGON's gfx928 (K100_AI) has MMAC instructions, which a future variant would take");
#endif
}

/// The instruction of a layout, for mainloops written over the shape: `kAvailable` in the device pass being compiled,
/// and `run(d, a, b)` with the shape's register counts (a compile-time error where the target lacks it).
template <class Shape>
struct MatrixInstruction;

template <>
struct MatrixInstruction<MmaM16N8K16> {
  static constexpr bool kAvailable = OPT4GPTQ_HAS_MMA_M16N8K16 != 0;
  template <int kDeferred = 0>
  OPT4GPTQ_DEVICE static void run(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    mma_m16n8k16<kDeferred>(d, a, b);
  }
  /// The same product with bf16 elements (the same layouts).
  template <int kDeferred = 0>
  OPT4GPTQ_DEVICE static void run_bf16(float (&d)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    mma_m16n8k16_bf16<kDeferred>(d, a, b);
  }
};

template <>
struct MatrixInstruction<MfmaF32x16x16x16F16> {
  static constexpr bool kAvailable = OPT4GPTQ_HAS_MFMA_F32_16X16X16F16 != 0;
  template <int kDeferred = 0>
  OPT4GPTQ_DEVICE static void run(float (&d)[4], const std::uint32_t (&a)[2], const std::uint32_t (&b)[2]) {
    mfma_f32_16x16x16f16<kDeferred>(d, a, b);
  }
  /// The same product with bf16 elements (v_mfma_f32_16x16x16bf16_1k: the same layouts).
  template <int kDeferred = 0>
  OPT4GPTQ_DEVICE static void run_bf16(float (&d)[4], const std::uint32_t (&a)[2], const std::uint32_t (&b)[2]) {
    mfma_f32_16x16x16bf16_1k<kDeferred>(d, a, b);
  }
};

/// The shape this backend's matrix mainloop uses: mma.sync m16n8k16 on NVIDIA, v_mfma_f32_16x16x16f16 on AMD.
#if defined(OPT4GPTQ_BACKEND_HIP)
using NativeShape = MfmaF32x16x16x16F16;
#else
using NativeShape = MmaM16N8K16;
#endif

}  // namespace mma
OPT4GPTQ_NAMESPACE_END
