// The host model of mma/layout.hpp (tests/host/test_mma_layout.cpp) against the real instruction: one warp fills its
// registers as the model says (A from staged interleaved vectors, B from the real codec's dequantization of one
// packed word per lane), runs mma.sync m16n8k16 for the two K steps of a 32-row chunk, and must produce the chunk's
// GEMM tile exactly (integer data). NVIDIA sm_80+ only: on AMD the model is the proof (no AMD GPU runs here).

#include "../common/test_support.hpp"

#include <opt4gptq/mma/instructions.hpp>
#include <opt4gptq/mma/layout.hpp>

namespace {

using namespace opt4gptq;
namespace ref = opt4gptq::reference;

#if defined(OPT4GPTQ_BACKEND_CUDA)
using Shape = mma::MmaM16N8K16;

/// qweight [4 words][8 columns], zeros [8], act [16 rows][32 physical k] (fp16 bits), d [32 lanes][4].
__global__ void mma_chunk_kernel(const std::uint32_t* qweight, const int* zeros, const std::uint16_t* act,
                                 float* d_out) {
  __shared__ std::uint32_t staged[Shape::kM][4][4];  // [row][word][pair]: halves (row p, row p + 4) of the word
  const int lane = static_cast<int>(threadIdx.x);
  for (int i = lane; i < Shape::kM * 16; i += 32) {
    const int row = i / 16, word = (i / 4) % 4, pair = i % 4;
    const std::uint32_t lo = act[row * 32 + 8 * word + pair], hi = act[row * 32 + 8 * word + pair + 4];
    staged[row][word][pair] = lo | (hi << 16);
  }
  __syncthreads();
  const int column = Shape::b(lane, 0).col;
  half2 w[4];
  CodecInt4::dequant<MathBuiltin>(qweight[Shape::b_word(lane) * Shape::kN + column],
                                  CodecInt4::zero_terms(static_cast<std::uint32_t>(zeros[column])), w);
  float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int step = 0; step < 2; ++step) {
    std::uint32_t a[4], b[2];
    for (int r = 0; r < 4; ++r) {
      const mma::StagedSource s = mma::a_source<Shape>(lane, step, 2 * r);
      a[r] = staged[s.row][s.word][s.pair];
    }
    b[0] = platform::bit_cast<std::uint32_t>(w[2 * step]);
    b[1] = platform::bit_cast<std::uint32_t>(w[2 * step + 1]);
    mma::mma_m16n8k16(d, a, b);
  }
  for (int e = 0; e < 4; ++e) d_out[lane * 4 + e] = d[e];
}
#endif

}  // namespace

TEST_CASE("mma.sync m16n8k16 on the GPU computes what the host model of its layouts says", "[gpu][mma]") {
  OPT4GPTQ_REQUIRE_GPU_OR_SKIP();
#if !defined(OPT4GPTQ_BACKEND_CUDA)
  WARN("AMD: the MFMA layout is proven by the host model only (no AMD GPU here): device test skipped");
  return;
#else
  int device = 0, major = 0;
  OPT4GPTQ_CHECK_RUNTIME(cudaGetDevice(&device));
  OPT4GPTQ_CHECK_RUNTIME(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  if (major < 8) {
    WARN("mma.sync m16n8k16 needs sm_80 or later: device test skipped");
    return;
  }
  for (unsigned seed = 1; seed <= 8; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> nibble(0, 15), small(-8, 8);
    std::vector<std::uint32_t> qweight(4 * Shape::kN);
    std::vector<int> zeros(Shape::kN), act(Shape::kM * 32);
    for (auto& q : qweight)
      for (int j = 0; j < 8; ++j) q = format::pack(q, j, nibble(rng));
    for (int& z : zeros) z = nibble(rng);
    for (int& a : act) a = small(rng);
    std::vector<std::uint16_t> act_bits(act.size());
    for (std::size_t i = 0; i < act.size(); ++i) act_bits[i] = ref::float_to_half_bits(static_cast<float>(act[i]));
    const test::DeviceArray<std::uint32_t> qweight_d(qweight);
    const test::DeviceArray<int> zeros_d(zeros);
    const test::DeviceArray<std::uint16_t> act_d(act_bits);
    test::DeviceArray<float> d_d(std::vector<float>(32 * 4, std::nanf("")));  // poisoned
    // clang-format takes this file for C++03 and would split the launch's >>>:
    // clang-format off
    mma_chunk_kernel<<<1, 32>>>(qweight_d.get(), zeros_d.get(), act_d.get(), d_d.get());
    // clang-format on
    OPT4GPTQ_CHECK_RUNTIME(platform::last_error());
    OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
    const std::vector<float> d = d_d.download();
    int wrong = 0;
    for (int lane = 0; lane < 32; ++lane)
      for (int e = 0; e < 4; ++e) {
        const mma::Coord p = Shape::c(lane, e);
        long long expected = 0;
        for (int k = 0; k < 32; ++k)
          expected += static_cast<long long>(act[p.row * 32 + k]) *
                      (format::unpack(qweight[(k / 8) * Shape::kN + p.col], k % 8) - zeros[p.col]);
        if (d[lane * 4 + e] != static_cast<float>(expected)) {
          ++wrong;
          UNSCOPED_INFO("seed " << seed << " lane " << lane << " element " << e << ": " << d[lane * 4 + e]
                                << " != " << expected);
        }
      }
    CHECK(wrong == 0);
  }
#endif
}
