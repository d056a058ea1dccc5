// Policy contracts (detection traits) and launch geometry, on the host.

#include <opt4gptq/opt4gptq.hpp>

#include "../../examples/custom_policies.hpp"

#include <catch2/catch.hpp>

using namespace opt4gptq;

namespace broken {  // named: unused members of an unnamed namespace would warn
struct NotALoad {
  static constexpr int kVectorHalves = 2;
  __device__ static void Load(const half*, half (&)[2]) {}  // wrong name
};
struct OddVector {
  static constexpr int kVectorHalves = 3;
  __device__ static void load(const half*, half (&)[3]) {}
};
struct NoAdd {
  __device__ static half2 fma2(half2 a, half2, half2) { return a; }
};
struct WrongFmaType {
  __device__ static float fma2(half2, half2, half2) { return 0.0f; }
  __device__ static half2 add2(half2 a, half2) { return a; }
};
struct NoReduce {
  template <class Tile, int kRows>
  struct SharedStorage {};
  static constexpr bool accumulates_into_output(int) { return true; }
};
}  // namespace broken
using namespace broken;

TEST_CASE("shipped and user policies satisfy their contracts", "[host][policy]") {
  STATIC_REQUIRE(is_load_policy_v<LoadScalar>);
  STATIC_REQUIRE(is_load_policy_v<LoadHalf2>);
  STATIC_REQUIRE(is_load_policy_v<LoadVec8>);
  STATIC_REQUIRE(is_load_policy_v<user::LoadReadOnly4>);
  STATIC_REQUIRE(is_math_policy_v<MathBuiltin>);
  STATIC_REQUIRE(is_math_policy_v<MathInlineAsm>);
  STATIC_REQUIRE(is_math_policy_v<MathDot2F32>);
  STATIC_REQUIRE(is_math_policy_v<user::MathMulAdd>);
  STATIC_REQUIRE(is_reduce_policy_v<ReduceGlobalAtomic>);
  STATIC_REQUIRE(is_reduce_policy_v<ReduceSharedBuffered>);
  STATIC_REQUIRE(is_reduce_policy_v<user::ReduceSharedAtomics>);
  STATIC_REQUIRE(traits::has_dot8<MathDot2F32>::value);
  STATIC_REQUIRE(traits::has_dot8<user::MathMulAdd>::value);
  STATIC_REQUIRE_FALSE(traits::has_dot8<MathBuiltin>::value);
  STATIC_REQUIRE(user::CustomGemm::kPoliciesValid);
  // bf16 kernels: the shipped ReducePolicies round to bf16; a user policy written for fp16 outputs
  // (const ThreadOutput&) does not say so, and a bf16 kernel refuses it (check_bf16_reduce_policy).
  STATIC_REQUIRE(traits::writes_bf16<ReduceGlobalAtomic>::value);
  STATIC_REQUIRE(traits::writes_bf16<ReduceSharedBuffered>::value);
  STATIC_REQUIRE(traits::writes_bf16<ReduceSharedSerial>::value);
  STATIC_REQUIRE_FALSE(traits::writes_bf16<user::ReduceSharedAtomics>::value);
  STATIC_REQUIRE(presets::Bf16Deterministic::kPoliciesValid);
  STATIC_REQUIRE(presets::Bf16Decode::kPoliciesValid);
}

TEST_CASE("broken policies are recognised", "[host][policy]") {
  STATIC_REQUIRE_FALSE(is_load_policy_v<NotALoad>);
  STATIC_REQUIRE_FALSE(is_load_policy_v<OddVector>);
  STATIC_REQUIRE_FALSE(is_load_policy_v<MathBuiltin>);
  STATIC_REQUIRE_FALSE(is_math_policy_v<NoAdd>);
  STATIC_REQUIRE_FALSE(is_math_policy_v<WrongFmaType>);
  STATIC_REQUIRE_FALSE(is_reduce_policy_v<NoReduce>);
  STATIC_REQUIRE_FALSE(is_reduce_policy_v<LoadScalar>);
}

