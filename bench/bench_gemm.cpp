// opt4gptq benchmark: the paper's ablation (Baseline, SMB, VML, ILA, Opt4GPTQ, and faster presets), the prefill path
// (DequantCublas: dequantize + cuBLAS) and the dispatcher (`auto`: what a Dispatcher with the default options runs) on
// the linear layers of the paper's six models plus one large layer, for M = 1..128 (decode and serving batches) and
// M = 256..4096 (prefill), against three yardsticks measured in the same run: the device-to-device copy bandwidth, a
// read-only kernel streaming the same bytes, and the dense fp16 GEMM of the same shape (cuBLAS; hipBLAS on AMD when
// present).
//
//   bench_gemm --out DIR [--quick] [--reps N] [--m 1,2,4] [--filter TEXT] [--shapes peers|KxN,KxN]
//              [--kernels NAME,NAME] [--dtype fp16|bf16|both] [--simt-max-m M]
//   (--filter: only the models whose name contains TEXT; --shapes: only the layers without act-order of these K x N,
//   `peers` for the 16 shapes of PEERS.md's H200 table (report.py's PEER_SHAPES); --kernels: only these kernels, by
//   their CSV names, e.g. Opt4GPTQ,TensorCore,auto or Bf16TensorCorePipelined,Bf16Auto; a name of a type the run does
//   not measure is an error)
//
// --dtype: the element type of A and C (default fp16, the runs before bf16 existed). bf16 points (GemmProblem::dtype =
// kBf16; the same layers, scales still fp16) run the bf16 presets under their names (Bf16Simt, Bf16Deterministic,
// Bf16Decode, Bf16TensorCore, Bf16TensorCoreDeterministic, Bf16TensorCorePipelined,
// Bf16TensorCorePipelinedDeterministic), the prefill path as `Bf16DequantCublas` and a Dispatcher created for bf16
// calls as `Bf16Auto`: every bf16 row's kernel name starts with Bf16, so that a reader keyed by the kernel name (as
// report.py's fp16 tables and make_dispatch_table.py are) never mixes the two types; the `dtype` column says it too.
// A bf16 point's activations are the fp16 point's normal draws rounded to bf16, its dense yardstick (`cublas_*`,
// `dense_*`) is cuBLAS with bf16 A, W and C (fp32 compute) on the same shape, and its read reference is the fp16
// point's (the same weight bytes). `both` measures fp16 then bf16 at each M of a layer. DeterministicF32 (the fp16
// twin of Bf16Deterministic, the dispatchers' fallback) runs only when --kernels names it.
//
// Above M = 128 the SIMT presets (8 rows of M per block: they re-read the weights per 8 rows, seconds per call at
// M = 4096) run only when --kernels names them, and every point takes at most 10 repetitions (calls take
// milliseconds; the median is stable). --simt-max-m M: the SIMT presets (Decode, Bf16Decode, ...) run at no M above
// M, named or not: a bounded run that names Decode for the small M where it is the fastest does not spend most of
// its time on Decode at M = 64..1024, where no table chooses it. The column `dispatched` says which kernel a row ran
// (for `auto` and `Bf16Auto`, the dispatcher's choice, by the CSV name of its build for the row's type).
//
// Timing: device events; warm-up first; weights rotated over copies totalling more than 4.5x the L2 cache, so every
// call streams its weights from memory. Back to back (columns ending in `_b2b`, and the older `us` and `dense_us`):
// the median over `reps` of (time of a batch of back-to-back calls) / (calls in the batch), which is what an engine
// that queues kernels sees. Graph replay (`us_graph`, `read_ref_us`, `cublas_us`, and the older `read_ref_us_graph`
// and `dense_us_graph`): the same batch captured once in a CUDA/HIP graph and replayed, per call, which is what an
// engine that replays graphs sees. `us_event` is the median of single calls each between its own event pair (launch
// latency included, as the peers' figures in PEERS.md were taken). `read_ref_*` is the read-only kernel, `cublas_*`
// and `dense_*` the dense GEMM of the row's type (hipBLAS on AMD, under the same names).
// Every result is first checked against an fp64 host reference (the first rows of C).
// Writes DIR/results.csv, DIR/results.json and prints progress on stderr.

#include <opt4gptq/dispatcher.hpp>
#include <opt4gptq/reference/gptq_reference.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <initializer_list>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "dense_gemm.hpp"
#include "presets_extra.hpp"

namespace platform = opt4gptq::platform;
namespace ref = opt4gptq::reference;

namespace {

#define CHECK_RT(call)                                                                                       \
  do {                                                                                                       \
    const platform::native_error_t e_ = (call);                                                              \
    if (e_ != platform::kNativeSuccess) {                                                                    \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, platform::error_string(e_)); \
      std::exit(2);                                                                                          \
    }                                                                                                        \
  } while (0)

// ---- what is measured -----------------------------------------------------------------------------------------
/// The weights of one point are rotated over copies of more than this many times the L2 cache (and 128 MB).
constexpr double kRotateL2Factor = 4.5;
struct LayerShape {
  const char* model;
  const char* layer;
  int k, n;
  bool act_order;
};

// Fused qkv, o, fused gate_up and down, as engines run them (hidden, intermediate, heads / kv heads of each model).
const LayerShape kLayers[] = {
    {"Llama-2-7B", "qkv", 4096, 12288, false},
    {"Llama-2-7B", "o", 4096, 4096, false},
    {"Llama-2-7B", "gate_up", 4096, 22016, false},
    {"Llama-2-7B", "down", 11008, 4096, false},
    {"CodeLlama-7B", "qkv", 4096, 12288, false},
    {"CodeLlama-7B", "o", 4096, 4096, false},
    {"CodeLlama-7B", "gate_up", 4096, 22016, false},
    {"CodeLlama-7B", "down", 11008, 4096, false},
    {"LLaMa-13B", "qkv", 5120, 15360, false},
    {"LLaMa-13B", "o", 5120, 5120, false},
    {"LLaMa-13B", "gate_up", 5120, 27648, false},
    {"LLaMa-13B", "down", 13824, 5120, false},
    {"Meta-Llama-3-8B", "qkv", 4096, 6144, false},
    {"Meta-Llama-3-8B", "o", 4096, 4096, false},
    {"Meta-Llama-3-8B", "gate_up", 4096, 28672, false},
    {"Meta-Llama-3-8B", "down", 14336, 4096, false},
    {"Qwen1.5-1.8B", "qkv", 2048, 6144, false},
    {"Qwen1.5-1.8B", "o", 2048, 2048, false},
    {"Qwen1.5-1.8B", "gate_up", 2048, 11008, false},
    {"Qwen1.5-1.8B", "down", 5504, 2048, false},
    {"Qwen1.5-4B", "qkv", 2560, 7680, false},
    {"Qwen1.5-4B", "o", 2560, 2560, false},
    {"Qwen1.5-4B", "gate_up", 2560, 13824, false},
    {"Qwen1.5-4B", "down", 6912, 2560, false},
    {"Large", "8192x28672", 8192, 28672, false},
    {"Llama-2-7B act-order", "qkv", 4096, 12288, true},
    {"Llama-2-7B act-order", "o", 4096, 4096, true},
    {"Llama-2-7B act-order", "gate_up", 4096, 22016, true},
    {"Llama-2-7B act-order", "down", 11008, 4096, true},
};
constexpr int kGroupSize = 128;

