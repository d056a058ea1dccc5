// A kernel made of user-written policies (custom_policies.hpp: one per family, each a plain struct), run on a
// random GPTQ layer and checked against the fp64 reference. Exit status: 0 match, 1 mismatch, 77 no GPU.

#include "custom_policies.hpp"

#include <opt4gptq/reference/gptq_reference.hpp>

#include <cstdio>
#include <random>
#include <vector>

namespace ref = opt4gptq::reference;
namespace platform = opt4gptq::platform;

template <class T>
static T* to_device(const std::vector<T>& host) {
  void* p = nullptr;
  if (platform::device_malloc(&p, host.size() * sizeof(T)) != platform::kNativeSuccess ||
      platform::copy_to_device(p, host.data(), host.size() * sizeof(T)) != platform::kNativeSuccess)
    return nullptr;
  return static_cast<T*>(p);
}

int main() {
  int devices = 0;
  if (platform::device_count(&devices) != platform::kNativeSuccess || devices == 0) {
    std::printf("No %s GPU is visible on this machine: custom_policies was built but cannot run here.\n",
                platform::kBackendName);
    return 77;
  }
  const int m = 5, k = 2048, n = 1024;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.02f), unit(0.0f, 1.0f);
  std::vector<float> w(static_cast<std::size_t>(k) * n);
  for (float& x : w) x = normal(rng);
  ref::QuantizeOptions options;
  options.group_size = 64;
  options.symmetric = false;
  options.format = opt4gptq::ZeroPointFormat::kGptqV2;
  const ref::QuantizedLayer layer = ref::quantize_rtn(w, k, n, options);
  std::vector<std::uint16_t> a(static_cast<std::size_t>(m) * k);
  for (auto& x : a) x = ref::float_to_half_bits(unit(rng));

  opt4gptq::QuantizedWeights weights;  // the layer, described once
  weights.k = k;
  weights.n = n;
  weights.qweight = to_device(layer.qweight);
  weights.qzeros = to_device(layer.qzeros);
  weights.scales = reinterpret_cast<const opt4gptq::half*>(to_device(layer.scales));
  weights.group_size = layer.group_size;
  weights.zero_format = layer.format;
  opt4gptq::GemmProblem p;  // one call on it
  p.m = m;
  p.a = reinterpret_cast<const opt4gptq::half*>(to_device(a));
  p.c =
      reinterpret_cast<opt4gptq::half*>(to_device(std::vector<std::uint16_t>(static_cast<std::size_t>(m) * n, 0x7E00)));
  p.weights = &weights;
  if (!p.a || !weights.qweight || !weights.qzeros || !weights.scales || !p.c) {
    std::fprintf(stderr, "device allocation failed\n");
    return 1;
  }
  const opt4gptq::Status s = opt4gptq::launch<user::CustomGemm>(p, nullptr);
  if (!s.ok()) {
    std::fprintf(stderr, "launch failed: %s\n", s.message);
    return 1;
  }
  std::vector<std::uint16_t> c(static_cast<std::size_t>(m) * n);
  if (platform::device_synchronize() != platform::kNativeSuccess ||
      platform::copy_to_host(c.data(), p.c, c.size() * 2) != platform::kNativeSuccess) {
    std::fprintf(stderr, "kernel failed\n");
    return 1;
  }
  const ref::ErrorReport e = ref::compare(c.data(), m, n, 0, ref::gemm(m, n, k, a.data(), 0, ref::dequantize(layer)));
  const bool ok = e.non_finite == 0 && e.relative < 5e-3;
  std::printf("user policies (LoadReadOnly4, ReduceSharedAtomics, MathMulAdd): relative error %.2e: %s\n", e.relative,
              ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