TEST_CASE("presets are the paper's ablation", "[host][policy]") {
  STATIC_REQUIRE(std::is_same_v<presets::Baseline::LoadPolicy, LoadScalar>);
  STATIC_REQUIRE(std::is_same_v<presets::Baseline::ReducePolicy, ReduceGlobalAtomic>);
  STATIC_REQUIRE(std::is_same_v<presets::Baseline::MathPolicy, MathBuiltin>);
  STATIC_REQUIRE(std::is_same_v<presets::Baseline::TileShape, ExllamaTile>);
  STATIC_REQUIRE(std::is_same_v<presets::Smb::ReducePolicy, ReduceSharedBuffered>);
  STATIC_REQUIRE(std::is_same_v<presets::Vml::LoadPolicy, LoadHalf2>);
  STATIC_REQUIRE(std::is_same_v<presets::Ila::MathPolicy, MathInlineAsm>);
  STATIC_REQUIRE(std::is_same_v<presets::Opt4Gptq, DequantGemm<LoadHalf2, ReduceSharedBuffered, MathInlineAsm>>);
  STATIC_REQUIRE(std::is_same_v<DequantGemm<LoadScalar, ReduceGlobalAtomic, MathBuiltin>, presets::Baseline>);
}

TEST_CASE("tile layout", "[host][tile]") {
  STATIC_REQUIRE(ExllamaTile::kBlockCols == 512);
  STATIC_REQUIRE(ExllamaTile::kSplitK == 1);
  STATIC_REQUIRE(ExllamaTile::kStageRows == 128);
  STATIC_REQUIRE(SplitKTile::kBlockCols == 128);
  STATIC_REQUIRE(SplitKTile::kSplitK == 8);
  STATIC_REQUIRE(SplitKTile::kStageRows == 1024);
}

TEST_CASE("K blocks: fixed for the exllama tile, just enough to fill the GPU for the split-K tile", "[host][tile]") {
  // The exllama tile: one stage of 128 rows per block, whatever the GPU.
  CHECK(SplitKScheduler<ExllamaTile>::rows_of_k_per_block(4096, 8, 1000) == 128);
  // Split-K tile, 4096 x 4096 at M = 1: 32 column tiles; a GPU holding 396 blocks at once wants ~13 K blocks, so
  // 4 stages of 1024 rows become 4 blocks of 1024 rows.
  CHECK(SplitKScheduler<SplitKTile>::rows_of_k_per_block(4096, 32, 396) == 1024);
  // Exactly as many column tiles as the GPU holds: one K block (the SMB reduction then stores, no zero-fill).
  CHECK(SplitKScheduler<SplitKTile>::rows_of_k_per_block(4096, 396, 396) == 4096);
  // A few more than it holds: one K block would run two waves of 4 stages (the second nearly empty); 4 K blocks of
  // one stage run in 5 waves of one stage.
  CHECK(SplitKScheduler<SplitKTile>::rows_of_k_per_block(4096, 400, 396) == 1024);
  // 8192 x 28672 at M = 1 (224 column tiles): 8 K blocks of one stage (4.5 waves) beat 2 blocks of 4 (1.13 waves).
  CHECK(SplitKScheduler<SplitKTile>::rows_of_k_per_block(8192, 224, 396) == 1024);
  CHECK(SplitKScheduler<SplitKTile>::rows_of_k_per_block(11008, 32, 64) == 6144);  // 11 stages over 2 blocks: 6 each
  CHECK(SplitKScheduler<SplitKTile>::rows_of_k_per_block(1000, 1, 10000) == 1024);
}

TEST_CASE("SharedBuffered makes fewer global atomics per output than the baseline", "[host][tile]") {
  // Per output element: the baseline adds once per block along K (K / 128 of them, one thread each); SharedBuffered
  // adds once per block along K after its in-block reduction over 8 sub-slices, and not at all with one K block.
  const int k = 4096;
  const int baseline_blocks = detail::ceil_div(k, SplitKScheduler<ExllamaTile>::rows_of_k_per_block(k, 8, 396));
  const int smb_blocks = detail::ceil_div(k, SplitKScheduler<SplitKTile>::rows_of_k_per_block(k, 32, 396));
  CHECK(baseline_blocks == 32);
  CHECK(smb_blocks == 4);
  CHECK_FALSE(ReduceSharedBuffered::accumulates_into_output(1));
  CHECK(ReduceSharedBuffered::accumulates_into_output(smb_blocks));
  CHECK(ReduceGlobalAtomic::accumulates_into_output(1));
}
