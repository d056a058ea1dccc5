// The PyTorch half of the package: op schemas (TORCH_LIBRARY), their CUDA implementations, argument checks, streams,
// workspaces and the per-layer cache of prepared act-order layouts. The kernels are launched through backend.h.
//
//   torch.ops.opt4gptq.gptq_gemm(a, b_q_weight, b_gptq_qzeros, b_gptq_scales, b_g_idx, use_exllama, use_v2_format, bit)
//   torch.ops.opt4gptq.gptq_shuffle(q_weight, q_perm, bit)              vLLM's signatures and semantics
//   torch.ops.opt4gptq.prepare_act_order(qweight, g_idx, num_groups)    the library's act-order preparation
//   torch.ops.opt4gptq.gemm(a, qweight, qzeros, scales, act_order, group_size, use_v2_format, kernel)
//   torch.ops.opt4gptq.choose_kernel(m, k, n, num_groups, act_order, dtype="float16") -> str   what "auto" runs
//   torch.ops.opt4gptq.act_order_buffer_bytes(k, n, num_groups) -> int
//   torch.ops.opt4gptq.clear_cache() -> int, torch.ops.opt4gptq.cache_size() -> int
// python/README.md documents them; the fake (meta) implementations are in opt4gptq/__init__.py.
//
// Error messages: every message is formatted with vsnprintf and raised as one C string (TORCH_CHECK(false, msg)), so
// no iostream formats a number in this extension. On the H200 machine an extension whose error message held a number
// formatted by operator<< (TORCH_CHECK(cond, "x: ", 5)) died with signal 11 (python/README.md, "Exceptions and the
// build"); this path does not depend on the build setting that avoids it. Every message starts with the name of the
// argument at fault and ends with the op's name in brackets.
//
// Element types: activations `a` (and so the output) are fp16 or bf16; a bf16 call runs the bf16 build of its kernel
// (backend.h's kBf16Kernels), and names a kernel without one in a NotImplementedError. Scales are fp16 or bf16 whatever
// `a` is: the kernels read fp16 scales, so bf16 ones are converted per call (describe_layer()).

#include <Python.h>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <climits>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend.h"

