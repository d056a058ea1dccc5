#pragma once
// Shared helpers of the GPU tests: device buffers, random GPTQ layers, and one call of a kernel checked against the
// fp64 reference with the output poisoned first and the memory around it watched.

#include <opt4gptq/opt4gptq.hpp>
#include <opt4gptq/reference/gptq_reference.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

namespace test {

namespace ref = opt4gptq::reference;
namespace platform = opt4gptq::platform;

inline bool gpu_available() {
  int count = 0;
  const bool ok = platform::device_count(&count) == platform::kNativeSuccess && count > 0;
  (void)platform::last_error();  // a failed query leaves an error behind; do not let it leak into the next launch
  return ok;
}

/// Device tests call this first: without a GPU the test is reported as skipped (CTest SKIP_REGULAR_EXPRESSION).
#define OPT4GPTQ_REQUIRE_GPU_OR_SKIP()             \
  do {                                             \
    if (!::test::gpu_available()) {                \
      WARN("no GPU visible: device test skipped"); \
      return;                                      \
    }                                              \
  } while (0)

/// Whether the current GPU has the matrix instructions of the MMA mainloop (kernel/mainloop_mma.hpp): NVIDIA sm_80
/// and later, AMD gfx908, gfx90a and gfx94x.
inline bool gpu_has_matrix_cores() {
#if defined(OPT4GPTQ_BACKEND_CUDA)
  int device = 0, major = 0;
  const bool ok = cudaGetDevice(&device) == cudaSuccess &&
                  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess;
  return ok && major >= 8;
#else
  int device = 0;
  hipDeviceProp_t prop{};
  if (hipGetDevice(&device) != hipSuccess || hipGetDeviceProperties(&prop, device) != hipSuccess) return false;
  const std::string arch = prop.gcnArchName;
  return arch.rfind("gfx908", 0) == 0 || arch.rfind("gfx90a", 0) == 0 || arch.rfind("gfx94", 0) == 0;
#endif
}

/// Matrix-core kernels call this after OPT4GPTQ_REQUIRE_GPU_OR_SKIP(): on a GPU without matrix instructions (their
/// code is not even built for gfx906) the test is reported as skipped.
#define OPT4GPTQ_REQUIRE_MATRIX_CORES_OR_SKIP()                                                                   \
  do {                                                                                                            \
    if (!::test::gpu_has_matrix_cores()) {                                                                        \
      WARN("this GPU has no matrix instructions (NVIDIA sm_80+, AMD gfx908/gfx90a/gfx94x): device test skipped"); \
      return;                                                                                                     \
    }                                                                                                             \
  } while (0)

#define OPT4GPTQ_CHECK_RUNTIME(expr) REQUIRE((expr) == ::opt4gptq::platform::kNativeSuccess)

template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(std::size_t count) : count_(count) {
    void* p = nullptr;
    OPT4GPTQ_CHECK_RUNTIME(platform::device_malloc(&p, std::max<std::size_t>(count, 1) * sizeof(T)));
    ptr_ = static_cast<T*>(p);
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : ptr_(o.ptr_), count_(o.count_) { o.ptr_ = nullptr; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }
  ~DeviceArray() {
    if (ptr_) (void)platform::device_free(ptr_);
  }
  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() <= count_);
    OPT4GPTQ_CHECK_RUNTIME(platform::copy_to_device(ptr_, host.data(), host.size() * sizeof(T)));
  }
  std::vector<T> download() const {
    std::vector<T> host(count_);
    OPT4GPTQ_CHECK_RUNTIME(platform::copy_to_host(host.data(), ptr_, count_ * sizeof(T)));
    return host;
  }
  T* get() const { return ptr_; }
  std::size_t size() const { return count_; }

 private:
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
};

struct LayerSpec {
  int k = 256;
  int n = 256;
  int group_size = 128;
  bool symmetric = true;
  opt4gptq::ZeroPointFormat format = opt4gptq::ZeroPointFormat::kGptqV1;
  bool act_order = false;
  std::uint32_t seed = 1;
  /// Asymmetric layers: the fraction of (group, column) blocks whose weights are made nonnegative, so that their zero
  /// point is 0 (the case v1 writes with a borrow into the next nibble: format::stored_zero_word).
  double zero_point_zero_fraction = 0.05;

