// PyTorch binding of opt4gptq, as an engine uses it: GPTQ checkpoint tensors in, fp16 activations in, fp16 out, on
// PyTorch's current CUDA stream. Built with torch.utils.cpp_extension (see opt4gptq_linear.py).
//
//   gptq_prepare(qweight, g_idx, num_groups) -> uint8 tensor   once per act-order layer, at load time
//   gptq_gemm(a, qweight, qzeros, scales, g_idx, group_size, use_v2_format, prepared=None, kernel="opt4gptq")

#include <torch/extension.h>

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <opt4gptq/opt4gptq.hpp>

#include <map>
#include <mutex>
#include <string>

namespace {

void check_status(const opt4gptq::Status& s, const char* what) {
  TORCH_CHECK(s.ok(), "opt4gptq ", what, ": ", s.message);
}

void check_tensor(const torch::Tensor& t, const char* name, at::ScalarType type, int dims) {
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor");
  TORCH_CHECK(t.scalar_type() == type, name, " must be ", type, ", got ", t.scalar_type());
  TORCH_CHECK(t.dim() == dims, name, " must have ", dims, " dimensions, got ", t.dim());
}

void check_same_device(const torch::Tensor& t, const char* name, const torch::Tensor& ref, const char* ref_name) {
  TORCH_CHECK(t.device() == ref.device(), name, ": must be on the same device as ", ref_name, " (", ref.device(),
              "), got ", t.device());
}

/// The row stride to pass to opt4gptq for a 2-D tensor [rows, cols]: its stride(0), or 0 (= dense rows) when it has a
/// single row, whose stride(0) means nothing (GPTQModel holds a group-size -1 layer's scales [1, n] with stride
/// (1, 1)).
/// Columns must be contiguous (stride(1) == 1, meaningless for a single column); several rows must not overlap, and a
/// stride(0) of 0 (a broadcast) would read as "dense" to opt4gptq.
int64_t row_stride(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.size(1) <= 1 || t.stride(1) == 1, name, ": rows must be contiguous (stride(1) == 1), got strides ",
              t.strides());
  if (t.size(0) <= 1) return 0;
  TORCH_CHECK(t.stride(0) >= t.size(1), name, ": rows must not overlap (stride(0) >= size(1) = ", t.size(1),
              "), got strides ", t.strides());
  return t.stride(0);
}

torch::Tensor gptq_prepare(torch::Tensor qweight, torch::Tensor g_idx, int64_t num_groups) {
  check_tensor(qweight, "qweight", torch::kInt32, 2);
  check_tensor(g_idx, "g_idx", torch::kInt32, 1);
  check_same_device(g_idx, "g_idx", qweight, "qweight");
  const int64_t ldq = row_stride(qweight, "qweight");
  const c10::cuda::CUDAGuard guard(qweight.device());
  const int k = static_cast<int>(qweight.size(0) * 8), n = static_cast<int>(qweight.size(1));
  TORCH_CHECK(g_idx.size(0) == k, "g_idx must have qweight.size(0) * 8 = ", k, " entries, got ", g_idx.size(0));
  const auto g = g_idx.contiguous();
  const std::size_t bytes = opt4gptq::act_order_buffer_bytes(k, n, static_cast<int>(num_groups));
  auto buffer = torch::empty({static_cast<int64_t>(bytes)}, qweight.options().dtype(torch::kUInt8));
  opt4gptq::PreparedActOrder prepared;
  const auto stream = at::cuda::getCurrentCUDAStream();
  check_status(opt4gptq::prepare_act_order(qweight.data_ptr<int32_t>(), ldq, g.data_ptr<int32_t>(), k, n,
                                           static_cast<int>(num_groups), buffer.data_ptr(), bytes, stream, &prepared),
               "prepare_act_order");
  // Load time: synchronize once to report a bad g_idx here rather than as NaN outputs later.
  check_status(opt4gptq::check_act_order(prepared, stream), "check_act_order");
  return buffer;
}

/// Workspace of the deterministic kernel, per device: grown on demand, cleared once when allocated (its counters must
/// start at zero and every launch leaves them zero). One per device is enough for calls on one stream at a time.
torch::Tensor& workspace_for(const torch::Device& device, std::size_t bytes) {
  static std::mutex mutex;
  static std::map<int, torch::Tensor> workspaces;
  std::lock_guard<std::mutex> lock(mutex);
  torch::Tensor& ws = workspaces[device.index()];
  if (!ws.defined() || static_cast<std::size_t>(ws.numel()) < bytes)
    ws = torch::zeros({static_cast<int64_t>(std::max<std::size_t>(bytes, 1) * 2)},
                      torch::TensorOptions().device(device).dtype(torch::kUInt8));
  return ws;
}

template <class Gemm>
void run(const opt4gptq::GemmProblem& p, const torch::Device& device, cudaStream_t stream) {
  std::size_t bytes = 0;
  check_status(opt4gptq::workspace_bytes<Gemm>(p, &bytes), "workspace_bytes");
  void* ws = bytes ? workspace_for(device, bytes).data_ptr() : nullptr;
  check_status(opt4gptq::launch<Gemm>(p, ws, bytes, stream), "launch");
}

