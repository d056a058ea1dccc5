#pragma once
// Kernels to measure beside the shipped presets, e.g. tuning candidates: define OPT4GPTQ_BENCH_EXTRA_PRESETS (fp16)
// and OPT4GPTQ_BENCH_EXTRA_BF16_PRESETS (bf16) as lists of `, Named<Type>{"name"}` entries (see bench/NOTES.md for the
// tiles tried so far; the list below holds the pipelined tile the presets used before 2026-12-03, 4 chunks in a ring
// of 3, beside the new default). Empty unless the build defines OPT4GPTQ_BENCH_TUNING (cmake -DOPT4GPTQ_BENCH_TUNING=ON).
#include <opt4gptq/opt4gptq.hpp>

#if defined(OPT4GPTQ_BENCH_TUNING) && defined(OPT4GPTQ_BACKEND_CUDA)
namespace bench_tuning {
using namespace opt4gptq;
template <int Warps, int Chunks, int Stages, int MinBlocks = 1>
using Pipelined = MmaPipelinedGemm<LoadVec8, ReduceSharedBuffered,
                                   MmaPipelineTile<mma::NativeShape, Warps, Chunks, Stages, MinBlocks>>;
template <int Warps, int Chunks, int Stages, int MinBlocks = 1>
using Bf16Pipelined = MmaPipelinedGemmOf<ElementBf16, LoadVec8, ReduceSharedBuffered,
                                         MmaPipelineTile<mma::NativeShape, Warps, Chunks, Stages, MinBlocks>>;
template <int Warps, int Chunks, int Stages, int MinBlocks = 1>
using PipelinedSerial =
    MmaPipelinedGemm<LoadVec8, ReduceSharedSerial, MmaPipelineTile<mma::NativeShape, Warps, Chunks, Stages, MinBlocks>>;
template <int Threads, int LanesN, int Unroll, class Math = DefaultDecodeMath, int MinBlocks = 0, int Staging = 4,
          int Ahead = 1>
using Decoder =
    DecodeGemm<LoadVec8, ReduceSharedSerial, Math, DecodeTileShape<Threads, LanesN, Unroll, Staging, MinBlocks, Ahead>>;
/// The default decode tile with the whole-batch word loop from `MinRows` rows of M per block (9: never).
template <int MinRows>
struct WholeBatchTile : DefaultDecodeTile {
  static constexpr int kWholeBatchMinRows = MinRows;
};
template <int MinRows, class Math = DefaultDecodeMath>
using Bf16DecodeWholeBatch = DecodeGemmOf<ElementBf16, LoadVec8, ReduceSharedSerial, Math, WholeBatchTile<MinRows>>;
template <int MinRows>
using DecodeWholeBatch = DecodeGemm<LoadVec8, ReduceSharedSerial, DefaultDecodeMath, WholeBatchTile<MinRows>>;
}  // namespace bench_tuning
// clang-format off
#define OPT4GPTQ_BENCH_EXTRA_PRESETS \
  , Named<bench_tuning::Pipelined<4, 4, 3>>{"TCP_c4s3"}, \
  Named<bench_tuning::PipelinedSerial<4, 4, 3>>{"TCPD_c4s3"}
// bf16 candidates (bf16 A and C: measured with --dtype bf16 or both; their names start with Bf16, as the bf16 rows')
#define OPT4GPTQ_BENCH_EXTRA_BF16_PRESETS \
  , Named<bench_tuning::Bf16Pipelined<4, 4, 3>>{"Bf16TCP_c4s3"}
// clang-format on
#else
#define OPT4GPTQ_BENCH_EXTRA_PRESETS
#define OPT4GPTQ_BENCH_EXTRA_BF16_PRESETS
#endif
