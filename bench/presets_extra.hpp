#pragma once
// Kernels to measure beside the shipped presets, e.g. tuning candidates: define OPT4GPTQ_BENCH_EXTRA_PRESETS as a
// list of `, Named<Type>{"name"}` entries (see bench/NOTES.md for the tiles tried so far). Empty unless the build
// defines OPT4GPTQ_BENCH_TUNING (cmake -DOPT4GPTQ_BENCH_TUNING=ON).
#include <opt4gptq/opt4gptq.hpp>

#if defined(OPT4GPTQ_BENCH_TUNING) && defined(OPT4GPTQ_BACKEND_CUDA)
namespace bench_tuning {
using namespace opt4gptq;
template <int Warps, int Chunks, int Stages, int MinBlocks = 1>
using Pipelined = MmaPipelinedGemm<LoadVec8, ReduceSharedBuffered,
                                   MmaPipelineTile<mma::NativeShape, Warps, Chunks, Stages, MinBlocks>>;
template <int Warps, int Chunks, int Stages, int MinBlocks = 1>
using PipelinedSerial =
    MmaPipelinedGemm<LoadVec8, ReduceSharedSerial, MmaPipelineTile<mma::NativeShape, Warps, Chunks, Stages, MinBlocks>>;
template <int Threads, int LanesN, int Unroll, class Math = DefaultDecodeMath, int MinBlocks = 0, int Staging = 4>
using Decoder =
    DecodeGemm<LoadVec8, ReduceSharedSerial, Math, DecodeTileShape<Threads, LanesN, Unroll, Staging, MinBlocks>>;
}  // namespace bench_tuning
// clang-format off
#define OPT4GPTQ_BENCH_EXTRA_PRESETS \
  , Named<bench_tuning::Decoder<128, 32, 4>>{"Decode_t128"}, \
  Named<bench_tuning::Decoder<256, 32, 2>>{"Decode_u2"}, \
  Named<bench_tuning::Decoder<128, 32, 8>>{"Decode_t128u8"}, \
  Named<bench_tuning::Decoder<256, 32, 4, opt4gptq::MathDot2F32>>{"Decode_f32"}
// clang-format on
#else
#define OPT4GPTQ_BENCH_EXTRA_PRESETS
#endif