namespace opt4gptq_torch {
namespace {

// ---- errors ---------------------------------------------------------------------------------------------------------

std::string fmt_message(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string fmt_message(const char* fmt, ...) {
  char buffer[1024];
  va_list args;
  va_start(args, fmt);
  const int written = std::vsnprintf(buffer, sizeof(buffer), fmt, args);
  va_end(args);
  if (written < 0) return std::string(fmt);
  return std::string(buffer);  // at most 1023 characters: messages are one line
}

enum class ErrorKind { kRuntime, kNotImplemented };

/// Raises RuntimeError (or NotImplementedError) with `message`, passed as a single C string: TORCH_CHECK then builds
/// no stream (c10::detail::torchCheckMsgImpl returns a lone C string as it is).
[[noreturn]] void raise_error(const std::string& message, ErrorKind kind = ErrorKind::kRuntime) {
  if (kind == ErrorKind::kNotImplemented) {
    TORCH_CHECK_NOT_IMPLEMENTED(false, message.c_str());
  }
  TORCH_CHECK(false, message.c_str());
  std::abort();  // not reached: both macros throw when their condition is false
}

const char* dtype_name(at::ScalarType type) {
  switch (type) {
    case at::ScalarType::Half: return "float16";
    case at::ScalarType::BFloat16: return "bfloat16";
    case at::ScalarType::Float: return "float32";
    case at::ScalarType::Double: return "float64";
    case at::ScalarType::Int: return "int32";
    case at::ScalarType::Long: return "int64";
    case at::ScalarType::Short: return "int16";
    case at::ScalarType::Char: return "int8";
    case at::ScalarType::Byte: return "uint8";
    case at::ScalarType::Bool: return "bool";
    default: return "another dtype";
  }
}

std::string device_name(const at::Tensor& t) {
  const c10::Device d = t.device();
  if (d.type() == c10::DeviceType::CUDA) return fmt_message("cuda:%d", static_cast<int>(d.index()));
  if (d.type() == c10::DeviceType::CPU) return "cpu";
  if (d.type() == c10::DeviceType::Meta) return "meta";
  return "a device other than CUDA";
}

long long ll(std::int64_t v) { return static_cast<long long>(v); }

/// Checks of one op's arguments; every failure names the argument and the op.
class Args {
 public:
  explicit Args(const char* op) : op_(op) {}
  const char* op() const { return op_; }

  [[noreturn]] void fail(const char* arg, const std::string& what, ErrorKind kind = ErrorKind::kRuntime) const {
    raise_error(fmt_message("%s: %s [%s]", arg, what.c_str(), op_), kind);
  }

  void bits(std::int64_t bit) const {
    if (bit != 4)
      raise_error(fmt_message("bit: %lld-bit weights are not supported: 4 is the only width with a codec in opt4gptq "
                              "(codec/int4.hpp) [%s]",
                              ll(bit), op_),
                  ErrorKind::kNotImplemented);
  }

  /// A defined CUDA tensor of `type` on the device of `ref` (named `ref_arg`), with `dims` dimensions (any for -1).
  void tensor(const at::Tensor& t, const char* arg, at::ScalarType type, int dims, const at::Tensor& ref,
              const char* ref_arg) const {
    placed(t, arg, ref, ref_arg);
    if (t.scalar_type() != type)
      fail(arg, fmt_message("must be %s, got %s", dtype_name(type), dtype_name(t.scalar_type())));
    rank(t, arg, dims);
  }

  /// As tensor(), for a tensor of 16-bit floats: float16 or bfloat16 (activations, scales).
  void half_or_bf16(const at::Tensor& t, const char* arg, int dims, const at::Tensor& ref, const char* ref_arg) const {
    placed(t, arg, ref, ref_arg);
    if (t.scalar_type() != at::kHalf && t.scalar_type() != at::kBFloat16)
      fail(arg, fmt_message("must be float16 or bfloat16, got %s", dtype_name(t.scalar_type())));
    rank(t, arg, dims);
  }

  /// A size that must fit the library's int.
  int as_int(std::int64_t v, const char* arg, const char* what) const {
    if (v < 0 || v > INT_MAX) fail(arg, fmt_message("%s = %lld is out of range (0 .. %d)", what, ll(v), INT_MAX));
    return static_cast<int>(v);
  }

  /// The row stride opt4gptq takes for a 2-D tensor (0 = dense): columns must be contiguous, rows must not overlap. A
  /// single row's stride(0) means nothing (GPTQModel holds a group-size -1 layer's scales [1, n] with strides (1, 1)).
  std::int64_t row_stride(const at::Tensor& t, const char* arg) const {
    if (t.size(1) > 1 && t.stride(1) != 1)
      fail(arg, fmt_message("columns must be contiguous (stride(1) == 1), got strides (%lld, %lld)", ll(t.stride(0)),
                            ll(t.stride(1))));
    if (t.size(0) <= 1) return 0;
    if (t.stride(0) < t.size(1))
      fail(arg, fmt_message("rows must not overlap (stride(0) >= size(1) = %lld), got stride(0) = %lld", ll(t.size(1)),
                            ll(t.stride(0))));
    return t.stride(0);
  }

 private:
  /// Defined, on CUDA, on the device of `ref`.
  void placed(const at::Tensor& t, const char* arg, const at::Tensor& ref, const char* ref_arg) const {
    if (!t.defined()) fail(arg, "undefined tensor");
    if (!t.is_cuda()) fail(arg, fmt_message("must be a CUDA tensor, got one on %s", device_name(t).c_str()));
    if (t.device() != ref.device())
      fail(arg, fmt_message("must be on the same device as %s (%s), got %s", ref_arg, device_name(ref).c_str(),
                            device_name(t).c_str()));
  }

  void rank(const at::Tensor& t, const char* arg, int dims) const {
    if (dims >= 0 && t.dim() != dims) fail(arg, fmt_message("must have %d dimensions, got %lld", dims, ll(t.dim())));
  }

  const char* op_;
};

/// The library's element type of a tensor of 16-bit floats (checked by Args::half_or_bf16).
opt4gptq::ElementType element_type(const at::Tensor& t) {
  return t.scalar_type() == at::kBFloat16 ? opt4gptq::ElementType::kBf16 : opt4gptq::ElementType::kFp16;
}

bool aligned(const void* p, std::uintptr_t bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }

// ---- a layer and a call, from tensors ---------------------------------------------------------------------------------

struct Names {
  const char* a;
  const char* qweight;
  const char* qzeros;
  const char* scales;
};

/// The layer's QuantizedWeights from its tensors (qweight may be absent: the native op's act-order form), checked so
/// that the library's own checks can only fail for reasons this function names too.
struct Layer {
  opt4gptq::QuantizedWeights weights;
  int k = 0, n = 0, groups = 0;
  at::Tensor scales;  ///< the fp16 scales weights.scales points into: the caller's, or the converted copy of bf16 ones
};

Layer describe_layer(const Args& args, const Names& names, const at::Tensor& a, const at::Tensor* qweight,
                     const at::Tensor& qzeros, const at::Tensor& scales, bool use_v2_format) {
  Layer layer;
  std::int64_t k = 0, n = 0;
  if (qweight != nullptr) {
    args.tensor(*qweight, names.qweight, at::kInt, 2, a, names.a);
    k = qweight->size(0) * 8;
    n = qweight->size(1);
  } else {
    k = a.size(-1);
  }
  args.tensor(qzeros, names.qzeros, at::kInt, 2, a, names.a);
  args.half_or_bf16(scales, names.scales, 2, a, names.a);
  if (qweight == nullptr) n = scales.size(1);
  const char* n_arg = qweight != nullptr ? names.qweight : names.scales;
  if (k < 8 || k % 8 != 0)
    args.fail(qweight != nullptr ? names.qweight : names.a,
              fmt_message("K = %lld input features: must be a positive multiple of 8 (8 rows per int32 word)", ll(k)));
  if (n < 8 || n % 8 != 0)
    args.fail(n_arg,
              fmt_message("N = %lld output features: must be a positive multiple of 8 (8 zero points per int32 word)",
                          ll(n)));
  layer.k = args.as_int(k, qweight != nullptr ? names.qweight : names.a, "K");
  layer.n = args.as_int(n, n_arg, "N");

  const std::int64_t groups = scales.size(0);
  if (groups < 1) args.fail(names.scales, "must have at least one row (one per group), got 0");
  layer.groups = args.as_int(groups, names.scales, "groups");
  if (scales.size(1) != n)
    args.fail(names.scales, fmt_message("must have N = %lld columns, got %lld", ll(n), ll(scales.size(1))));
  if (qzeros.size(1) != n / 8)
    args.fail(names.qzeros, fmt_message("must have N / 8 = %lld columns (8 zero points per int32), got %lld", ll(n / 8),
                                        ll(qzeros.size(1))));
  if (qzeros.size(0) != groups)
    args.fail(names.qzeros, fmt_message("must have one row per group, as many as %s (%lld), got %lld", names.scales,
                                        ll(groups), ll(qzeros.size(0))));

  opt4gptq::QuantizedWeights& w = layer.weights;
  w.k = layer.k;
  w.n = layer.n;
  w.bits = 4;
  w.num_groups = layer.groups;
  w.zero_format = use_v2_format ? opt4gptq::ZeroPointFormat::kGptqV2 : opt4gptq::ZeroPointFormat::kGptqV1;
  w.ldz = args.row_stride(qzeros, names.qzeros);
  w.lds = args.row_stride(scales, names.scales);  // the layout's checks, on the tensor as given (either dtype)
  w.qzeros = static_cast<const std::int32_t*>(qzeros.data_ptr());
  layer.scales = scales;
  if (scales.scalar_type() == at::kBFloat16) {
    // bf16 scales (GPTQModel's checkpoints of bf16 models; vLLM allocates scales in the model's dtype): the kernels
    // read fp16 scales, so they are converted here, per call: one small copy kernel on the current stream (groups x N
    // elements; no synchronization, so it captures into CUDA graphs). Every bf16 in [2^-17, 65504] is exact in fp16
    // (8 significant bits of 11); a scale past 65504 becomes inf and its group's outputs inf or NaN, visible but not
    // raised here: checking would synchronize every call. Converting once at load (opt4gptq.scales_to_fp16, which
    // checks; GptqLinear does it) avoids both the per-call kernel and the hazard.
    layer.scales = scales.to(at::kHalf, /*non_blocking=*/false, /*copy=*/false, at::MemoryFormat::Contiguous);
    w.lds = 0;  // dense
  }
  w.scales = static_cast<const opt4gptq::half*>(layer.scales.data_ptr());
  // The kernels read 4 scales (8 bytes) and 4 columns of packed weights (16 bytes) at once.
  if (!aligned(layer.scales.data_ptr(), 8) || (w.lds % 4) != 0)
    args.fail(names.scales,
              "must be 8-byte aligned with a row stride that is a multiple of 4 (4 scales are read at "
              "once); pass a contiguous tensor");
  if (qweight != nullptr) {
    w.ldq = args.row_stride(*qweight, names.qweight);
    w.qweight = static_cast<const std::int32_t*>(qweight->data_ptr());
    if (!aligned(qweight->data_ptr(), 16) || (w.ldq % 4) != 0)
      args.fail(names.qweight,
                "must be 16-byte aligned with a row stride that is a multiple of 4 (one load reads 4 "
                "columns of a packed row); pass a contiguous tensor");
  }
  return layer;
}

/// The activations of a call as the kernels take them: [m, k], dense rows, 16-byte aligned (the widest LoadPolicy).
struct Call {
  at::Tensor a2;
  int m = 0;
  std::vector<std::int64_t> out_shape;
};

void check_activations(const Args& args, const char* arg, const at::Tensor& a) {
  args.half_or_bf16(a, arg, -1, a, arg);
  if (a.dim() < 1) args.fail(arg, "must have at least one dimension ([..., K])");
}

/// A bf16 call can only run a kernel with a bf16 build (backend.h's kBf16Kernels); the paper's fp16-chain kernels are
/// refused by name before anything runs, as unsupported (NotImplementedError).
void check_kernel_for_dtype(const Args& args, Kernel kernel, const at::Tensor& a) {
  if (a.scalar_type() != at::kBFloat16 || has_bf16_build(kernel)) return;
  std::string names;
  for (Kernel k : kBf16Kernels) names += std::string(names.empty() ? "" : ", ") + kernel_name(k);
  args.fail("kernel_name",
            fmt_message("'%s' has no bfloat16 build (the paper's fp16-chain kernels baseline, smb, vml, ila, "
                        "opt4gptq and deterministic compute in fp16 by design); bfloat16 activations run on %s",
                        kernel_name(kernel), names.c_str()),
            ErrorKind::kNotImplemented);
}

Call describe_call(const Args& args, const char* arg, const at::Tensor& a, int k, int n, const char* k_source) {
  if (a.size(-1) != k)
    args.fail(arg, fmt_message("last dimension must be K = %s = %d, got %lld", k_source, k, ll(a.size(-1))));
  Call call;
  call.out_shape = a.sizes().vec();
  call.out_shape.back() = n;
  const std::int64_t m = a.numel() / k;
  call.m = args.as_int(m, arg, "rows (numel / K)");
  at::Tensor a2 = a.reshape({m, static_cast<std::int64_t>(k)});
  if (!a2.is_contiguous()) a2 = a2.contiguous();
  if (m > 0 && !aligned(a2.data_ptr(), 16)) a2 = a2.clone();  // a view at an odd offset: a fresh copy is aligned
  call.a2 = a2;
  return call;
}

// ---- streams, workspaces, launches ---------------------------------------------------------------------------------

cudaStream_t current_stream(const at::Tensor& on) {
  return c10::cuda::getCurrentCUDAStream(on.device().index()).stream();
}

bool capturing(const Args& args, cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaError_t e = cudaStreamIsCapturing(stream, &status);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    raise_error(fmt_message("stream: cudaStreamIsCapturing failed: %s [%s]", cudaGetErrorString(e), args.op()));
  }
  return status != cudaStreamCaptureStatusNone;
}

/// The workspaces of the kernels that need one (split-K partial sums and counters), one per (device, stream) and one
/// per (device, stream, graph capture), kept across calls and grown on demand. The library's kernels leave their
/// workspace's head (the split-K counters) zero when they finish (past the head it is scratch), so it is zero-filled
/// only when it is created or grown: no memset per call
/// (in a CUDA graph, a memset node per layer would cost about as much as a small layer's GEMM). Concurrent streams
/// never share one, and a graph captured on a stream has its own (allocated, and zero-filled once per replay, from the
/// graph's pool), so a replay never races with eager calls on the stream it was captured on. Entries live until
/// clear_cache(); a capture's workspace therefore outlives its graph until then (a few MB at most per graph).
class StreamWorkspaces {
 public:
  static StreamWorkspaces& instance() {
    static StreamWorkspaces* workspaces = new StreamWorkspaces();  // never destroyed: no CUDA frees at exit
    return *workspaces;
  }

