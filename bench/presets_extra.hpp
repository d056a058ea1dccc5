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
template <int Threads, int LanesN, int Unroll, class Math = MathDot2F32>
using Decoder = DecodeGemm<LoadVec8, ReduceSharedSerial, Math, DecodeTileShape<Threads, LanesN, Unroll>>;
}  // namespace bench_tuning
// clang-format off
#define OPT4GPTQ_BENCH_EXTRA_PRESETS \
  , Named<bench_tuning::Pipelined<4, 4, 3>>{"TCP_w4c4s3"}, \
  Named<bench_tuning::Pipelined<4, 4, 3, 8>>{"TCP_w4c4s3m8"}, \
  Named<bench_tuning::Pipelined<4, 2, 4, 8>>{"TCP_w4c2s4m8"}, \
  Named<bench_tuning::Pipelined<4, 4, 4, 6>>{"TCP_w4c4s4m6"}, \
  Named<bench_tuning::PipelinedSerial<4, 4, 3, 8>>{"TCPD_w4c4s3m8"}, \
  Named<bench_tuning::Decoder<256, 32, 4, opt4gptq::MathInlineAsm>>{"Decode_fp16chain"}
// clang-format on
#else
#define OPT4GPTQ_BENCH_EXTRA_PRESETS
#endif