// ---- device helpers ---------------------------------------------------------------------------------------------
__global__ void fill_random_kernel(std::uint32_t* p, std::size_t words, std::uint32_t seed, std::uint32_t mask,
                                   std::uint32_t add) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < words;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint32_t x = static_cast<std::uint32_t>(i) * 0x9E3779B9u ^ seed;
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    p[i] = (x & mask) + add;
  }
}

/// Dense fp16 values in [-1, 1) (two per word): exponent of 0.5..1 with random mantissa and sign.
void fill_random_halves(void* p, std::size_t halves, std::uint32_t seed) {
  fill_random_kernel<<<1024, 256>>>(static_cast<std::uint32_t*>(p), halves / 2, seed, 0x83FF83FFu, 0x38003800u);
  CHECK_RT(platform::last_error());
}

/// Dense bf16 values in [-1, 1) (two per word): exponent of 0.5..1 with random mantissa and sign (fp16's bit pattern
/// read as bf16 would be values near 2^-15: finite, but not what a layer holds).
void fill_random_bf16(void* p, std::size_t elements, std::uint32_t seed) {
  fill_random_kernel<<<1024, 256>>>(static_cast<std::uint32_t*>(p), elements / 2, seed, 0x807F807Fu, 0x3F003F00u);
  CHECK_RT(platform::last_error());
}

/// The honest yardstick: read `bytes` once with 16-byte loads, 4 in flight per thread, and keep the result alive.
__global__ void read_reference_kernel(const uint4* __restrict__ p, std::size_t vectors, unsigned int* sink) {
  uint4 acc = make_uint4(0, 0, 0, 0);
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  for (; i + 3 * stride < vectors; i += 4 * stride) {
    const uint4 v0 = p[i], v1 = p[i + stride], v2 = p[i + 2 * stride], v3 = p[i + 3 * stride];
    acc.x ^= v0.x ^ v1.x ^ v2.x ^ v3.x;
    acc.y ^= v0.y ^ v1.y ^ v2.y ^ v3.y;
    acc.z ^= v0.z ^ v1.z ^ v2.z ^ v3.z;
    acc.w ^= v0.w ^ v1.w ^ v2.w ^ v3.w;
  }
  for (; i < vectors; i += stride) {
    const uint4 v = p[i];
    acc.x ^= v.x;
    acc.y ^= v.y;
    acc.z ^= v.z;
    acc.w ^= v.w;
  }
  if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x9E3779B9u) sink[0] = acc.x;  // practically never: defeats elimination
}

struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(std::size_t bytes) {
    CHECK_RT(platform::device_malloc(&ptr, std::max<std::size_t>(bytes, 16)));
  }
  ~DeviceBuffer() { (void)platform::device_free(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

// ---- timing -----------------------------------------------------------------------------------------------------
struct Timing {
  double us = 0;        // back to back, per call
  double us_event = 0;  // one call between its own events
  double us_graph = 0;  // replay of a captured graph of back-to-back calls, per call
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// `call(slot, stream)` enqueues one call on weight copy `slot`.
using Call = std::function<void(int, platform::stream_t)>;

Timing time_calls(const Call& call, int copies, int reps, platform::stream_t stream) {
  platform::event_t start, stop;
  CHECK_RT(platform::event_create(&start));
  CHECK_RT(platform::event_create(&stop));
  const int batch = std::max(copies, 10);
  for (int i = 0; i < batch; ++i) call(i % copies, stream);  // warm-up
  CHECK_RT(platform::stream_synchronize(stream));
  auto elapsed_us = [&] {
    CHECK_RT(platform::event_synchronize(stop));
    float ms = 0;
    CHECK_RT(platform::event_elapsed_ms(&ms, start, stop));
    return 1000.0 * ms;
  };
  std::vector<double> per_call, single, graph;
  int slot = 0;
  for (int r = 0; r < reps; ++r) {
    CHECK_RT(platform::event_record(start, stream));
    for (int i = 0; i < batch; ++i) call(slot++ % copies, stream);
    CHECK_RT(platform::event_record(stop, stream));
    per_call.push_back(elapsed_us() / batch);
  }
  for (int r = 0; r < reps; ++r) {
    CHECK_RT(platform::event_record(start, stream));
    call(slot++ % copies, stream);
    CHECK_RT(platform::event_record(stop, stream));
    single.push_back(elapsed_us());
  }
  platform::graph_exec_t exec;
  CHECK_RT(platform::capture_graph(
      stream,
      [&](platform::stream_t s) {
        for (int i = 0; i < batch; ++i) call(i % copies, s);
      },
      &exec));
  CHECK_RT(platform::graph_launch(exec, stream));  // warm-up
  for (int r = 0; r < reps; ++r) {
    CHECK_RT(platform::event_record(start, stream));
    CHECK_RT(platform::graph_launch(exec, stream));
    CHECK_RT(platform::event_record(stop, stream));
    graph.push_back(elapsed_us() / batch);
  }
  (void)platform::graph_destroy(exec);
  (void)platform::event_destroy(start);
  (void)platform::event_destroy(stop);
  return Timing{median(per_call), median(single), median(graph)};
}

// ---- one layer, on the host and on the device -------------------------------------------------------------------
struct HostLayer {
  int k = 0, n = 0, groups = 0;
  std::vector<std::int32_t> qweight, qzeros, g_idx;
  std::vector<std::uint16_t> scales;
};

HostLayer make_host_layer(int k, int n, bool act_order, std::uint32_t seed) {
  HostLayer l;
  l.k = k;
  l.n = n;
  l.groups = k / kGroupSize;
  std::mt19937 rng(seed);
  l.qweight.resize(static_cast<std::size_t>(k / 8) * n);
  for (auto& w : l.qweight) w = static_cast<std::int32_t>(rng());
  l.qzeros.resize(static_cast<std::size_t>(l.groups) * (n / 8));
  for (auto& z : l.qzeros) z = static_cast<std::int32_t>(rng());
  std::uniform_real_distribution<float> scale(0.5e-3f, 1.5e-3f);
  l.scales.resize(static_cast<std::size_t>(l.groups) * n);
  for (auto& s : l.scales) s = ref::float_to_half_bits(scale(rng));
  l.g_idx.resize(k);
  std::vector<int> order(k);
  std::iota(order.begin(), order.end(), 0);
  if (act_order) std::shuffle(order.begin(), order.end(), rng);
  for (int p = 0; p < k; ++p) l.g_idx[order[p]] = p / kGroupSize;
  return l;
}

/// fp64 reference of the first `rows` rows of C (v1 zero points), threaded over columns; A's 16-bit elements read by
/// `decode` (fp16 or bf16 bits).
std::vector<double> reference_rows(const HostLayer& l, const std::vector<std::uint16_t>& a, int rows,
                                   ref::ElementDecoder decode) {
  std::vector<double> c(static_cast<std::size_t>(rows) * l.n, 0.0);
  const unsigned threads = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::vector<double> av(l.k);
      for (int r = 0; r < rows; ++r) {
        for (int kk = 0; kk < l.k; ++kk) av[kk] = decode(a[static_cast<std::size_t>(r) * l.k + kk]);
        for (int col = static_cast<int>(t); col < l.n; col += static_cast<int>(threads)) {
          double sum = 0;
          for (int kk = 0; kk < l.k; ++kk) {
            const int g = l.g_idx[kk];
            const int q = opt4gptq::format::unpack(
                static_cast<std::uint32_t>(l.qweight[static_cast<std::size_t>(kk / 8) * l.n + col]), kk % 8);
            const auto stored = static_cast<std::uint32_t>(l.qzeros[static_cast<std::size_t>(g) * (l.n / 8) + col / 8]);
            const int z = opt4gptq::format::unpack(
                opt4gptq::format::zero_word(stored, opt4gptq::ZeroPointFormat::kGptqV1), col % 8);
            sum += av[kk] * ref::half_bits_to_float(l.scales[static_cast<std::size_t>(g) * l.n + col]) * (q - z);
          }
          c[static_cast<std::size_t>(r) * l.n + col] = sum;
        }
      }
    });
  for (auto& th : pool) th.join();
  return c;
}

// ---- presets ----------------------------------------------------------------------------------------------------
template <class G>
struct Named {
  using Gemm = G;
  const char* name;
  bool by_default = true;  ///< false: runs only when --kernels names it
};
// The matrix-core presets where every target of the build has matrix instructions (NVIDIA: this benchmark is built
// for sm_80+; AMD: not with gfx906 among the targets, where they are a compile-time error).
// clang-format off
#if defined(OPT4GPTQ_BACKEND_CUDA) || defined(OPT4GPTQ_BENCH_ALL_TARGETS_HAVE_MATRIX_CORES)
#define OPT4GPTQ_BENCH_MATRIX_CORE_PRESETS \
  , Named<opt4gptq::presets::TensorCore>{"TensorCore"}, \
  Named<opt4gptq::presets::TensorCoreDeterministic>{"TensorCoreDeterministic"}, \
  Named<opt4gptq::presets::TensorCorePipelined>{"TensorCorePipelined"}, \
  Named<opt4gptq::presets::TensorCorePipelinedDeterministic>{"TensorCorePipelinedDeterministic"}
#else
#define OPT4GPTQ_BENCH_MATRIX_CORE_PRESETS
#endif
const auto kPresets =
    std::make_tuple(Named<opt4gptq::presets::Baseline>{"Baseline"}, Named<opt4gptq::presets::Smb>{"SMB"},
                    Named<opt4gptq::presets::Vml>{"VML"}, Named<opt4gptq::presets::Ila>{"ILA"},
                    Named<opt4gptq::presets::Opt4Gptq>{"Opt4GPTQ"},
                    Named<opt4gptq::presets::Deterministic>{"Deterministic"},
                    Named<opt4gptq::presets::Decode>{"Decode"},
                    Named<opt4gptq::presets::DeterministicF32>{"DeterministicF32", false}
                    OPT4GPTQ_BENCH_MATRIX_CORE_PRESETS OPT4GPTQ_BENCH_EXTRA_PRESETS);
// The bf16 presets (bf16 A and C), under their preset names. Their matrix-core kernels on AMD need gfx90a or gfx94x
// (v_mfma_f32_16x16x16bf16_1k): not gfx908, although it has the fp16 matrix instructions.
#if defined(OPT4GPTQ_BACKEND_CUDA) || defined(OPT4GPTQ_BENCH_ALL_TARGETS_HAVE_MATRIX_CORES)
#define OPT4GPTQ_BENCH_BF16_MATRIX_CORE_PRESETS \
  , Named<opt4gptq::presets::Bf16TensorCore>{"Bf16TensorCore"}, \
  Named<opt4gptq::presets::Bf16TensorCoreDeterministic>{"Bf16TensorCoreDeterministic"}, \
  Named<opt4gptq::presets::Bf16TensorCorePipelined>{"Bf16TensorCorePipelined"}, \
  Named<opt4gptq::presets::Bf16TensorCorePipelinedDeterministic>{"Bf16TensorCorePipelinedDeterministic"}
#else
#define OPT4GPTQ_BENCH_BF16_MATRIX_CORE_PRESETS
#endif
const auto kBf16Presets =
    std::make_tuple(Named<opt4gptq::presets::Bf16Simt>{"Bf16Simt"},
                    Named<opt4gptq::presets::Bf16Deterministic>{"Bf16Deterministic"},
                    Named<opt4gptq::presets::Bf16Decode>{"Bf16Decode"}
                    OPT4GPTQ_BENCH_BF16_MATRIX_CORE_PRESETS OPT4GPTQ_BENCH_EXTRA_BF16_PRESETS);
// clang-format on

/// The CSV name of a kernel the dispatcher chose (the `dispatched` column) for calls of `dtype`: its KernelChoice name
/// in fp16, the name of its bf16 build in bf16 (host/dispatch_kernels.hpp's bf16 list: DeterministicF32 is
/// Bf16Deterministic, DequantCublas is this benchmark's Bf16DequantCublas, every other kernel X is presets::Bf16X).
std::string dispatched_name(opt4gptq::KernelChoice k, opt4gptq::ElementType dtype) {
  if (dtype != opt4gptq::ElementType::kBf16) return opt4gptq::kernel_name(k);
  if (k == opt4gptq::KernelChoice::kDeterministicF32) return "Bf16Deterministic";
  return std::string("Bf16") + opt4gptq::kernel_name(k);
}

/// The 16 layer shapes (K x N, no act-order) of ../shared/PEERS.md's H200 table, as report.py's PEER_SHAPES: `--shapes
/// peers`.
const char* const kPeerShapes =
    "11008x4096,13824x5120,14336x4096,2048x6144,2560x7680,4096x12288,4096x22016,4096x28672,4096x4096,4096x6144,"
    "5120x15360,5120x27648,5120x5120,5504x2048,6912x2560,8192x28672";

/// Above this M the SIMT presets run only when --kernels names them, and points take at most kLargeMReps repetitions.
constexpr int kSimtMaxM = 128;
constexpr int kLargeMReps = 10;

struct Row {
  const LayerShape* shape;
  int m;
  std::string kernel;
  Timing t;
  int launches;
  int grid_z;
  double rel_error;
  std::string dispatched;  ///< the kernel that ran: `kernel`, or for `auto` the dispatcher's choice
  opt4gptq::ElementType dtype;
};

/// The dense GEMM's time at one M, in one element type.
struct DenseTime {
  int m;
  opt4gptq::ElementType dtype;
  Timing t;
};

std::vector<int> parse_list(const char* s) {
  std::vector<int> v;
  for (const char* p = s; *p;) {
    v.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return v;
}

std::vector<std::string> parse_names(const char* s) {
  std::vector<std::string> v;
  std::string current;
  for (const char* p = s;; ++p) {
    if (*p == ',' || *p == '\0') {
      if (!current.empty()) v.push_back(current);
      current.clear();
      if (*p == '\0') break;
    } else {
      current += *p;
    }
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out = ".";
  bool quick = false;
  int reps = 50;
  std::vector<int> ms = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
  std::string filter;
  std::vector<std::pair<int, int>> shapes;  // K x N; empty: all
  std::vector<std::string> kernels;         // empty: all
  std::vector<opt4gptq::ElementType> dtypes = {opt4gptq::ElementType::kFp16};
  int simt_max_m = 1 << 30;  // --simt-max-m: none unless given
  bool usage = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc)
      out = argv[++i];
    else if (a == "--quick")
      quick = true;
    else if (a == "--reps" && i + 1 < argc)
      reps = std::atoi(argv[++i]);
    else if (a == "--m" && i + 1 < argc)
      ms = parse_list(argv[++i]);
    else if (a == "--filter" && i + 1 < argc)
      filter = argv[++i];
    else if (a == "--kernels" && i + 1 < argc)
      kernels = parse_names(argv[++i]);
    else if (a == "--simt-max-m" && i + 1 < argc)
      simt_max_m = std::atoi(argv[++i]);
    else if (a == "--shapes" && i + 1 < argc) {
      const std::string list = argv[++i];
      for (const std::string& kn : parse_names(list == "peers" ? kPeerShapes : list.c_str())) {
        int k = 0, n = 0;
        char tail = 0;
        if (std::sscanf(kn.c_str(), "%dx%d%c", &k, &n, &tail) != 2) usage = true;
        shapes.emplace_back(k, n);
      }
    } else if (a == "--dtype" && i + 1 < argc) {
      const std::string d = argv[++i];
      if (d == "fp16")
        dtypes = {opt4gptq::ElementType::kFp16};
      else if (d == "bf16")
        dtypes = {opt4gptq::ElementType::kBf16};
      else if (d == "both")
        dtypes = {opt4gptq::ElementType::kFp16, opt4gptq::ElementType::kBf16};
      else
        usage = true;
    } else
      usage = true;
  }
  if (usage) {
    std::fprintf(stderr,
                 "usage: bench_gemm --out DIR [--quick] [--reps N] [--m 1,2,4] [--filter TEXT] "
                 "[--shapes peers|KxN,KxN] [--kernels NAME,NAME] [--dtype fp16|bf16|both] [--simt-max-m M]\n");
    return 2;
  }
  auto runs = [&](opt4gptq::ElementType t) { return std::find(dtypes.begin(), dtypes.end(), t) != dtypes.end(); };
  {
    // A name --kernels gives must be a kernel of a type the run measures: a typo, or a bf16 name without --dtype bf16
    // or both, would otherwise measure nothing and say nothing.
    auto names_of = [](const auto& presets, std::initializer_list<const char*> more) {
      std::vector<std::string> v;
      std::apply([&](const auto&... p) { (v.push_back(p.name), ...); }, presets);
      v.insert(v.end(), more.begin(), more.end());
      return v;
    };
    const std::vector<std::string> fp16_names = names_of(kPresets, {"DequantCublas", "auto"});
    const std::vector<std::string> bf16_names = names_of(kBf16Presets, {"Bf16DequantCublas", "Bf16Auto"});
    bool named_fp16 = false, named_bf16 = false;
    for (const std::string& name : kernels) {
      const bool fp16 = std::find(fp16_names.begin(), fp16_names.end(), name) != fp16_names.end();
      const bool bf16 = std::find(bf16_names.begin(), bf16_names.end(), name) != bf16_names.end();
      if (!fp16 && !bf16) {
        std::fprintf(stderr, "bench_gemm: --kernels: no kernel named %s in this build; fp16:", name.c_str());
        for (const std::string& n : fp16_names) std::fprintf(stderr, " %s", n.c_str());
        std::fprintf(stderr, "; bf16:");
        for (const std::string& n : bf16_names) std::fprintf(stderr, " %s", n.c_str());
        std::fprintf(stderr, "\n");
        return 2;
      }
      if (!runs(fp16 ? opt4gptq::ElementType::kFp16 : opt4gptq::ElementType::kBf16)) {
        std::fprintf(stderr, "bench_gemm: --kernels: %s is a%s kernel: add --dtype %s or both\n", name.c_str(),
                     fp16 ? "n fp16" : " bf16", fp16 ? "fp16" : "bf16");
        return 2;
      }
      named_fp16 |= fp16;
      named_bf16 |= bf16;
    }
    // A type none of whose kernels --kernels names is not measured at all (its dense yardstick would be timed for
    // nothing).
    if (!kernels.empty())
      dtypes.erase(std::remove_if(dtypes.begin(), dtypes.end(),
                                  [&](opt4gptq::ElementType t) {
                                    return t == opt4gptq::ElementType::kBf16 ? !named_bf16 : !named_fp16;
                                  }),
                   dtypes.end());
  }
  if (quick) {
    reps = std::min(reps, 20);
    if (filter.empty()) filter = "Llama-2-7B";
    ms = {1, 8, 32};
  }
  int devices = 0;
  if (platform::device_count(&devices) != platform::kNativeSuccess || devices == 0) {
    std::fprintf(stderr, "bench_gemm: no %s GPU visible: nothing to measure\n", platform::kBackendName);
    return 77;
  }
  char device[256] = "?";
  int l2 = 0, driver = 0;
  CHECK_RT(platform::device_name(0, device, sizeof(device)));
  CHECK_RT(platform::l2_cache_bytes(0, &l2));
  (void)platform::driver_version(&driver);
  const double rotate_bytes = std::max(kRotateL2Factor * l2, 128.0e6);

  // Copy bandwidth in this run: 1 GiB device to device, bytes read + written.
  double copy_gbps = 0;
  {
    const std::size_t bytes = std::size_t(1) << 30;
    DeviceBuffer src(bytes), dst(bytes);
    fill_random_halves(src.ptr, bytes / 2, 1);
    std::vector<double> t;
    platform::event_t e0, e1;
    CHECK_RT(platform::event_create(&e0));
    CHECK_RT(platform::event_create(&e1));
    for (int r = 0; r < 12; ++r) {
      CHECK_RT(platform::event_record(e0, nullptr));
      CHECK_RT(platform::copy_device_async(dst.ptr, src.ptr, bytes, nullptr));
      CHECK_RT(platform::event_record(e1, nullptr));
      CHECK_RT(platform::event_synchronize(e1));
      float ms_ = 0;
      CHECK_RT(platform::event_elapsed_ms(&ms_, e0, e1));
      if (r >= 2) t.push_back(ms_);
    }
    copy_gbps = 2.0 * bytes / (median(t) * 1e-3) / 1e9;
  }
  std::fprintf(stderr, "bench_gemm on %s: L2 %d MB, copy bandwidth %.0f GB/s (read + write)\n", device, l2 >> 20,
               copy_gbps);

  bench::DenseGemm dense;
  DeviceBuffer sink(64);
  platform::stream_t stream;
  CHECK_RT(platform::stream_create(&stream));
  std::vector<Row> rows;
  int wrong_results = 0;  // kernels whose result failed the check at some point (those points are left out)
  // Per shape: the read reference, the weight bytes, and the dense GEMM per M.
  std::vector<std::tuple<const LayerShape*, Timing, double, std::vector<DenseTime>>> yardsticks;
  auto selected = [&](const LayerShape& s) {
    if (!filter.empty() && std::string(s.model).find(filter) == std::string::npos) return false;
    return shapes.empty() ||
           (!s.act_order && std::find(shapes.begin(), shapes.end(), std::make_pair(s.k, s.n)) != shapes.end());
  };
  int done = 0, total = 0;
  for (const LayerShape& s : kLayers) total += selected(s) ? 1 : 0;

  for (const LayerShape& shape : kLayers) {
    if (!selected(shape)) continue;
    ++done;
    // A shape measured for an earlier model (CodeLlama-7B has Llama-2-7B's shapes) is reported again, not re-run.
    const Row* measured = nullptr;
    for (const Row& r : rows)
      if (r.shape->k == shape.k && r.shape->n == shape.n && r.shape->act_order == shape.act_order) {
        measured = &r;
        break;
      }
    if (measured) {
      const LayerShape* first = measured->shape;
      std::vector<Row> again;
      for (const Row& r : rows)
        if (r.shape == first)
          again.push_back(Row{&shape, r.m, r.kernel, r.t, r.launches, r.grid_z, r.rel_error, r.dispatched, r.dtype});
      rows.insert(rows.end(), again.begin(), again.end());
      for (auto& y : yardsticks)
        if (std::get<0>(y) == first) {
          auto copy = y;
          std::get<0>(copy) = &shape;
          yardsticks.push_back(copy);
          break;
        }
      std::fprintf(stderr, "[%d/%d] %s %s: same shape as %s %s, reported again\n", done, total, shape.model,
                   shape.layer, first->model, first->layer);
      continue;
    }
    const int k = shape.k, n = shape.n;
    const HostLayer host = make_host_layer(k, n, shape.act_order, 1234u + k + n);
    const std::size_t qweight_bytes = host.qweight.size() * 4, qzeros_bytes = host.qzeros.size() * 4,
                      scales_bytes = host.scales.size() * 2;
    const double weight_bytes = static_cast<double>(qweight_bytes + qzeros_bytes + scales_bytes);
    const int copies = std::max(2, static_cast<int>(std::ceil(rotate_bytes / weight_bytes)));
    std::fprintf(stderr, "[%d/%d] %s %s: K=%d N=%d%s, %.1f MB of weights, %d copies\n", done, total, shape.model,
                 shape.layer, k, n, shape.act_order ? " act-order" : "", weight_bytes / 1e6, copies);

    // Device copies of the layer.
    DeviceBuffer qweight(qweight_bytes * copies), qzeros(qzeros_bytes * copies), scales(scales_bytes * copies);
    DeviceBuffer g_idx(host.g_idx.size() * 4);
    CHECK_RT(platform::copy_to_device(qweight.ptr, host.qweight.data(), qweight_bytes));
    CHECK_RT(platform::copy_to_device(qzeros.ptr, host.qzeros.data(), qzeros_bytes));
    CHECK_RT(platform::copy_to_device(scales.ptr, host.scales.data(), scales_bytes));
    CHECK_RT(platform::copy_to_device(g_idx.ptr, host.g_idx.data(), host.g_idx.size() * 4));
    for (int c = 1; c < copies; ++c) {
      CHECK_RT(
          platform::copy_device_async(qweight.as<char>() + c * qweight_bytes, qweight.ptr, qweight_bytes, nullptr));
      CHECK_RT(platform::copy_device_async(qzeros.as<char>() + c * qzeros_bytes, qzeros.ptr, qzeros_bytes, nullptr));
      CHECK_RT(platform::copy_device_async(scales.as<char>() + c * scales_bytes, scales.ptr, scales_bytes, nullptr));
    }
    std::vector<opt4gptq::PreparedActOrder> prepared(copies);
    std::vector<std::unique_ptr<DeviceBuffer>> prepared_buffers;
    if (shape.act_order) {
      const std::size_t bytes = opt4gptq::act_order_buffer_bytes(k, n, host.groups);
      for (int c = 0; c < copies; ++c) {
        prepared_buffers.push_back(std::make_unique<DeviceBuffer>(bytes));
        const opt4gptq::Status st = opt4gptq::prepare_act_order(
            reinterpret_cast<const std::int32_t*>(qweight.as<char>() + c * qweight_bytes), 0, g_idx.as<std::int32_t>(),
            k, n, host.groups, prepared_buffers.back()->ptr, bytes, nullptr, &prepared[c]);
        if (!st.ok()) {
          std::fprintf(stderr, "prepare_act_order: %s\n", st.message);
          return 1;
        }
      }
      const opt4gptq::Status st = opt4gptq::check_act_order(prepared[0], nullptr);
      if (!st.ok()) {
        std::fprintf(stderr, "check_act_order: %s\n", st.message);
        return 1;
      }
    }
    // The layer as the kernels see it, once per copy (load time): every call below refers to one of these.
    std::vector<opt4gptq::QuantizedWeights> weights(copies);
    for (int c = 0; c < copies; ++c) {
      opt4gptq::QuantizedWeights& w = weights[c];
      w.k = k;
      w.n = n;
      w.qweight =
          shape.act_order ? nullptr : reinterpret_cast<const std::int32_t*>(qweight.as<char>() + c * qweight_bytes);
      w.qzeros = reinterpret_cast<const std::int32_t*>(qzeros.as<char>() + c * qzeros_bytes);
      w.scales = reinterpret_cast<const opt4gptq::half*>(scales.as<char>() + c * scales_bytes);
      w.group_size = kGroupSize;
      w.num_groups = host.groups;
      w.zero_format = opt4gptq::ZeroPointFormat::kGptqV1;
      w.act_order = shape.act_order ? &prepared[c] : nullptr;
      const opt4gptq::Status st = opt4gptq::check_weights(w);
      if (!st.ok()) {
        std::fprintf(stderr, "check_weights: %s\n", st.message);
        return 1;
      }
    }
    // Yardsticks' buffers: the same bytes for the read reference, dense weights of each type for the dense GEMM.
    const std::size_t read_bytes = (static_cast<std::size_t>(weight_bytes) + 15) / 16 * 16;
    DeviceBuffer read_buffer(read_bytes * copies);
    fill_random_halves(read_buffer.ptr, read_bytes * copies / 2, 7);
    const double dense_bytes = 2.0 * k * n;
    const int dense_copies = std::max(2, static_cast<int>(std::ceil(rotate_bytes / dense_bytes)));

    // Activations: the same normal draws for both types (fp16 as before bf16 existed; bf16 rounds the same floats), so
    // that the two types' points multiply the same matrix up to their rounding.
    const int max_m = *std::max_element(ms.begin(), ms.end());
    const std::size_t a_elements = static_cast<std::size_t>(max_m) * k;
    std::vector<std::uint16_t> a_fp16(a_elements), a_bf16(runs(opt4gptq::ElementType::kBf16) ? a_elements : 0);
    {
      std::mt19937 rng(42);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (std::size_t i = 0; i < a_elements; ++i) {
        const float x = normal(rng);
        a_fp16[i] = ref::float_to_half_bits(x);
        if (!a_bf16.empty()) a_bf16[i] = ref::float_to_bf16_bits(x);
      }
    }
    DeviceBuffer c_buf(static_cast<std::size_t>(max_m) * n * 2);
    const int check_rows = 2;
    // What each element type of the run has of its own: A, the reference of C's first rows, the dense GEMM's weights,
    // and the dispatcher of this layer (copy 0; every copy has its shape) with the default options for calls of the
    // type: the `auto` / `Bf16Auto` row.
    struct PerType {
      opt4gptq::ElementType dtype;
      const char* prefix;  // of the kernel names in the CSV: "" (fp16) or "Bf16"
      std::unique_ptr<DeviceBuffer> a, dense_w;
      std::vector<double> expected;
      opt4gptq::Dispatcher dispatcher;
    };
    std::vector<PerType> types;
    for (const opt4gptq::ElementType dtype : dtypes) {
      const bool bf16 = dtype == opt4gptq::ElementType::kBf16;
      const std::vector<std::uint16_t>& a_host = bf16 ? a_bf16 : a_fp16;
      PerType t{dtype,
                bf16 ? "Bf16" : "",
                std::make_unique<DeviceBuffer>(a_elements * 2),
                std::make_unique<DeviceBuffer>(static_cast<std::size_t>(dense_bytes) * dense_copies),
                {},
                {}};
      CHECK_RT(platform::copy_to_device(t.a->ptr, a_host.data(), a_elements * 2));
      if (bf16)
        fill_random_bf16(t.dense_w->ptr, static_cast<std::size_t>(k) * n * dense_copies, 9);
      else
        fill_random_halves(t.dense_w->ptr, static_cast<std::size_t>(k) * n * dense_copies, 9);
      t.expected = reference_rows(host, a_host, std::min(check_rows, max_m),
                                  bf16 ? ref::bf16_bits_to_float : ref::half_bits_to_float);
      opt4gptq::DispatchOptions auto_options;
      auto_options.max_m = max_m;
      auto_options.dtype = dtype;
      const opt4gptq::Status st = opt4gptq::Dispatcher::create(weights[0], auto_options, &t.dispatcher);
      if (!st.ok()) {
        std::fprintf(stderr, "Dispatcher::create (%s): %s\n", opt4gptq::element_name(dtype), st.message);
        return 1;
      }
      types.push_back(std::move(t));
    }

    // Read reference: once per shape (independent of M and of the element type: the same weight bytes).
    int sms = 0;
    CHECK_RT(platform::multiprocessor_count(0, &sms));
    const Timing read_t = time_calls(
        [&](int slot, platform::stream_t st) {
          read_reference_kernel<<<sms * 8, 256, 0, st>>>(
              reinterpret_cast<const uint4*>(read_buffer.as<char>() + slot * read_bytes), read_bytes / 16,
              sink.as<unsigned int>());
        },
        copies, reps, stream);
    std::vector<DenseTime> dense_times;

    for (const int m : ms) {
      const int reps_m = m > kSimtMaxM ? std::min(reps, kLargeMReps) : reps;
      // fp16 then bf16 at each M (with --dtype both): the two types' points of a layer and M are measured seconds
      // apart, under the same clocks and temperature, and share the read reference.
      for (const PerType& type : types) {
        const opt4gptq::ElementType dtype = type.dtype;
        const bool bf16 = dtype == opt4gptq::ElementType::kBf16;
        Timing dense_t;
        if (dense.available()) {
          bool ok = true;
          dense_t = time_calls(
              [&](int slot, platform::stream_t st) {
                ok &= dense.run(m, n, k, type.a->ptr,
                                type.dense_w->as<char>() + slot * static_cast<std::size_t>(dense_bytes), c_buf.ptr,
                                dtype, st);
              },
              dense_copies, reps_m, stream);
          if (!ok) dense_t = Timing{};
        }
        dense_times.push_back(DenseTime{m, dtype, dense_t});
        std::fprintf(stderr, "    M=%-4d read-ref %5.1f/%5.1f us  %s%s %6.1f/%6.1f us |", m, read_t.us, read_t.us_graph,
                     bench::DenseGemm::name(), bf16 ? " bf16" : "", dense_t.us, dense_t.us_graph);
        auto wanted = [&](const char* name, bool by_default) {
          if (kernels.empty()) return by_default;
          return std::find(kernels.begin(), kernels.end(), name) != kernels.end();
        };
        auto problem_for = [&](int slot) {
          opt4gptq::GemmProblem pr;
          pr.m = m;
          pr.a = type.a->ptr;
          pr.c = c_buf.ptr;
          pr.dtype = dtype;
          pr.weights = &weights[slot];
          return pr;
        };
        auto fail = [&](const std::string& name, const opt4gptq::Status& st) {
          std::fprintf(stderr, "\n%s: %s\n", name.c_str(), st.message);
          std::exit(1);
        };
        // One kernel at this point: correctness first (poison C with NaN, run on copy 0, compare the first rows with
        // the fp64 reference), then the timings. `run(slot, workspace, bytes, stream)` enqueues one call on weight
        // copy `slot`; `c_additions` is how many K blocks add into each output through atomics (0: C stored once).
        auto measure = [&](const std::string& name, std::size_t workspace_bytes, int launches, int k_blocks,
                           int c_additions, const std::string& dispatched, const auto& run) {
          std::vector<std::uint16_t> c_host(static_cast<std::size_t>(m) * n, bf16 ? 0x7FC0 : 0x7E00);
          CHECK_RT(platform::copy_to_device(c_buf.ptr, c_host.data(), c_host.size() * 2));
          DeviceBuffer workspace(workspace_bytes);
          opt4gptq::Status st = opt4gptq::clear_workspace(workspace.ptr, workspace_bytes, nullptr);
          if (st.ok()) st = run(0, workspace.ptr, workspace_bytes, nullptr);
          if (!st.ok()) fail(name, st);
          CHECK_RT(platform::device_synchronize());
          CHECK_RT(platform::copy_to_host(c_host.data(), c_buf.ptr, c_host.size() * 2));
          const int rows_checked = std::min(m, check_rows);
          const ref::ErrorReport e = ref::compare(c_host.data(), rows_checked, n, 0, type.expected,
                                                  bf16 ? ref::bf16_bits_to_float : ref::half_bits_to_float);
          // fp16: 5e-3 (C's rounding is 2^-11 relative; the fp16-chain kernels' partial sums and fp16 atomics add
          // more). bf16: the products and sums are fp32 (relative error ~1e-6 at these K), so the error is bf16's
          // roundings, unit roundoff u = 2^-8: C's (an rms near u/2.5 of C's norm), the weights' to bf16 in the
          // matrix-core kernels and the prefill path (near 0.43u), together bounded by 4u with room (the bf16
          // dispatcher test's bound); and, where K blocks meet in C through bf16 atomics, one rounding of a running
          // sum per block (about u/2.5 · sqrt(blocks / 2) in the norm), bounded by u · sqrt(blocks), 3.5 times that,
          // added in quadrature. A wrong row, group or zero point is off by 0.1 and more.
          const double tolerance = bf16 ? std::sqrt(16.0 + c_additions) / 256.0 : 5e-3;
          if (e.non_finite > 0 || e.relative > tolerance) {
            // Not timed, not reported; the run goes on (other kernels' figures stay usable) and exits 1.
            std::fprintf(stderr, "\n%s %s %s M=%d: WRONG RESULT (relative error %.3g > %.3g, %lld non-finite)\n",
                         name.c_str(), shape.model, shape.layer, m, e.relative, tolerance, e.non_finite);
            ++wrong_results;
            return;
          }
          const Timing t =
              time_calls([&](int slot, platform::stream_t s) { (void)run(slot, workspace.ptr, workspace_bytes, s); },
                         copies, reps_m, stream);
          rows.push_back(Row{&shape, m, name, t, launches, k_blocks, e.relative, dispatched, dtype});
          std::fprintf(stderr, " %s %.1f/%.1f", name.c_str(), t.us, t.us_graph);
        };
        auto measure_presets = [&](const auto& presets) {
          std::apply(
              [&](auto... preset) {
                (
                    [&](auto p) {
                      using Gemm = typename decltype(p)::Gemm;
                      // SIMT kernels (8 rows of M per block) re-read the weights per 8 rows: not at prefill sizes.
                      constexpr bool kSimt = Gemm::kMaxRows <= 8;
                      if (!wanted(p.name, p.by_default && (!kSimt || m <= kSimtMaxM))) return;
                      if (kSimt && m > simt_max_m) return;
                      opt4gptq::Plan planned;
                      const opt4gptq::Status st = opt4gptq::plan<Gemm>(problem_for(0), &planned);
                      if (!st.ok()) fail(p.name, st);
                      measure(p.name, planned.workspace_bytes, planned.zero_fill_output ? 2 : 1, planned.grid_z,
                              planned.zero_fill_output ? planned.grid_z : 0, p.name,
                              [&](int slot, void* ws, std::size_t bytes, platform::stream_t s) {
                                return opt4gptq::launch<Gemm>(problem_for(slot), ws, bytes, s);
                              });
                    }(preset),
                    ...);
              },
              presets);
        };
        if (bf16)
          measure_presets(kBf16Presets);
        else
          measure_presets(kPresets);
#if OPT4GPTQ_WITH_CUBLAS
        // The prefill path on its own: dequantize into the workspace, cuBLAS, clear (3 launches, cuBLAS's own aside).
        const std::string prefill_name = std::string(type.prefix) + "DequantCublas";
        if (wanted(prefill_name.c_str(), true)) {
          using Prefill = opt4gptq::DequantCublas;
          opt4gptq::DeviceInfo device;
          opt4gptq::Plan planned;
          opt4gptq::Status st = opt4gptq::current_device_info(&device);
          if (st.ok()) st = Prefill::plan_shape(m, weights[0], device, opt4gptq::PlanOptions{}, &planned);
          if (!st.ok()) fail(prefill_name, st);
          measure(prefill_name, planned.workspace_bytes, 3, 1, 0, prefill_name,
                  [&](int slot, void* ws, std::size_t bytes, platform::stream_t s) {
                    return Prefill::launch(planned, problem_for(slot), ws, bytes, s);
                  });
        }
#endif
        // The dispatcher, as an engine calls it (it plans per call, as launch<Gemm>(problem, ...) does).
        const char* const auto_name = bf16 ? "Bf16Auto" : "auto";
        if (wanted(auto_name, true)) {
          opt4gptq::DispatchPlan planned;
          const opt4gptq::Status st = type.dispatcher.plan(m, &planned);
          if (!st.ok()) fail(auto_name, st);
          const bool prefill = planned.kernel == opt4gptq::KernelChoice::kDequantCublas;
          const int launches = prefill ? 3 : planned.launches * (planned.plan.zero_fill_output ? 2 : 1);
          const int additions = !prefill && planned.plan.zero_fill_output ? planned.plan.grid_z : 0;
          measure(auto_name, type.dispatcher.workspace_bytes(), launches, prefill ? 1 : planned.plan.grid_z, additions,
                  dispatched_name(planned.kernel, dtype),
                  [&](int slot, void* ws, std::size_t bytes, platform::stream_t s) {
                    return type.dispatcher.launch(problem_for(slot), ws, bytes, s);
                  });
        }
        std::fprintf(stderr, "\n");
      }
    }
    yardsticks.emplace_back(&shape, read_t, weight_bytes, dense_times);
  }

  // ---- output ---------------------------------------------------------------------------------------------------
  auto find_yardstick = [&](const LayerShape* s) -> const auto& {
    for (const auto& y : yardsticks)
      if (std::get<0>(y) == s) return y;
    std::fprintf(stderr, "internal error: no yardstick\n");
    std::exit(2);
  };
  auto baseline_us = [&](const Row& r) {
    for (const Row& b : rows)
      if (b.shape == r.shape && b.m == r.m && b.dtype == r.dtype && b.kernel == "Baseline") return b.t.us;
    return 0.0;
  };
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%d", std::gmtime(&now));
  const std::string csv_path = out + "/results.csv", json_path = out + "/results.json";
  FILE* csv = std::fopen(csv_path.c_str(), "w");
  FILE* json = std::fopen(json_path.c_str(), "w");
  if (!csv || !json) {
    std::fprintf(stderr, "cannot write to %s\n", out.c_str());
    return 1;
  }
  // Time columns: `us_graph`, `read_ref_us`, `read_ref_us_graph`, `dense_us_graph` and `cublas_us` are graph replay;
  // `us`, `us_b2b`, `read_ref_us_b2b`, `dense_us` and `cublas_us_b2b` are back to back (`us` = `us_b2b`, `read_ref_us`
  // = `read_ref_us_graph`, `dense_us` = `cublas_us_b2b`, `dense_us_graph` = `cublas_us`; the older names stay for
  // existing readers). Rates and ratios without a `_graph` ending are back to back, as before. `dtype` (fp16 or bf16,
  // the last column: readers by position see the columns they knew) is the element type of A and C; the dense columns
  // are the dense GEMM of that type, and a bf16 row's speedup_vs_baseline is 0 (Baseline has no bf16 build).
  std::fprintf(csv,
               "model,layer,k,n,act_order,m,kernel,us,us_graph,us_b2b,us_event,launches,k_blocks,weight_bytes,"
               "weight_gbps,weight_gbps_graph,pct_copy_bw,pct_copy_bw_graph,tflops,speedup_vs_baseline,read_ref_us,"
               "read_ref_us_graph,read_ref_us_b2b,time_vs_read_ref,dense_us,dense_us_graph,cublas_us,cublas_us_b2b,"
               "speedup_vs_dense,speedup_vs_dense_graph,rel_error,dispatched,dtype\n");
  std::fprintf(json,
               "{\n  \"device\": \"%s\",\n  \"backend\": \"%s\",\n  \"driver_version\": %d,\n  \"date\": \"%s\",\n"
               "  \"l2_bytes\": %d,\n  \"copy_gbps\": %.1f,\n  \"dense_library\": \"%s\",\n  \"group_size\": %d,\n"
               "  \"reps\": %d,\n  \"rotate_l2_factor\": %.1f,\n  \"rows\": [\n",
               device, platform::kBackendName, driver, date, l2, copy_gbps, bench::DenseGemm::name(), kGroupSize, reps,
               kRotateL2Factor);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const auto& y = find_yardstick(r.shape);
    const Timing read = std::get<1>(y);
    const double bytes = std::get<2>(y);
    Timing dn;
    for (const DenseTime& d : std::get<3>(y))
      if (d.m == r.m && d.dtype == r.dtype) dn = d.t;
    const double gbps = bytes / (r.t.us * 1e-6) / 1e9, gbps_graph = bytes / (r.t.us_graph * 1e-6) / 1e9;
    const double tflops = 2.0 * r.m * r.shape->k * r.shape->n / (r.t.us * 1e-6) / 1e12;
    const double base = baseline_us(r);
    std::fprintf(csv,
                 "%s,%s,%d,%d,%d,%d,%s,%.3f,%.3f,%.3f,%.3f,%d,%d,%.0f,%.1f,%.1f,%.1f,%.1f,%.3f,%.3f,%.3f,%.3f,%.3f,"
                 "%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3g,%s,%s\n",
                 r.shape->model, r.shape->layer, r.shape->k, r.shape->n, r.shape->act_order ? 1 : 0, r.m,
                 r.kernel.c_str(), r.t.us, r.t.us_graph, r.t.us, r.t.us_event, r.launches, r.grid_z, bytes, gbps,
                 gbps_graph, 100.0 * gbps / copy_gbps, 100.0 * gbps_graph / copy_gbps, tflops, base / r.t.us,
                 read.us_graph, read.us_graph, read.us, r.t.us / read.us, dn.us, dn.us_graph, dn.us_graph, dn.us,
                 dn.us > 0 ? dn.us / r.t.us : 0.0, dn.us_graph > 0 ? dn.us_graph / r.t.us_graph : 0.0, r.rel_error,
                 r.dispatched.c_str(), opt4gptq::element_name(r.dtype));
    std::fprintf(json,
                 "    {\"model\": \"%s\", \"layer\": \"%s\", \"k\": %d, \"n\": %d, \"act_order\": %s, \"m\": %d, "
                 "\"kernel\": \"%s\", \"us\": %.3f, \"us_graph\": %.3f, \"us_b2b\": %.3f, \"us_event\": %.3f, "
                 "\"launches\": %d, \"k_blocks\": %d, \"weight_bytes\": %.0f, \"read_ref_us\": %.3f, "
                 "\"read_ref_us_graph\": %.3f, \"read_ref_us_b2b\": %.3f, \"dense_us\": %.3f, "
                 "\"dense_us_graph\": %.3f, \"cublas_us\": %.3f, \"cublas_us_b2b\": %.3f, \"rel_error\": %.3g, "
                 "\"dispatched\": \"%s\", \"dtype\": \"%s\"}%s\n",
                 r.shape->model, r.shape->layer, r.shape->k, r.shape->n, r.shape->act_order ? "true" : "false", r.m,
                 r.kernel.c_str(), r.t.us, r.t.us_graph, r.t.us, r.t.us_event, r.launches, r.grid_z, bytes,
                 read.us_graph, read.us_graph, read.us, dn.us, dn.us_graph, dn.us_graph, dn.us, r.rel_error,
                 r.dispatched.c_str(), opt4gptq::element_name(r.dtype), i + 1 < rows.size() ? "," : "");
  }
  std::fprintf(json, "  ]\n}\n");
  std::fclose(csv);
  std::fclose(json);
  std::fprintf(stderr, "wrote %s and %s\n", csv_path.c_str(), json_path.c_str());
  if (wrong_results > 0) {
    std::fprintf(stderr, "bench_gemm: %d points gave wrong results (left out of the CSV)\n", wrong_results);
    return 1;
  }
  return 0;
}