  /// A zero-filled workspace of at least `bytes` for work queued on `stream` (the current stream of `like`'s device).
  void* get(const Args& args, const at::Tensor& like, cudaStream_t stream, std::size_t bytes) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    unsigned long long capture = 0;
    const cudaError_t e = cudaStreamGetCaptureInfo(stream, &status, &capture);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      raise_error(fmt_message("stream: cudaStreamGetCaptureInfo failed: %s [%s]", cudaGetErrorString(e), args.op()));
    }
    if (status != cudaStreamCaptureStatusActive) capture = 0;
    const Key key{like.device().index(), reinterpret_cast<std::uintptr_t>(stream), capture};
    std::lock_guard<std::mutex> lock(mutex_);
    at::Tensor& slot = workspaces_[key];
    if (slot.defined() && static_cast<std::size_t>(slot.numel()) >= bytes) return slot.data_ptr();
    // Grown by at least 2x, from 1 MiB: a few growths cover an engine's largest call. The old buffer is kept until
    // clear_cache(): queued launches may still use it, and during a capture nothing is freed.
    const std::size_t grown =
        std::max<std::size_t>({bytes, std::size_t(1) << 20, slot.defined() ? 2 * std::size_t(slot.numel()) : 0});
    if (slot.defined()) retired_.push_back(slot);
    slot = at::zeros({static_cast<std::int64_t>(grown)}, like.options().dtype(at::kByte));  // on `stream`
    return slot.data_ptr();
  }

