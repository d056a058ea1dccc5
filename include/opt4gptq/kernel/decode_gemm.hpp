#pragma once
/// @file
/// DecodeGemm: the SIMT decode kernel, named by its policies. It is the GemmKernel of the decode mainloop (which hosts
/// the LoadPolicy and the MathPolicy), a ReducePolicy of the SIMT contract, and the split-K scheduler of its tile:
/// @code
/// DecodeGemm<Load, Reduce, Math, Tile, Codec>
///   == GemmKernel<MainloopDecode<Load, Math, Tile, Codec>, Reduce, SplitKScheduler<Tile>>
/// @endcode

#include "../codec/int4.hpp"
#include "../policy/math.hpp"
#include "gemm_kernel.hpp"
#include "mainloop_decode.hpp"
#include "scheduler.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup kernel
/// The tile the presets use. AMD (wave64): 4 waves, each one K sub-slice of 64 column lanes (256 columns), so that a
/// wave reads one staged activation vector at a time; batches of 2 packed words (16-byte loads) per thread, two in
/// flight, and one staging load at a time, to stay at 3 waves per SIMD on gfx906 (84 VGPRs is the line). NVIDIA: 8
/// warps, each one K sub-slice of 32 column lanes (128 columns); batches of 4 words, two in flight.
#if defined(OPT4GPTQ_BACKEND_HIP)
using DefaultDecodeTile = DecodeTileShape<256, 64, 2, 1>;
#else
using DefaultDecodeTile = DecodeTileShape<256, 32, 4>;
#endif

/// @ingroup kernel
/// The dot products the presets use, both overflow-safe. gfx9: `v_dot2_f32_f16` (MathDot2F32), fp32 products at the
/// fp16 chain's instruction count. NVIDIA has no fp16 dot into fp32: widening costs conversions (measured on an H200:
/// 46% of the read reference at M = 1 against 56% for the fp16 chain), so it runs the fp16 chain (MathBuiltin) on
/// range-scaled activations (range_scaling.hpp), whose partial sums cannot overflow.
#if defined(OPT4GPTQ_BACKEND_HIP)
using DefaultDecodeMath = MathDot2F32;
#else
using DefaultDecodeMath = MathBuiltin;
#endif

/// @ingroup kernel
template <class Load, class Reduce, class Math, class Tile = DefaultDecodeTile, class Codec = CodecInt4>
using DecodeGemm = GemmKernel<MainloopDecode<Load, Math, Tile, Codec>, Reduce, SplitKScheduler<Tile>>;

/// @ingroup kernel
/// DecodeGemm for A and C of element type `Element` (ElementFp16: DecodeGemm itself; ElementBf16: activations staged as
/// bf16 and converted to range-scaled fp16 per window, MainloopDecodeOf).
template <class Element, class Load, class Reduce, class Math, class Tile = DefaultDecodeTile, class Codec = CodecInt4>
using DecodeGemmOf = GemmKernel<typename detail::decode_mainloop_of<Element, Load, Math, Tile, Codec>::type, Reduce,
                                SplitKScheduler<Tile>>;

OPT4GPTQ_NAMESPACE_END
