#pragma once
/// @file
/// The shipped combinations: the paper's ablation (Baseline, one optimization at a time, all three), as types to pass
/// to `launch<>`. Any other combination, or a policy of your own, is `DequantGemm<YourLoad, YourReduce, YourMath>`.
///
/// | preset   | LoadPolicy | ReducePolicy         | MathPolicy    | tile        | accumulation                         |
/// |----------|------------|----------------------|---------------|-------------|--------------------------------------|
/// | Baseline | LoadScalar | ReduceGlobalAtomic   | MathBuiltin   | ExllamaTile | fp16 8-term, fp32 per thread, fp16 C |
/// | Smb      | LoadScalar | ReduceSharedBuffered | MathBuiltin   | SplitKTile  | fp16 8-term, fp32 in block           |
/// | Vml      | LoadHalf2  | ReduceGlobalAtomic   | MathBuiltin   | ExllamaTile | as Baseline                          |
/// | Ila      | LoadScalar | ReduceGlobalAtomic   | MathInlineAsm | ExllamaTile | as Baseline                          |
/// | Opt4Gptq | LoadHalf2  | ReduceSharedBuffered | MathInlineAsm | SplitKTile  | as Smb                               |
/// | Deterministic | LoadVec8 | ReduceSharedSerial | MathInlineAsm | SplitKTile | as Smb, and fp32 across K blocks     |
/// | DeterministicF32 | LoadVec8 | ReduceSharedSerial | MathDot2F32 | SplitKTile | fp32 throughout                     |
/// | TensorCore | LoadVec8 | ReduceSharedBuffered | (matrix cores) | DefaultMmaTile | fp32 over the block's K, fp16 C |
/// | TensorCoreDeterministic | LoadVec8 | ReduceSharedSerial | (matrix cores) | DefaultMmaTile | fp32 over all K |
/// "fp16 8-term": each 8-row dot product is an fp16 chain (see policy/math.hpp); "fp16 C": partial sums of different
/// blocks or threads meet in C through fp16 atomics; "fp32 in block": a block's K range is summed in fp32 and written
/// once (stored when one block spans K, else one fp16 atomic per output per block). Deterministic is not in the paper:
/// it replaces the atomics across K blocks by a serial fix-up in a workspace (one launch per call, no zero-fill,
/// bitwise reproducible); it needs `launch<Gemm>(problem, workspace, bytes, stream)`.
/// DeterministicF32 (not in the paper) is Deterministic with fp32 dot products: no fp16 partial sum anywhere, so
/// overflow-safe (finite and accurate whenever the exact result fits in fp16), bitwise reproducible, and batch
/// invariant with a fixed K split; it runs on every target, and is the dispatcher's kernel for the options the others
/// do not meet (host/dispatcher.hpp). On gfx9 its dot products are v_dot2_f32_f16 (as many instructions as the fp16
/// chain); on NVIDIA they cost more instructions than the fp16 chain.
/// TensorCore and TensorCoreDeterministic (not in the paper) run the products on matrix cores (kernel/mainloop_mma.hpp:
/// mma.sync on NVIDIA sm_80+, MFMA on AMD gfx908/gfx90a/gfx940): for serving batches (M = 8 .. 64 and beyond), where
/// the SIMT presets re-dequantize every weight for every 8 rows of M. Built for gfx906 (DCU Z100) they are a
/// compile-time error: it has no matrix instructions, the SIMT presets are its kernels.
/// @ingroup presets

#include "kernel/decode_gemm.hpp"
#include "kernel/dequant_gemm.hpp"
#include "kernel/mma_gemm.hpp"
#include "policy/load.hpp"
#include "policy/math.hpp"
#include "policy/reduce.hpp"
#include "tile.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace presets {