  /// Drops every workspace (the caching allocator reuses their memory only for work queued after the launches that
  /// used them); returns how many there were.
  std::int64_t clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto n = static_cast<std::int64_t>(workspaces_.size() + retired_.size());
    workspaces_.clear();
    retired_.clear();
    return n;
  }

 private:
  struct Key {
    int device;
    std::uintptr_t stream;
    unsigned long long capture;  // 0: not capturing
    bool operator==(const Key& o) const { return device == o.device && stream == o.stream && capture == o.capture; }
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      return std::hash<std::uintptr_t>()(k.stream) ^ (std::hash<unsigned long long>()(k.capture) * 31u) ^
             static_cast<std::size_t>(k.device);
    }
  };
  std::mutex mutex_;
  std::unordered_map<Key, at::Tensor, KeyHash> workspaces_;
  std::vector<at::Tensor> retired_;
};

/// A launch's view of its stream's workspace.
class TorchWorkspace final : public Workspace {
 public:
  TorchWorkspace(const Args& args, const at::Tensor& like, cudaStream_t stream)
      : args_(args), like_(like), stream_(stream) {}
  void* zeroed(std::size_t bytes) override { return StreamWorkspaces::instance().get(args_, like_, stream_, bytes); }

 private:
  const Args& args_;
  const at::Tensor& like_;
  cudaStream_t stream_;
};

void check_status(const Args& args, const opt4gptq::Status& s) {
  if (!s.ok()) raise_error(fmt_message("%s (%s) [%s]", s.message, opt4gptq::to_string(s.code), args.op()));
}

at::Tensor run_gemm(const Args& args, const opt4gptq::QuantizedWeights& w, const Call& call, const at::Tensor& a,
                    Kernel kernel, cudaStream_t stream) {
  const opt4gptq::ElementType dtype = element_type(a);  // of A and C; the kernel is its build for this type
  opt4gptq::Status s;
  kernel = resolve_kernel(kernel, call.m, w.k, w.n, w.groups(), w.act_order != nullptr, dtype, &s);
  check_status(args, s);
  if (kernel == Kernel::kDequantMatmul) {
    // The prefill path: the layer dequantized to dense weights of A's type (a temporary of k x n elements from the
    // caching allocator) and multiplied by PyTorch's matmul (cuBLAS, fp32 accumulation, output in A's type).
    at::Tensor dense = at::empty({static_cast<std::int64_t>(w.k), static_cast<std::int64_t>(w.n)}, a.options());
    check_status(args, dequantize_layer(w, dense.data_ptr(), dtype, stream));
    return at::mm(call.a2, dense).view(call.out_shape);
  }
  at::Tensor c = at::empty({static_cast<std::int64_t>(call.m), static_cast<std::int64_t>(w.n)}, a.options());
  opt4gptq::GemmProblem p;
  p.m = call.m;
  p.a = call.a2.data_ptr();
  p.c = c.data_ptr();
  p.dtype = dtype;
  p.weights = &w;
  TorchWorkspace workspace(args, a, stream);
  check_status(args, launch_kernel(p, kernel, workspace, stream));
  return c.view(call.out_shape);
}

// ---- the cache of prepared act-order layouts (gptq_gemm with use_exllama = false) --------------------------------------

/// vLLM calls gptq_gemm with use_exllama = false and the checkpoint's g_idx for row-parallel act-order shards, whose
/// groups have uneven sizes: their rows sorted by group need padding and do not fit in qweight, so vLLM never shuffles
/// them and neither does gptq_shuffle here. The library's prepared layout (a sorted, padded copy) is built on the first
/// call for a layer, outside CUDA graph capture, and kept here. An entry is found again by the identity of the tensors'
/// storages (weak references: an entry whose qweight or g_idx has been freed is never matched, since the weak
/// reference keeps the storage object's address from being reused) plus offsets, versions and shape.
class PreparedLayouts {
 public:
  static PreparedLayouts& instance() {
    static PreparedLayouts* cache = new PreparedLayouts();  // never destroyed: no CUDA frees during interpreter exit
    return *cache;
  }

  at::Tensor find_or_prepare(const Args& args, const at::Tensor& qweight, std::int64_t ldq, const at::Tensor& g_idx,
                             const Layer& layer, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mutex_);
    const Key key = key_of(qweight, ldq, g_idx, layer);
    auto bucket = entries_.find(key.qweight_storage);
    if (bucket != entries_.end())
      for (const Entry& e : bucket->second)
        if (e.matches(key)) return e.buffer;