  // Named setters, so that a test reads as its specification:
  //   test::layer(384, 264).group(128).asym().v2().random_seed(1)
  LayerSpec& group(int rows) {
    group_size = rows;
    return *this;
  }
  LayerSpec& sym() {
    symmetric = true;
    return *this;
  }
  LayerSpec& asym() {
    symmetric = false;
    return *this;
  }
  LayerSpec& zero_format(opt4gptq::ZeroPointFormat f) {
    format = f;
    return *this;
  }
  LayerSpec& v1() { return zero_format(opt4gptq::ZeroPointFormat::kGptqV1); }
  LayerSpec& v2() { return zero_format(opt4gptq::ZeroPointFormat::kGptqV2); }
  /// Rows quantized in a random order (desc_act): the layer needs the act-order prepare step.
  LayerSpec& desc_act(bool on = true) {
    act_order = on;
    return *this;
  }
  LayerSpec& random_seed(std::uint32_t s) {
    seed = s;
    return *this;
  }
};

/// A layer of k input and n output features; the rest as LayerSpec's defaults until set by name.
inline LayerSpec layer(int k, int n) {
  LayerSpec s;
  s.k = k;
  s.n = n;
  return s;
}

inline std::string describe(const LayerSpec& s) {
  return "k=" + std::to_string(s.k) + " n=" + std::to_string(s.n) + " group_size=" + std::to_string(s.group_size) +
         (s.symmetric ? " sym" : " asym") + (s.format == opt4gptq::ZeroPointFormat::kGptqV1 ? " v1" : " v2") +
         (s.act_order ? " act-order" : "");
}

/// A random layer (normal weights, a random act-order permutation when asked), quantized to exact GPTQ tensors.
inline ref::QuantizedLayer make_layer(const LayerSpec& s) {
  std::mt19937 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(static_cast<std::size_t>(s.k) * s.n);
  for (float& x : w) x = normal(rng);
  ref::QuantizeOptions o;
  o.group_size = s.group_size;
  o.symmetric = s.symmetric;
  o.format = s.format;
  o.order.resize(s.k);
  std::iota(o.order.begin(), o.order.end(), 0);
  if (s.act_order) std::shuffle(o.order.begin(), o.order.end(), rng);
  if (!s.symmetric && s.zero_point_zero_fraction > 0) {
    // Groups are runs of group_size positions of the quantization order.
    const int groups = opt4gptq::format::num_groups(s.k, s.group_size);
    std::bernoulli_distribution pick(s.zero_point_zero_fraction);
    std::vector<char> nonnegative(static_cast<std::size_t>(groups) * s.n);
    for (auto& b : nonnegative) b = pick(rng);
    for (int p = 0; p < s.k; ++p) {
      const int g = s.group_size > 0 ? p / s.group_size : 0;
      float* row = &w[static_cast<std::size_t>(o.order[p]) * s.n];
      for (int c = 0; c < s.n; ++c)
        if (nonnegative[static_cast<std::size_t>(g) * s.n + c]) row[c] = std::abs(row[c]);
    }
  }
  return ref::quantize_rtn(w, s.k, s.n, o);
}

/// The layer with zero points of 0 placed by hand in the lowest, a middle and the highest nibble of its qzeros words
/// (word w: nibble 0, 3 or 7 by w % 3), in its own zero-point convention: v1 words then carry the toolkits' borrow.
inline ref::QuantizedLayer with_zero_points_of_zero(ref::QuantizedLayer layer) {
  namespace format = opt4gptq::format;
  constexpr int kNibble[3] = {0, 3, 7};
  for (std::size_t w = 0; w < layer.qzeros.size(); ++w) {
    const auto stored = static_cast<std::uint32_t>(layer.qzeros[w]);
    const std::uint32_t zeros = format::pack(format::zero_word(stored, layer.format), kNibble[w % 3], 0);
    layer.qzeros[w] = static_cast<std::int32_t>(format::stored_zero_word(zeros, layer.format));
  }
  layer.symmetric = false;
  return layer;
}

