#pragma once
// Kernels to measure beside the shipped presets, e.g. tuning candidates: define OPT4GPTQ_BENCH_EXTRA_PRESETS (fp16)
// and OPT4GPTQ_BENCH_EXTRA_BF16_PRESETS (bf16) as lists of `, Named<Type>{"name"}` entries (see bench/NOTES.md for the
// tiles tried so far). Empty unless the build defines OPT4GPTQ_BENCH_TUNING (cmake -DOPT4GPTQ_BENCH_TUNING=ON).
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
  , Named<bench_tuning::Decoder<256, 32, 4, opt4gptq::DefaultDecodeMath, 0, 4, 2>>{"Decode_a2"}, \
  Named<bench_tuning::Decoder<128, 32, 4, opt4gptq::DefaultDecodeMath, 0, 4, 1>>{"Decode_t128"}, \
  Named<bench_tuning::Decoder<256, 16, 4, opt4gptq::DefaultDecodeMath, 0, 4, 1>>{"Decode_l16"}, \
  Named<bench_tuning::DecodeWholeBatch<9>>{"Decode_wb9"}, \
  Named<bench_tuning::Pipelined<4, 2, 4>>{"TCP_c2s4"}, \
  Named<bench_tuning::Pipelined<4, 4, 4>>{"TCP_c4s4"}, \
  Named<bench_tuning::Pipelined<4, 8, 3>>{"TCP_c8s3"}
// bf16 candidates (bf16 A and C: measured with --dtype bf16 or both; their names start with Bf16, as the bf16 rows')
#define OPT4GPTQ_BENCH_EXTRA_BF16_PRESETS \
  , Named<bench_tuning::Bf16DecodeWholeBatch<1, opt4gptq::MathDot2F32>>{"Bf16Decode_dot2"}, \
  Named<bench_tuning::Bf16DecodeWholeBatch<9>>{"Bf16Decode_wb9"}
// clang-format on
#else
#define OPT4GPTQ_BENCH_EXTRA_PRESETS
#define OPT4GPTQ_BENCH_EXTRA_BF16_PRESETS
#endif