    if (capturing(args, stream))
      args.fail("b_g_idx",
                "the first call of this act-order layer (use_exllama = false) is being captured into a CUDA graph: "
                "its prepared layout is built, with one synchronization, on the layer's first call outside capture "
                "(one eager call, such as vLLM's profile run, does it)");
    release_superseded_locked(key);  // the same qweight with new contents, and layers that no longer exist

    const std::size_t bytes = act_order_buffer_bytes(layer.k, layer.n, layer.groups);
    at::Tensor buffer = at::empty({static_cast<std::int64_t>(bytes)}, qweight.options().dtype(at::kByte));
    if (!aligned(buffer.data_ptr(), 256))
      args.fail("b_q_weight", "internal: the prepared buffer is not 256-byte aligned");
    const at::Tensor g = g_idx.is_contiguous() ? g_idx : g_idx.contiguous();
    opt4gptq::PreparedActOrder prepared;
    check_status(args, prepare_act_order(static_cast<const std::int32_t*>(qweight.data_ptr()), ldq,
                                         static_cast<const std::int32_t*>(g.data_ptr()), layer.k, layer.n, layer.groups,
                                         buffer.data_ptr(), bytes, stream, &prepared));
    const opt4gptq::Status valid = check_act_order(prepared, stream);  // synchronizes, once per layer
    if (valid.code == opt4gptq::StatusCode::kInvalidData)
      args.fail("b_g_idx",
                fmt_message("an entry is outside [0, num_groups) with num_groups = b_gptq_scales.size(0) = %d",
                            layer.groups));
    check_status(args, valid);

    entries_[key.qweight_storage].push_back(
        Entry(key, qweight.storage().getWeakStorageImpl(), g_idx.storage().getWeakStorageImpl(), buffer));
    return buffer;
  }

  std::int64_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::int64_t count = 0;
    for (const auto& bucket : entries_) count += static_cast<std::int64_t>(bucket.second.size());
    return count;
  }

  /// Drops every entry (after a device synchronization: launches in flight may still read the buffers).
  std::int64_t clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::int64_t count = 0;
    for (const auto& bucket : entries_) count += static_cast<std::int64_t>(bucket.second.size());
    if (count > 0) (void)cudaDeviceSynchronize();
    entries_.clear();
    return count;
  }

 private:
  struct Key {
    const void* qweight_storage = nullptr;
    const void* g_idx_storage = nullptr;
    std::int64_t qweight_offset = 0, qweight_version = 0, ldq = 0;
    std::int64_t g_idx_offset = 0, g_idx_version = 0, g_idx_stride = 0;
    int k = 0, n = 0, groups = 0, device = 0;
    bool same_tensors(const Key& o) const {
      return qweight_storage == o.qweight_storage && g_idx_storage == o.g_idx_storage &&
             qweight_offset == o.qweight_offset && ldq == o.ldq && g_idx_offset == o.g_idx_offset &&
             g_idx_stride == o.g_idx_stride && k == o.k && n == o.n && groups == o.groups && device == o.device;
    }
  };
  struct Entry {
    Entry(const Key& k, c10::weak_intrusive_ptr<c10::StorageImpl> q, c10::weak_intrusive_ptr<c10::StorageImpl> g,
          at::Tensor b)
        : key(k), qweight_ref(std::move(q)), g_idx_ref(std::move(g)), buffer(std::move(b)) {}
    Key key;
    c10::weak_intrusive_ptr<c10::StorageImpl> qweight_ref;
    c10::weak_intrusive_ptr<c10::StorageImpl> g_idx_ref;
    at::Tensor buffer;
    bool alive() const { return !qweight_ref.expired() && !g_idx_ref.expired(); }
    bool matches(const Key& k) const {
      return alive() && key.same_tensors(k) && key.qweight_version == k.qweight_version &&
             key.g_idx_version == k.g_idx_version;
    }
  };

  static Key key_of(const at::Tensor& qweight, std::int64_t ldq, const at::Tensor& g_idx, const Layer& layer) {
    Key k;
    k.qweight_storage = qweight.storage().unsafeGetStorageImpl();
    k.g_idx_storage = g_idx.storage().unsafeGetStorageImpl();
    k.qweight_offset = qweight.storage_offset();
    k.qweight_version = qweight._version();
    k.ldq = ldq;
    k.g_idx_offset = g_idx.storage_offset();
    k.g_idx_version = g_idx._version();
    k.g_idx_stride = g_idx.stride(0);
    k.k = layer.k;
    k.n = layer.n;
    k.groups = layer.groups;
    k.device = static_cast<int>(qweight.device().index());
    return k;
  }

  /// Releases the entries of freed layers and the older versions of `key`'s layer. Only called outside capture.
  void release_superseded_locked(const Key& key) {
    std::vector<at::Tensor> released;
    for (auto it = entries_.begin(); it != entries_.end();) {
      std::vector<Entry>& v = it->second;
      for (std::size_t i = 0; i < v.size();) {
        if (!v[i].alive() || v[i].key.same_tensors(key)) {
          released.push_back(std::move(v[i].buffer));
          v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
          ++i;
        }
      }
      it = v.empty() ? entries_.erase(it) : std::next(it);
    }
    if (!released.empty()) (void)cudaDeviceSynchronize();  // other streams may still read the released buffers
  }

  std::mutex mutex_;
  std::unordered_map<const void*, std::vector<Entry>> entries_;
};

// ---- the ops ----------------------------------------------------------------------------------------------------------

