#pragma once
/// @file
/// DequantCublas: the prefill path (M in the hundreds to thousands) as a kernel the dispatcher can choose, for fp16
/// and bf16 calls alike (the call's dtype decides at run time: both halves are one kernel launch or cuBLAS call
/// either way). The layer's weights are dequantized to dense `W[k][n]` of the call's type in the caller's workspace
/// (host/dequantize.hpp), cuBLAS multiplies (host/cublas.hpp: fp16 or bf16 in and out, fp32 accumulation), and the workspace is cleared again: the library's
/// workspace contract is that every launch leaves it all zero (the deterministic kernels' split-K counters, which
/// another call may place where W was, must start at zero), so one workspace serves every layer and kernel in
/// sequence. The clearing writes the k·n·2 bytes of W once more: about a third of the path's memory traffic beside
/// the dequantization and the GEMM's read of W, which matters at M = 256 and little at M = 4096. At large M the
/// dequantization is paid once per call however many rows there are, which is why it wins there (vLLM switches to
/// it above M = 50). NVIDIA only, with `OPT4GPTQ_WITH_CUBLAS=1`; AMD (Debian ships no hipBLAS) runs the library's
/// own kernels at every M.
/// @ingroup host_api

#include <cstddef>
#include <cstdint>

#include "../detail/checks.hpp"
#include "../dispatch_table.hpp"
#include "../platform.hpp"
#include "../problem.hpp"
#include "../status.hpp"
#include "../weights.hpp"
#include "cublas.hpp"
#include "dequantize.hpp"
#include "device_info.hpp"
#include "plan.hpp"

#if OPT4GPTQ_WITH_CUBLAS

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup host_api
/// The prefill path as a dispatcher kernel (host/dispatch_kernels.hpp's interface): dequantize into the workspace,
/// then cuBLAS on the caller's stream. Listed in the dispatcher's fp16 and bf16 kernel lists.
struct DequantCublas {
  static constexpr KernelChoice kChoice = KernelChoice::kDequantCublas;
  /// The workspace's alignment (W's rows start 256-byte aligned whatever n, as cuBLAS prefers).
  static constexpr std::size_t kAlign = 256;

  /// Workspace for the dense weights of a layer: k x n 16-bit elements, rounded up to kAlign.
  static constexpr std::size_t workspace_bytes(const QuantizedWeights& w) {
    return (static_cast<std::size_t>(w.k) * static_cast<std::size_t>(w.n) * 2 + kAlign - 1) / kAlign * kAlign;
  }

  /// What this path can run beyond check_problem(): the dequantize kernel's widths, and cuBLAS's int sizes.
  static Status validate(const GemmProblem& p) {
    Status s = check_problem(p);
    if (!s.ok()) return s;
    const QuantizedWeights& w = *p.weights;
    // W goes to the workspace, which is not known yet: check the layer's side of the layout here.
    s = detail::check_dequantize_layout(w, nullptr, w.n);
    if (!s.ok()) return s;
    constexpr std::int64_t kIntMax = 0x7fffffff;
    if (p.lda_or_dense() > kIntMax) return detail::invalid("problem.lda: past 2^31 - 1 elements (cuBLAS takes int)");
    if (p.ldc_or_dense() > kIntMax) return detail::invalid("problem.ldc: past 2^31 - 1 elements (cuBLAS takes int)");
    return Status::success();
  }

  /// The plan of a call of `m` rows on the layer: the workspace, and what it was made for (no grid: cuBLAS chooses).
  static Status plan_shape(int m, const QuantizedWeights& w, const DeviceInfo& /*device*/,
                           const PlanOptions& /*options*/, Plan* out) {
    Plan plan;
    plan.m = m;
    plan.n = w.n;
    plan.k_rows = w.packed_rows();
    plan.act_order = w.act_order != nullptr;
    plan.kernel = &detail::KernelIdentity<DequantCublas>::tag;
    plan.workspace_bytes = m > 0 ? workspace_bytes(w) : 0;
    *out = plan;
    return Status::success();
  }

  /// Validates the call and the plan, then enqueues on `stream`: the dequantization into the workspace, the GEMM,
  /// and the clearing of the workspace. Never synchronizes.
  static Status launch(const Plan& plan, const GemmProblem& p, void* workspace, std::size_t bytes,
                       platform::stream_t stream) {
    Status s = validate(p);
    if (!s.ok()) return s;
    const QuantizedWeights& w = *p.weights;
    if (plan.kernel != &detail::KernelIdentity<DequantCublas>::tag)
      return detail::invalid("plan: made for another kernel (plan this call again)");
    if (plan.m != p.m || plan.n != w.n || plan.k_rows != w.packed_rows() || plan.act_order != (w.act_order != nullptr))
      return detail::invalid("plan: made for another problem shape (m, n, k or act-order differ); plan this problem");
    if (p.m == 0) return Status::success();
    if (workspace == nullptr)
      return detail::null("workspace: null, and the prefill path needs one (the dense weights: k x n elements)");
    if (bytes < plan.workspace_bytes)
      return Status::error(StatusCode::kWorkspaceTooSmall,
                           "workspace_bytes: smaller than the prefill path needs (k x n elements, rounded up to 256)");
    if (!detail::aligned_to(workspace, 16)) return detail::misaligned("workspace: must be 16-byte aligned");
    void* dense = workspace;
    s = dequantize(w, dense, w.n, p.dtype, stream);
    if (!s.ok()) return s;
    s = cublas_gemm(p.m, w.n, w.k, p.a, p.lda_or_dense(), dense, w.n, p.c, p.ldc_or_dense(), p.dtype, stream);
    // Cleared whether the GEMM was enqueued or not: the next call on this workspace may need zeros where W is.
    const platform::native_error_t e =
        platform::memset_2d_async(dense, plan.workspace_bytes, plan.workspace_bytes, 1, stream);
    if (!s.ok()) return s;
    if (e != platform::kNativeSuccess) return detail::runtime_error(e);
    return Status::success();
  }
};

OPT4GPTQ_NAMESPACE_END
#endif  // OPT4GPTQ_WITH_CUBLAS
