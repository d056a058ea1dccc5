#pragma once
/// @file
/// DequantCublas: the prefill path (M in the hundreds to thousands) as a kernel the dispatcher can choose, for fp16
/// and bf16 calls alike (the call's dtype decides at run time: both halves are one kernel launch or cuBLAS call
/// either way). The layer's weights are dequantized to dense `W[k][n]` of the call's type in the caller's workspace
/// (host/dequantize.hpp), past its head (kWorkspaceCounterBytes, where the split-K kernels keep their counters, which
/// must stay zero), and cuBLAS multiplies (host/cublas.hpp: fp16 or bf16 in and out, fp32 accumulation). The dense
/// weights are left where they are: the bytes past the head are scratch under the workspace contract
/// (policy/reduce.hpp), so one workspace still serves every layer and kernel in sequence. (Until 2026-12-03 the path
/// cleared them again, writing k·n·2 bytes a second time: a third of its memory traffic beside the dequantization
/// and the GEMM's read of W; without it the path takes 0.77x the time at M = 256 on the H200.) At large M the
/// dequantization is paid once per call however many rows there are, which is why it wins there (vLLM switches to it
/// above M = 50). NVIDIA only, with `OPT4GPTQ_WITH_CUBLAS=1`; AMD (Debian ships no hipBLAS) runs the library's own
/// kernels at every M.
/// @ingroup host_api

#include <cstddef>
#include <cstdint>

#include "../detail/checks.hpp"
#include "../dispatch_table.hpp"
#include "../platform.hpp"
#include "../policy/reduce.hpp"
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

  /// Workspace for the dense weights of a layer: the workspace's head (left untouched), then k x n 16-bit elements,
  /// rounded up to kAlign.
  static constexpr std::size_t workspace_bytes(const QuantizedWeights& w) {
    return kWorkspaceCounterBytes +
           (static_cast<std::size_t>(w.k) * static_cast<std::size_t>(w.n) * 2 + kAlign - 1) / kAlign * kAlign;
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

  /// Validates the call and the plan, then enqueues on `stream`: the dequantization into the workspace (past its
  /// head) and the GEMM. Never synchronizes.
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
                           "workspace_bytes: smaller than the prefill path needs (the workspace's head, 1 MiB, then k "
                           "x n elements rounded up to 256)");
    if (!detail::aligned_to(workspace, 16)) return detail::misaligned("workspace: must be 16-byte aligned");
    void* dense = static_cast<char*>(workspace) + kWorkspaceCounterBytes;
    s = dequantize(w, dense, w.n, p.dtype, stream);
    if (!s.ok()) return s;
    return cublas_gemm(p.m, w.n, w.k, p.a, p.lda_or_dense(), dense, w.n, p.c, p.ldc_or_dense(), p.dtype, stream);
  }
};

OPT4GPTQ_NAMESPACE_END
#endif  // OPT4GPTQ_WITH_CUBLAS