/// Random activations [m][lda], fp16 or bf16 bits (columns past k are random too: they must not be read).
inline std::vector<std::uint16_t> random_activations(int m, std::int64_t lda, std::uint32_t seed,
                                                     opt4gptq::ElementType type = opt4gptq::ElementType::kFp16) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::uint16_t> a(static_cast<std::size_t>(m) * lda);
  const bool bf16 = type == opt4gptq::ElementType::kBf16;
  for (auto& x : a) x = bf16 ? ref::float_to_bf16_bits(normal(rng)) : ref::float_to_half_bits(normal(rng));
  return a;
}

/// How outputs of an element type read as values (for ref::gemm and ref::compare).
inline ref::ElementDecoder decoder(opt4gptq::ElementType type) {
  return type == opt4gptq::ElementType::kBf16 ? ref::bf16_bits_to_float : ref::half_bits_to_float;
}

/// A layer's tensors on the device, the act-order ones prepared, and the QuantizedWeights that describe them. Neither
/// copied nor moved: `weights` points into this object (`weights.act_order` = `&prepared`), and the problems built
/// from it point at `weights`.
struct DeviceLayer {
  ref::QuantizedLayer host;
  DeviceArray<std::int32_t> qweight, qzeros, g_idx;
  DeviceArray<std::uint16_t> scales;
  DeviceArray<unsigned char> prepared_buffer;
  opt4gptq::PreparedActOrder prepared;
  bool act_order = false;
  opt4gptq::QuantizedWeights weights;  ///< the layer as the kernels see it

  explicit DeviceLayer(ref::QuantizedLayer layer, bool force_prepare = false)
      : host(std::move(layer)), qweight(host.qweight), qzeros(host.qzeros), g_idx(host.g_idx), scales(host.scales) {
    act_order = force_prepare || host.act_order();
    if (act_order) {
      const std::size_t bytes = opt4gptq::act_order_buffer_bytes(host.k, host.n, host.num_groups);
      prepared_buffer = DeviceArray<unsigned char>(bytes);
      const opt4gptq::Status s =
          opt4gptq::prepare_act_order(qweight.get(), 0, g_idx.get(), host.k, host.n, host.num_groups,
                                      prepared_buffer.get(), bytes, nullptr, &prepared);
      INFO(s.message);
      REQUIRE(s.ok());
      const opt4gptq::Status checked = opt4gptq::check_act_order(prepared, nullptr);
      INFO(checked.message);
      REQUIRE(checked.ok());
    }
    weights.k = host.k;
    weights.n = host.n;
    weights.qweight = act_order ? nullptr : qweight.get();
    weights.qzeros = qzeros.get();
    weights.scales = reinterpret_cast<const opt4gptq::half*>(scales.get());
    weights.group_size = host.group_size;
    weights.num_groups = host.num_groups;
    weights.zero_format = host.format;
    weights.act_order = act_order ? &prepared : nullptr;
    const opt4gptq::Status checked = opt4gptq::check_weights(weights);
    INFO(checked.message);
    REQUIRE(checked.ok());
  }
  DeviceLayer(const DeviceLayer&) = delete;
  DeviceLayer& operator=(const DeviceLayer&) = delete;

  /// A call on this layer: the caller fills a, c, m and strides.
  opt4gptq::GemmProblem problem() const {
    opt4gptq::GemmProblem p;
    p.weights = &weights;
    return p;
  }
};

inline constexpr std::uint16_t kPoison = 0x7E00;      // fp16 NaN: an output left unwritten shows up as non-finite
inline constexpr std::uint16_t kPoisonBf16 = 0x7FC0;  // bf16 NaN (0x7E00 is a finite bf16, 2^125)
inline constexpr std::uint16_t kSentinel = 0x3C01;    // a value no kernel writes into memory around the output
inline constexpr std::uint16_t poison_for(opt4gptq::ElementType type) {
  return type == opt4gptq::ElementType::kBf16 ? kPoisonBf16 : kPoison;
}

/// One call of `Gemm` on m rows; C has row stride ldc (0 = n) and a guard row after it. Returns C [m][ldc].
struct CallResult {
  opt4gptq::Status status;
  opt4gptq::Plan plan;
  std::vector<std::uint16_t> c;
  long long touched_outside = 0;         // elements outside [m][n] that changed
  long long workspace_left_nonzero = 0;  // workspace bytes not zero after the launch
};