torch::Tensor gptq_gemm(torch::Tensor a, torch::Tensor qweight, torch::Tensor qzeros, torch::Tensor scales,
                        torch::Tensor g_idx, int64_t group_size, bool use_v2_format,
                        c10::optional<torch::Tensor> prepared, std::string kernel) {
  TORCH_CHECK(a.is_cuda() && a.scalar_type() == torch::kFloat16, "a must be a CUDA float16 tensor");
  check_tensor(qweight, "qweight", torch::kInt32, 2);
  check_tensor(qzeros, "qzeros", torch::kInt32, 2);
  check_tensor(scales, "scales", torch::kFloat16, 2);
  TORCH_CHECK(a.dim() >= 1, "a: must have at least one dimension");
  check_same_device(qweight, "qweight", a, "a");
  check_same_device(qzeros, "qzeros", a, "a");
  check_same_device(scales, "scales", a, "a");
  if (g_idx.defined() && g_idx.numel() > 0) check_same_device(g_idx, "g_idx", a, "a");
  if (prepared.has_value() && prepared->defined()) check_same_device(*prepared, "prepared", a, "a");
  const c10::cuda::CUDAGuard guard(a.device());
  const int64_t k = qweight.size(0) * 8, n = qweight.size(1);
  TORCH_CHECK(a.size(-1) == k, "a's last dimension (", a.size(-1), ") must be qweight.size(0) * 8 = ", k);
  TORCH_CHECK(!g_idx.defined() || g_idx.numel() == 0 || g_idx.numel() == k, "g_idx must be empty or have ", k,
              " entries");
  TORCH_CHECK(scales.size(0) >= 1, "scales: must have at least one row (one per group), got ", scales.size(0));
  TORCH_CHECK(scales.size(1) == n, "scales: must have n = qweight.size(1) = ", n, " columns, got ", scales.size(1));
  TORCH_CHECK(qzeros.size(1) == n / 8, "qzeros: must have n / 8 = ", n / 8, " columns (8 zero points per int32), got ",
              qzeros.size(1));
  TORCH_CHECK(qzeros.size(0) == scales.size(0), "qzeros: must have as many rows (groups) as scales (", scales.size(0),
              "), got ", qzeros.size(0));
  // Row strides; 0 (= dense) for a single row, whose stride(0) is meaningless (a [1, n] scales of stride (1, 1)).
  const int64_t ldz = row_stride(qzeros, "qzeros");
  const int64_t lds = row_stride(scales, "scales");
  const auto a2 = a.reshape({-1, k}).contiguous();  // dense rows: lda stays 0 (also right for a single row)
  const int64_t m = a2.size(0);
  auto out_shape = a.sizes().vec();
  out_shape.back() = n;
  auto c = torch::empty({m, n}, a.options());
  if (m == 0) return c.reshape(out_shape);

  // The layer (rebuilt per call here: the binding keeps no state; an engine builds it once per layer at load time).
  opt4gptq::QuantizedWeights w;
  w.k = static_cast<int>(k);
  w.n = static_cast<int>(n);
  w.qzeros = qzeros.data_ptr<int32_t>();
  w.ldz = ldz;
  w.scales = reinterpret_cast<const opt4gptq::half*>(scales.data_ptr<at::Half>());
  w.lds = lds;
  w.group_size = static_cast<int>(group_size);
  w.num_groups = static_cast<int>(scales.size(0));
  w.zero_format = use_v2_format ? opt4gptq::ZeroPointFormat::kGptqV2 : opt4gptq::ZeroPointFormat::kGptqV1;
  opt4gptq::PreparedActOrder layout;
  if (prepared.has_value() && prepared->defined()) {
    TORCH_CHECK(prepared->is_cuda() && prepared->scalar_type() == torch::kUInt8,
                "prepared must come from gptq_prepare");
    TORCH_CHECK(static_cast<std::size_t>(prepared->numel()) >= opt4gptq::act_order_buffer_bytes(w.k, w.n, w.num_groups),
                "prepared is too small for this layer (prepared for another shape?)");
    layout = opt4gptq::act_order_view(prepared->data_ptr(), w.k, w.n, w.num_groups);
    w.act_order = &layout;
  } else {
    w.ldq = row_stride(qweight, "qweight");
    w.qweight = qweight.data_ptr<int32_t>();
  }
  // The call: M rows of activations and outputs, on that layer.
  opt4gptq::GemmProblem p;
  p.m = static_cast<int>(m);
  p.a = reinterpret_cast<const opt4gptq::half*>(a2.data_ptr<at::Half>());
  p.c = reinterpret_cast<opt4gptq::half*>(c.data_ptr<at::Half>());
  p.weights = &w;
  const auto stream = at::cuda::getCurrentCUDAStream();
  if (kernel == "opt4gptq")
    run<opt4gptq::presets::Opt4Gptq>(p, a.device(), stream);
  else if (kernel == "baseline")
    run<opt4gptq::presets::Baseline>(p, a.device(), stream);
  else if (kernel == "deterministic")
    run<opt4gptq::presets::Deterministic>(p, a.device(), stream);
  else
    TORCH_CHECK(false, "kernel must be \"opt4gptq\", \"baseline\" or \"deterministic\", got \"", kernel, "\"");
  return c.reshape(out_shape);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "opt4gptq: 4-bit GPTQ dequant-GEMM";
  m.def("gptq_prepare", &gptq_prepare, "Sort an act-order layer's rows by group (once, at load time)",
        pybind11::arg("qweight"), pybind11::arg("g_idx"), pybind11::arg("num_groups"));
  m.def("gptq_gemm", &gptq_gemm, "C = A · dequant(W) for GPTQ checkpoint tensors", pybind11::arg("a"),
        pybind11::arg("qweight"), pybind11::arg("qzeros"), pybind11::arg("scales"), pybind11::arg("g_idx"),
        pybind11::arg("group_size"), pybind11::arg("use_v2_format"), pybind11::arg("prepared") = pybind11::none(),
        pybind11::arg("kernel") = "opt4gptq");
}