/// vLLM's gptq_gemm (csrc/quantization/gptq/q_gemm.cu), with this library's kernels:
///  - b_g_idx empty: a layer without act-order; qweight as saved (gptq_shuffle with an empty perm left it as it was);
///  - b_g_idx non-empty and use_exllama: b_g_idx is the permutation argsort(g_idx) and b_q_weight holds the rows in
///    that order (gptq_shuffle): row i belongs to group i / (K / groups). A's columns are gathered through the
///    permutation into a temporary and the layer runs as one without act-order;
///  - b_g_idx non-empty and !use_exllama: b_g_idx is the checkpoint's g_idx (group of each row; groups of any size, as
///    in a row-parallel act-order shard) and b_q_weight is as saved: the library's prepared layout, cached per layer.
/// groups = b_gptq_scales.size(0) (= b_gptq_qzeros.size(0)). `a` fp16 or bf16 (the output's type; auto runs the
/// dispatcher's choice among the kernels of that type), scales fp16 or bf16.
at::Tensor gptq_gemm(const at::Tensor& a, const at::Tensor& b_q_weight, const at::Tensor& b_gptq_qzeros,
                     const at::Tensor& b_gptq_scales, const at::Tensor& b_g_idx, bool use_exllama, bool use_v2_format,
                     std::int64_t bit) {
  const Args args("opt4gptq::gptq_gemm");
  args.bits(bit);
  check_activations(args, "a", a);
  const Names names{"a", "b_q_weight", "b_gptq_qzeros", "b_gptq_scales"};
  Layer layer = describe_layer(args, names, a, &b_q_weight, b_gptq_qzeros, b_gptq_scales, use_v2_format);
  const Call call = describe_call(args, "a", a, layer.k, layer.n, "b_q_weight.size(0) * 8");
  opt4gptq::QuantizedWeights& w = layer.weights;

  const bool has_g_idx = b_g_idx.numel() > 0;  // vLLM passes an empty tensor for layers without act-order
  const bool act_order_layout = has_g_idx && !use_exllama;
  if (has_g_idx) {
    args.tensor(b_g_idx, "b_g_idx", at::kInt, 1, a, "a");
    if (b_g_idx.size(0) != layer.k)
      args.fail("b_g_idx",
                fmt_message("must have K = %d entries (one per input row), got %lld", layer.k, ll(b_g_idx.size(0))));
  }
  if (!act_order_layout) {
    if (layer.k % layer.groups != 0)
      args.fail(
          "b_gptq_scales",
          fmt_message("%d groups (rows) do not divide K = %d: without act-order (or after gptq_shuffle) every group "
                      "has K / groups rows",
                      layer.groups, layer.k));
    const int group_size = layer.k / layer.groups;
    if (group_size % 8 != 0)
      args.fail("b_gptq_scales",
                fmt_message("K / groups = %d rows per group is not a multiple of 8 (a packed word of 8 "
                            "rows must not straddle two groups)",
                            group_size));
    w.group_size = group_size;
  }

  const c10::cuda::CUDAGuard guard(a.device());
  const cudaStream_t stream = current_stream(a);
  if (call.m == 0) return at::empty(call.out_shape, a.options());

  if (act_order_layout) {
    const at::Tensor buffer =
        PreparedLayouts::instance().find_or_prepare(args, b_q_weight, w.ldq, b_g_idx, layer, stream);
    const opt4gptq::PreparedActOrder view = act_order_view(buffer.data_ptr(), layer.k, layer.n, layer.groups);
    w.act_order = &view;
    w.qweight = nullptr;
    w.ldq = 0;
    w.group_size = -1;  // the prepared word_group says which group each word is in
    return run_gemm(args, w, call, a, Kernel::kAuto, stream);
  }
  if (has_g_idx) {
    // Shuffled act-order layer: sorted row i of b_q_weight multiplies column b_g_idx[i] of A.
    const at::Tensor perm = b_g_idx.is_contiguous() ? b_g_idx : b_g_idx.contiguous();
    Call sorted = call;
    sorted.a2 = at::empty({static_cast<std::int64_t>(call.m), static_cast<std::int64_t>(layer.k)}, a.options());
    check_status(args, gather_columns(call.a2.data_ptr(), layer.k, static_cast<const std::int32_t*>(perm.data_ptr()),
                                      call.m, layer.k, sorted.a2.data_ptr(), element_type(a), stream));
    return run_gemm(args, w, sorted, a, Kernel::kAuto, stream);
  }
  return run_gemm(args, w, call, a, Kernel::kAuto, stream);
}

/// vLLM's gptq_shuffle, in place, once per layer at load time. With an empty q_perm nothing changes: the kernels read
/// the checkpoint layout as saved (vLLM's own shuffle also re-interleaves the nibbles of every word; this one does
/// not). With q_perm = argsort(g_idx), row i of the result is row q_perm[i] of the input (python/README.md gives the
/// bytes). Synchronizes once to check that q_perm is a permutation; not capturable (a load-time op).
void gptq_shuffle(const at::Tensor& q_weight, const at::Tensor& q_perm, std::int64_t bit) {
  const Args args("opt4gptq::gptq_shuffle");
  args.bits(bit);
  args.tensor(q_weight, "q_weight", at::kInt, 2, q_weight, "q_weight");
  const std::int64_t k64 = q_weight.size(0) * 8, n64 = q_weight.size(1);
  if (k64 < 8) args.fail("q_weight", "must have at least one row (8 input features)");
  if (n64 < 1) args.fail("q_weight", "must have at least one column");
  const int k = args.as_int(k64, "q_weight", "K"), n = args.as_int(n64, "q_weight", "N");
  const std::int64_t ldq = args.row_stride(q_weight, "q_weight");
  if (q_perm.numel() == 0) return;  // no act-order: the layout as saved is what the kernels read

  args.tensor(q_perm, "q_perm", at::kInt, 1, q_weight, "q_weight");
  if (q_perm.size(0) != k)
    args.fail("q_perm",
              fmt_message("must have K = q_weight.size(0) * 8 = %d entries, got %lld", k, ll(q_perm.size(0))));
  const c10::cuda::CUDAGuard guard(q_weight.device());
  const cudaStream_t stream = current_stream(q_weight);
  if (capturing(args, stream))
    args.fail("q_weight",
              "gptq_shuffle is a load-time op (it synchronizes to check q_perm) and cannot be captured "
              "into a CUDA graph");
  const at::Tensor perm = q_perm.is_contiguous() ? q_perm : q_perm.contiguous();
  const at::Tensor sorted = std::get<0>(perm.to(at::kLong).sort());
  if (!sorted.equal(at::arange(static_cast<std::int64_t>(k), sorted.options())))
    args.fail("q_perm", fmt_message("must be a permutation of [0, K) with K = %d (vLLM passes argsort(g_idx))", k));
  const at::Tensor shuffled = at::empty({k / 8, static_cast<std::int64_t>(n)}, q_weight.options());
  check_status(args, permute_rows(static_cast<const std::int32_t*>(q_weight.data_ptr()), ldq == 0 ? n : ldq,
                                  static_cast<const std::int32_t*>(perm.data_ptr()), k, n,
                                  static_cast<std::int32_t*>(shuffled.data_ptr()), stream));
  q_weight.copy_(shuffled);
}