/// Where ReduceSharedSerial's fp32 slots lie in the workspace of a plan: after the counters (the workspace's head).
struct SlotRange {
  std::size_t begin = 0;
  std::size_t end = 0;
};
template <class Gemm>
SlotRange serial_slots(const opt4gptq::Plan& plan) {
  const int tiles = plan.grid_x * plan.grid_y;
  SlotRange r;
  r.begin = opt4gptq::ReduceSharedSerial::counter_bytes(opt4gptq::ReduceGeometry{tiles, 0, plan.grid_z});
  r.end = r.begin + static_cast<std::size_t>(tiles) * plan.grid_z * plan.rows_per_block * Gemm::TileShape::kBlockCols *
                        sizeof(float);
  return r;
}

/// Plans the call with plan<Gemm>(), then launches it with that plan. `weights` must outlive the call (a layer's
/// `weights`, or a view of it that the caller holds).
template <class Gemm>
CallResult call(const opt4gptq::QuantizedWeights& weights, int m, const DeviceArray<std::uint16_t>& a, std::int64_t lda,
                std::int64_t ldc) {
  const int n = weights.n;
  const std::int64_t ld = ldc ? ldc : n;
  std::vector<std::uint16_t> init(static_cast<std::size_t>(m + 1) * ld, kSentinel);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) init[static_cast<std::size_t>(i) * ld + j] = poison_for(Gemm::Element::kType);
  DeviceArray<std::uint16_t> c(init);

  opt4gptq::GemmProblem p;
  p.weights = &weights;
  p.m = m;
  p.a = a.get();
  p.lda = lda;
  p.c = c.get();
  p.ldc = ldc;
  p.dtype = Gemm::Element::kType;  // the kernel's own type: A holds that type's bits (random_activations)
  CallResult r;
  r.status = opt4gptq::plan<Gemm>(p, &r.plan);
  DeviceArray<unsigned char> workspace(r.plan.workspace_bytes);
  if (r.status.ok() && r.plan.workspace_bytes > 0) {
    // The policy may expect zeros only where its counters are (the workspace's head): poison its fp32 slots (written
    // before read), which follow the counters, so that a slot read before it is written shows up.
    std::vector<unsigned char> init_ws(r.plan.workspace_bytes, 0);
    if constexpr (std::is_same_v<typename Gemm::ReducePolicy, opt4gptq::ReduceSharedSerial>) {
      const SlotRange slots = serial_slots<Gemm>(r.plan);
      std::fill(init_ws.begin() + static_cast<std::ptrdiff_t>(slots.begin),
                init_ws.begin() + static_cast<std::ptrdiff_t>(slots.end), 0xFF);
    }
    workspace.upload(init_ws);
  }
  if (r.status.ok()) r.status = opt4gptq::launch<Gemm>(r.plan, p, workspace.get(), r.plan.workspace_bytes, nullptr);
  OPT4GPTQ_CHECK_RUNTIME(platform::device_synchronize());
  if (r.status.ok() && r.plan.workspace_bytes > 0) {
    // The policy's contract: a launch leaves every byte of the workspace it used zero (ready for any next shape). The
    // slots it never used (rows of M past m) keep their poison: they are neither read nor written.
    const std::vector<unsigned char> after = workspace.download();
    SlotRange slots;
    if constexpr (std::is_same_v<typename Gemm::ReducePolicy, opt4gptq::ReduceSharedSerial>)
      slots = serial_slots<Gemm>(r.plan);
    for (std::size_t i = 0; i < after.size(); ++i)
      if (after[i] != 0 && !(i >= slots.begin && i < slots.end && after[i] == 0xFF)) ++r.workspace_left_nonzero;
  }
  std::vector<std::uint16_t> out = c.download();
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::int64_t row = static_cast<std::int64_t>(i) / ld, col = static_cast<std::int64_t>(i) % ld;
    if ((row >= m || col >= n) && out[i] != kSentinel) ++r.touched_outside;
  }
  out.resize(static_cast<std::size_t>(m) * ld);
  r.c = std::move(out);
  return r;
}

}  // namespace test
