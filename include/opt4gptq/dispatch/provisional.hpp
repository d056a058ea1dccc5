#pragma once
/// @file
/// Dispatch tables for the architectures nothing has been measured on yet: written by hand from what the H200 and
/// H100 measurements and the kernels' designs say, and PROVISIONAL until bench/run.sh has run on such a device and
/// bench/make_dispatch_table.py has replaced them with a measured table. Each rule says why.
/// @ingroup host_api

#include "../dispatch_table.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace dispatch {

/// @ingroup host_api
/// NVIDIA sm_80 and later other than sm_90 (A100, L40S, Blackwell): the shape of the H200 table. Baseline for M <= 2
/// (the SIMT kernels lead at decode on the H100 and the H200), the tensor cores up to the prefill path's threshold,
/// then dequantize + cuBLAS (the H200 threshold, also unmeasured).
inline constexpr DispatchRule kNvidiaMatrixCoreRules[] = {
    {2, -1, -1, KernelChoice::kBaseline},
    {255, -1, -1, KernelChoice::kTensorCore},
    {kAnyM, -1, -1, KernelChoice::kDequantCublas},
};
/// @ingroup host_api
inline constexpr DispatchTable kNvidiaMatrixCore = {
    "not measured: provisional (dispatch/provisional.hpp)",
    8,
    kNvidiaMatrixCoreRules,
    static_cast<int>(sizeof(kNvidiaMatrixCoreRules) / sizeof(DispatchRule)),
    KernelChoice::kTensorCore,
    KernelChoice::kTensorCoreDeterministic};

/// @ingroup host_api
/// NVIDIA before sm_80 (no mma.sync m16n8k16): Baseline, the fastest SIMT preset on NVIDIA (H100: SMB's in-block
/// reduction costs more than the native fp16 atomics it saves), then dequantize + cuBLAS.
inline constexpr DispatchRule kNvidiaSimtRules[] = {
    {255, -1, -1, KernelChoice::kBaseline},
    {kAnyM, -1, -1, KernelChoice::kDequantCublas},
};
/// @ingroup host_api
inline constexpr DispatchTable kNvidiaSimt = {"not measured: provisional (dispatch/provisional.hpp)",
                                              7,
                                              kNvidiaSimtRules,
                                              static_cast<int>(sizeof(kNvidiaSimtRules) / sizeof(DispatchRule)),
                                              KernelChoice::kBaseline,
                                              KernelChoice::kDeterministicF32};

/// @ingroup host_api
/// AMD with matrix instructions (gfx908, gfx90a, gfx940-942): Baseline at decode (native packed-fp16 atomics, as on
/// NVIDIA), the MFMA kernel above; no BLAS on Debian, so the library's own kernel for prefill too.
inline constexpr DispatchRule kAmdMatrixCoreRules[] = {
    {2, -1, -1, KernelChoice::kBaseline},
};
/// @ingroup host_api
inline constexpr DispatchTable kAmdMatrixCore = {"not measured: provisional (dispatch/provisional.hpp)",
                                                 9,
                                                 kAmdMatrixCoreRules,
                                                 static_cast<int>(sizeof(kAmdMatrixCoreRules) / sizeof(DispatchRule)),
                                                 KernelChoice::kTensorCore,
                                                 KernelChoice::kTensorCoreDeterministic};

/// @ingroup host_api
/// AMD without matrix instructions (gfx906 = HYGON DCU Z100, MI50/60; other gfx9 and RDNA): the SIMT kernels only.
/// Opt4GPTQ, the paper's choice for the DCU (its compare-and-swap atomics are what SMB saves); with the default
/// overflow-safe options DeterministicF32 (fp32 dot products through v_dot2_f32_f16, fp32 across K blocks) runs.
inline constexpr DispatchRule kAmdSimtRules[] = {
    {kAnyM, -1, -1, KernelChoice::kOpt4Gptq},
};
/// @ingroup host_api
inline constexpr DispatchTable kAmdSimt = {"not measured: provisional (dispatch/provisional.hpp)",
                                           9,
                                           kAmdSimtRules,
                                           static_cast<int>(sizeof(kAmdSimtRules) / sizeof(DispatchRule)),
                                           KernelChoice::kOpt4Gptq,
                                           KernelChoice::kDeterministicF32};

}  // namespace dispatch
OPT4GPTQ_NAMESPACE_END