/// The structure of vLLM's exllama-derived kernel (the paper's baseline).
using Baseline = DequantGemm<LoadScalar, ReduceGlobalAtomic, MathBuiltin, ExllamaTile>;
/// SMB-Opt alone: the shared-memory hierarchical reduction (with the tile it needs: 8 K sub-slices per block).
using Smb = DequantGemm<LoadScalar, ReduceSharedBuffered, MathBuiltin, SplitKTile>;
/// VML-Opt alone: half2 activation loads.
using Vml = DequantGemm<LoadHalf2, ReduceGlobalAtomic, MathBuiltin, ExllamaTile>;
/// ILA-Opt alone: inline-assembly packed fp16.
using Ila = DequantGemm<LoadScalar, ReduceGlobalAtomic, MathInlineAsm, ExllamaTile>;
/// All three: the paper's Opt4GPTQ.
using Opt4Gptq = DequantGemm<LoadHalf2, ReduceSharedBuffered, MathInlineAsm, SplitKTile>;
/// Beyond the paper: 16-byte activation loads, the in-block reduction, and a deterministic split-K fix-up.
using Deterministic = DequantGemm<LoadVec8, ReduceSharedSerial, MathInlineAsm, SplitKTile>;
/// Deterministic with fp32 dot products (MathDot2F32): every sum in fp32 until the one rounding of C.
using DeterministicF32 = DequantGemm<LoadVec8, ReduceSharedSerial, MathDot2F32, SplitKTile>;
/// Matrix cores, 16-byte activation loads; K blocks meet in C through fp16 atomics (C zero-filled first).
using TensorCore = MmaGemm<LoadVec8, ReduceSharedBuffered>;
/// Matrix cores with the deterministic split-K fix-up: one launch per call, fp32 across K blocks, bitwise
/// reproducible; needs the workspace form of launch().
using TensorCoreDeterministic = MmaGemm<LoadVec8, ReduceSharedSerial>;
/// The SIMT decode kernel (M = 1..8; the decode kernel of GPUs without matrix instructions, gfx906 first): the next
/// stage's weights in flight while one is used, activations staged once per window of many stages, the platform's
/// overflow-safe dot products (DefaultDecodeMath: `v_dot2_f32_f16` on gfx9; on NVIDIA the fp16 chain on range-scaled
/// activations), and the deterministic split-K fix-up inside the launch (needs a workspace).
using Decode = DecodeGemm<LoadVec8, ReduceSharedSerial, DefaultDecodeMath>;
/// Matrix cores fed by a multi-stage ring of asynchronous copies (cp.async): K blocks meet in C through fp16 atomics.
using TensorCorePipelined = MmaPipelinedGemm<LoadVec8, ReduceSharedBuffered>;
/// The pipelined matrix-core kernel with the deterministic split-K fix-up (one launch, fp32 across K blocks).
using TensorCorePipelinedDeterministic = MmaPipelinedGemm<LoadVec8, ReduceSharedSerial, DeterministicMmaPipelineTile>;

// bf16 activations and outputs (GemmProblem::dtype = ElementType::kBf16; scales as stored, fp16). In the SIMT kernels the
// dot products are fp32 (bf16 widens to fp32 exactly), so the MathPolicy named is MathDot2F32's arithmetic whatever is
// passed; the decode kernel converts its staged activations to range-scaled fp16 and uses its MathPolicy as Decode.
/// SIMT, 16-byte loads, the in-block reduction; K blocks meet in C through bf16 atomics (C zero-filled first; each
/// addition rounds to bf16's 8 bits: for split-K layers prefer Bf16Deterministic).
using Bf16Simt = DequantGemmOf<ElementBf16, LoadVec8, ReduceSharedBuffered, MathDot2F32>;
/// SIMT with the deterministic split-K fix-up: fp32 from the products to the one rounding of C, bitwise
/// reproducible; needs the workspace form of launch(). Runs on every target (gfx906 included: integer and fp32
/// arithmetic only).
using Bf16Deterministic = DequantGemmOf<ElementBf16, LoadVec8, ReduceSharedSerial, MathDot2F32>;
/// The SIMT decode kernel (M = 1..8) for bf16: Decode's arithmetic on activations converted to range-scaled fp16 once
/// per staged window (exact down to 2^-26 of each row's largest |a|: kernel/range_scaling.hpp), outputs rounded to bf16;
/// needs a workspace.
using Bf16Decode = DecodeGemmOf<ElementBf16, LoadVec8, ReduceSharedSerial, DefaultDecodeMath>;
/// Matrix cores in bf16 (NVIDIA sm_80+ mma.sync .bf16, AMD gfx90a/gfx940 v_mfma_f32_16x16x16bf16_1k): each
/// dequantized weight (q - z)·scale is rounded once to bf16 (the instruction's input type), products and sums fp32.
/// K blocks meet in C through bf16 atomics (C zero-filled first).
using Bf16TensorCore = MmaGemmOf<ElementBf16, LoadVec8, ReduceSharedBuffered>;
/// bf16 matrix cores with the deterministic split-K fix-up (fp32 across K blocks; needs a workspace).
using Bf16TensorCoreDeterministic = MmaGemmOf<ElementBf16, LoadVec8, ReduceSharedSerial>;
/// The pipelined matrix-core kernel in bf16 (cp.async ring on NVIDIA); K blocks through bf16 atomics.
using Bf16TensorCorePipelined = MmaPipelinedGemmOf<ElementBf16, LoadVec8, ReduceSharedBuffered>;
/// The pipelined matrix-core kernel in bf16 with the deterministic split-K fix-up.
using Bf16TensorCorePipelinedDeterministic =
    MmaPipelinedGemmOf<ElementBf16, LoadVec8, ReduceSharedSerial, DeterministicMmaPipelineTile>;

}  // namespace presets
OPT4GPTQ_NAMESPACE_END