/// The library's act-order preparation: a uint8 buffer holding the rows sorted by group (padded), the permutation,
/// the group of each word and a header. Synchronizes once, to report a g_idx entry outside [0, num_groups).
at::Tensor prepare_act_order_op(const at::Tensor& qweight, const at::Tensor& g_idx, std::int64_t num_groups) {
  const Args args("opt4gptq::prepare_act_order");
  args.tensor(qweight, "qweight", at::kInt, 2, qweight, "qweight");
  const std::int64_t k64 = qweight.size(0) * 8, n64 = qweight.size(1);
  if (k64 < 8) args.fail("qweight", "must have at least one row (8 input features)");
  if (n64 < 8 || n64 % 8 != 0)
    args.fail("qweight", fmt_message("N = %lld columns: must be a positive multiple of 8", ll(n64)));
  const int k = args.as_int(k64, "qweight", "K"), n = args.as_int(n64, "qweight", "N");
  const std::int64_t ldq = args.row_stride(qweight, "qweight");
  args.tensor(g_idx, "g_idx", at::kInt, 1, qweight, "qweight");
  if (g_idx.size(0) != k)
    args.fail("g_idx", fmt_message("must have K = qweight.size(0) * 8 = %d entries, got %lld", k, ll(g_idx.size(0))));
  if (num_groups < 1)
    args.fail("num_groups", fmt_message("must be >= 1 (rows of scales and qzeros), got %lld", ll(num_groups)));
  const int groups = args.as_int(num_groups, "num_groups", "num_groups");

  const c10::cuda::CUDAGuard guard(qweight.device());
  const cudaStream_t stream = current_stream(qweight);
  if (capturing(args, stream))
    args.fail("qweight",
              "prepare_act_order is a load-time op (it synchronizes to check g_idx) and cannot be captured "
              "into a CUDA graph");
  const std::size_t bytes = act_order_buffer_bytes(k, n, groups);
  at::Tensor buffer = at::empty({static_cast<std::int64_t>(bytes)}, qweight.options().dtype(at::kByte));
  if (!aligned(buffer.data_ptr(), 256)) args.fail("qweight", "internal: the prepared buffer is not 256-byte aligned");
  const at::Tensor g = g_idx.is_contiguous() ? g_idx : g_idx.contiguous();
  opt4gptq::PreparedActOrder prepared;
  check_status(args, prepare_act_order(static_cast<const std::int32_t*>(qweight.data_ptr()), ldq,
                                       static_cast<const std::int32_t*>(g.data_ptr()), k, n, groups, buffer.data_ptr(),
                                       bytes, stream, &prepared));
  const opt4gptq::Status valid = check_act_order(prepared, stream);
  if (valid.code == opt4gptq::StatusCode::kInvalidData)
    args.fail("g_idx", fmt_message("an entry is outside [0, num_groups) with num_groups = %d", groups));
  check_status(args, valid);
  return buffer;
}

/// The native op, for engines that keep their own layer state and for the ablation: any kernel by name.
///   a [..., K] fp16 or bf16 (the output's type; bf16 runs the kernel's bf16 build, check_kernel_for_dtype());
///   qweight [K/8, N] int32 (the checkpoint layout) or None with act_order (a prepare_act_order buffer); qzeros
///   [G, N/8]; scales [G, N] fp16 or bf16; group_size -1 or a positive multiple of 8 (without act-order G must be
///   K / group_size, or 1 for -1).
at::Tensor gemm_op(const at::Tensor& a, const std::optional<at::Tensor>& qweight, const at::Tensor& qzeros,
                   const at::Tensor& scales, const std::optional<at::Tensor>& act_order, std::int64_t group_size,
                   bool use_v2_format, const std::string& kernel_name_arg) {
  const Args args("opt4gptq::gemm");
  Kernel kernel = Kernel::kAuto;
  if (!parse_kernel(kernel_name_arg.c_str(), &kernel)) {
    std::string names;
    for (Kernel k : kAllKernels) names += std::string(names.empty() ? "" : ", ") + kernel_name(k);
    args.fail("kernel_name", fmt_message("must be one of %s; got '%s'", names.c_str(), kernel_name_arg.c_str()));
  }
  check_activations(args, "a", a);
  check_kernel_for_dtype(args, kernel, a);
  const bool has_qweight = qweight.has_value() && qweight->defined();
  const bool has_act_order = act_order.has_value() && act_order->defined();
  if (has_qweight && has_act_order)
    args.fail("qweight", "must be None when act_order is given (the prepared buffer holds the sorted weights)");
  if (!has_qweight && !has_act_order)
    args.fail("qweight", "must be given unless act_order (a buffer from prepare_act_order) is");
  const Names names{"a", "qweight", "qzeros", "scales"};
  Layer layer = describe_layer(args, names, a, has_qweight ? &*qweight : nullptr, qzeros, scales, use_v2_format);
  const Call call = describe_call(args, "a", a, layer.k, layer.n, has_qweight ? "qweight.size(0) * 8" : "K");
  opt4gptq::QuantizedWeights& w = layer.weights;

  if (group_size != -1 && (group_size < 8 || group_size % 8 != 0 || group_size > INT_MAX))
    args.fail("group_size",
              fmt_message("must be -1 (one group) or a positive multiple of 8, got %lld", ll(group_size)));
  w.group_size = static_cast<int>(group_size);
  if (!has_act_order) {
    if (group_size > 0 && layer.k % group_size != 0)
      args.fail("group_size", fmt_message("K = %d is not a multiple of group_size = %lld (a layer whose groups are not "
                                          "runs of group_size rows goes through prepare_act_order)",
                                          layer.k, ll(group_size)));
    const int expected = group_size > 0 ? static_cast<int>(layer.k / group_size) : 1;
    if (layer.groups != expected)
      args.fail("scales",
                fmt_message("must have K / group_size = %d rows (one per group), got %d", expected, layer.groups));
  }

  opt4gptq::PreparedActOrder view;
  if (has_act_order) {
    const at::Tensor& buffer = *act_order;
    args.tensor(buffer, "act_order", at::kByte, 1, a, "a");
    const std::size_t bytes = act_order_buffer_bytes(layer.k, layer.n, layer.groups);
    if (static_cast<std::size_t>(buffer.numel()) < bytes)
      args.fail(
          "act_order",
          fmt_message("holds %lld bytes; a layer of K = %d, N = %d and %d groups needs %llu: prepared "
                      "for another layer?",
                      ll(buffer.numel()), layer.k, layer.n, layer.groups, static_cast<unsigned long long>(bytes)));
    if (!aligned(buffer.data_ptr(), 256))
      args.fail("act_order", "must be 256-byte aligned: pass the tensor prepare_act_order returned, not a view");
    view = act_order_view(buffer.data_ptr(), layer.k, layer.n, layer.groups);
    w.act_order = &view;
  }

  const c10::cuda::CUDAGuard guard(a.device());
  const cudaStream_t stream = current_stream(a);
  if (call.m == 0) return at::empty(call.out_shape, a.options());
  return run_gemm(args, w, call, a, kernel, stream);
}

std::string choose_kernel_op(std::int64_t m, std::int64_t k, std::int64_t n, std::int64_t num_groups, bool act_order,
                             const std::string& dtype) {
  const Args args("opt4gptq::choose_kernel");
  opt4gptq::ElementType type = opt4gptq::ElementType::kFp16;
  if (dtype == "bfloat16" || dtype == "bf16")
    type = opt4gptq::ElementType::kBf16;
  else if (dtype != "float16" && dtype != "half" && dtype != "fp16")
    args.fail("dtype",
              fmt_message("must be 'float16' or 'bfloat16' (the dtype of the activations), got '%s'", dtype.c_str()));
  opt4gptq::Status s;
  const Kernel kernel =
      resolve_kernel(Kernel::kAuto, args.as_int(m, "m", "m"), args.as_int(k, "k", "k"), args.as_int(n, "n", "n"),
                     args.as_int(num_groups, "num_groups", "num_groups"), act_order, type, &s);
  check_status(args, s);
  return kernel_name(kernel);
}

std::int64_t act_order_buffer_bytes_op(std::int64_t k, std::int64_t n, std::int64_t num_groups) {
  const Args args("opt4gptq::act_order_buffer_bytes");
  return static_cast<std::int64_t>(act_order_buffer_bytes(args.as_int(k, "k", "k"), args.as_int(n, "n", "n"),
                                                          args.as_int(num_groups, "num_groups", "num_groups")));
}

std::int64_t clear_cache_op() { return PreparedLayouts::instance().clear() + StreamWorkspaces::instance().clear(); }
std::int64_t cache_size_op() { return PreparedLayouts::instance().size(); }

}  // namespace
}  // namespace opt4gptq_torch

TORCH_LIBRARY(opt4gptq, m) {
  m.def(
      "gptq_gemm(Tensor a, Tensor b_q_weight, Tensor b_gptq_qzeros, Tensor b_gptq_scales, Tensor b_g_idx, "
      "bool use_exllama, bool use_v2_format, int bit) -> Tensor");
  m.def("gptq_shuffle(Tensor(a!) q_weight, Tensor q_perm, int bit) -> ()");
  m.def("prepare_act_order(Tensor qweight, Tensor g_idx, int num_groups) -> Tensor");
  m.def(
      "gemm(Tensor a, Tensor? qweight, Tensor qzeros, Tensor scales, Tensor? act_order, int group_size, "
      "bool use_v2_format, str kernel_name=\"auto\") -> Tensor");
  m.def("choose_kernel(int m, int k, int n, int num_groups, bool act_order, str dtype=\"float16\") -> str",
        &opt4gptq_torch::choose_kernel_op);
  m.def("act_order_buffer_bytes(int k, int n, int num_groups) -> int", &opt4gptq_torch::act_order_buffer_bytes_op);
  m.def("clear_cache() -> int", &opt4gptq_torch::clear_cache_op);
  m.def("cache_size() -> int", &opt4gptq_torch::cache_size_op);
}

TORCH_LIBRARY_IMPL(opt4gptq, CUDA, m) {
  m.impl("gptq_gemm", &opt4gptq_torch::gptq_gemm);
  m.impl("gptq_shuffle", &opt4gptq_torch::gptq_shuffle);
  m.impl("prepare_act_order", &opt4gptq_torch::prepare_act_order_op);
  m.impl("gemm", &opt4gptq_torch::gemm_op);
}

// `import opt4gptq._C` loads this library, which runs the registrations above; the module itself is empty.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT,
                                      "_C",
                                      "opt4gptq's PyTorch ops: torch.ops.opt4gptq",
                                      -1,
                                      nullptr,
                                      nullptr,
                                      nullptr,
                                      nullptr,
                                      nullptr};
  return PyModule_Create(&module);
}
