#pragma once
/// @file
/// Host API of the kernels: `launch<Gemm>(problem, stream)` and its forms with a workspace or a precomputed plan, and
/// the workspace size query. `launch` validates, plans (host/plan.hpp), zero-fills C on the same stream when the
/// ReducePolicy accumulates into it, launches, and returns; it never synchronizes. No call allocates, throws or
/// prints.

#include <cstdint>

#include "../detail/checks.hpp"
#include "../kernel/gemm_kernel.hpp"
#include "../problem.hpp"
#include "../status.hpp"
#include "device_info.hpp"
#include "plan.hpp"
#include "validate.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

namespace detail {

/// Launches a validated problem under a plan made for it.
template <class Gemm>
Status launch_planned(const Plan& plan, const GemmProblem& p, void* workspace, std::size_t workspace_bytes,
                      platform::stream_t stream) {
  if (p.m == 0) return Status::success();  // nothing to compute, nothing to write, nothing launched
  if (plan.workspace_bytes > 0) {
    if (workspace == nullptr)
      return null("workspace: null, and this ReducePolicy needs one for this problem (size: workspace_bytes<Gemm>)");
    if (workspace_bytes < plan.workspace_bytes)
      return Status::error(StatusCode::kWorkspaceTooSmall,
                           "workspace_bytes: smaller than workspace_bytes<Gemm>(problem) for this problem");
    if (!aligned_to(workspace, 16)) return misaligned("workspace: must be 16-byte aligned");
  }
  if (plan.zero_fill_output) {
    const platform::native_error_t e =
        platform::memset_2d_async(p.c, p.ldc_or_dense() * sizeof(half), p.weights->n * sizeof(half), p.m, stream);
    if (e != platform::kNativeSuccess) return runtime_error(e);
  }
  const KernelParams params = make_params(p, plan, workspace);
  return with_entry_point<Gemm>(plan.rows_per_block, plan.act_order, [&](auto kRows, auto kActOrder) {
    constexpr int R = decltype(kRows)::value;
    constexpr bool A = decltype(kActOrder)::value;
    const dim3 grid(plan.grid_x, plan.grid_y, plan.grid_z);
    constexpr std::size_t kDynamicShared = Gemm::template dynamic_shared_bytes<R>();
    if constexpr (kDynamicShared > 0) {
      int device = 0;
      const platform::native_error_t e = platform::current_device(&device);
      if (e != platform::kNativeSuccess) return runtime_error(e);
      const Status s = prepare_entry_point<Gemm, R, A>(device);
      if (!s.ok()) return s;
    }
    entry_point<Gemm, R, A>()<<<grid, dim3(Gemm::kThreads), kDynamicShared, stream>>>(params);
    const platform::native_error_t e = platform::last_error();
    if (e != platform::kNativeSuccess) return launch_failed(e);
    return Status::success();
  });
}

/// A plan from plan<Gemm>() for this problem's shape: same kernel, M, N, rows of packed weights and act-order, and
/// a grid that covers them (a plan edited by hand could otherwise leave outputs unwritten).
template <class Gemm>
Status check_plan(const Plan& plan, const GemmProblem& p) {
  const QuantizedWeights& w = *p.weights;
  if (plan.kernel != &KernelIdentity<Gemm>::tag) return invalid("plan: made for another kernel (plan<Gemm>())");
  if (plan.m != p.m || plan.n != w.n || plan.k_rows != w.packed_rows() || plan.act_order != (w.act_order != nullptr))
    return invalid("plan: made for another problem shape (m, n, k or act-order differ); plan this problem");
  if (p.m == 0) return Status::success();
  const bool covers = plan.rows_per_block == Gemm::rows_per_block(p.m) &&
                      static_cast<std::int64_t>(plan.grid_x) * Gemm::TileShape::kBlockCols >= w.n &&
                      static_cast<std::int64_t>(plan.grid_y) * plan.rows_per_block >= p.m &&
                      plan.rows_of_k_per_block > 0 && plan.rows_of_k_per_block % Gemm::TileShape::kStageRows == 0 &&
                      static_cast<std::int64_t>(plan.grid_z) * plan.rows_of_k_per_block >= plan.k_rows &&
                      plan.grid_y <= kMaxGridYZ && plan.grid_z <= kMaxGridYZ;
  if (!covers) return invalid("plan: inconsistent (edited after plan<Gemm>()?); plan this problem again");
  return Status::success();
}

}  // namespace detail

/// Computes C = A · dequant(W) on `stream` under a plan made by plan<Gemm>() for a problem of this shape (the
/// pointers may differ from call to call). Validates the problem and checks the plan; nothing is launched when
/// either is wrong. See the four-argument launch() for the rest.
/// @ingroup host_api
template <class Gemm>
Status launch(const Plan& plan, const GemmProblem& problem, void* workspace, std::size_t workspace_bytes,
              platform::stream_t stream) {
  Status s = validate<Gemm>(problem);
  if (!s.ok()) return s;
  if constexpr (Gemm::kPoliciesValid) {
    s = detail::check_plan<Gemm>(plan, problem);
    if (!s.ok()) return s;
    return detail::launch_planned<Gemm>(plan, problem, workspace, workspace_bytes, stream);
  }
  return s;
}

/// Computes C = A · dequant(W) on `stream`. Validates first (nothing is launched when the problem is invalid), plans,
/// zero-fills C on the same stream when the grid accumulates into it, and returns without synchronizing. A launch
/// error (e.g. no device) comes back as kLaunchFailed with the runtime's message; errors of the kernel itself surface
/// at the caller's next synchronization, as with any asynchronous launch. M = 0 is a successful no-op.
/// `workspace` (device memory of `workspace_bytes`) is needed only by ReducePolicies that ask for one (see
/// workspace_bytes<Gemm>(); ReduceSharedSerial with more than one K block): clear it once with clear_workspace()
/// after allocating it, then reuse it for every call on the stream.
/// @ingroup host_api
template <class Gemm>
Status launch(const GemmProblem& problem, void* workspace, std::size_t workspace_bytes, platform::stream_t stream) {
  Plan p;
  const Status s = plan<Gemm>(problem, &p);
  if (!s.ok()) return s;
  if constexpr (Gemm::kPoliciesValid)
    return detail::launch_planned<Gemm>(p, problem, workspace, workspace_bytes, stream);
  return s;
}

/// launch() for policies that need no workspace (all shipped presets but the deterministic one). A ReducePolicy that
/// declares `workspace_bytes` is a compile error here: whether it needs a workspace depends on the grid, and so on the
/// GPU's size, so a call that works on one GPU could fail on a smaller one.
/// @ingroup host_api
template <class Gemm>
Status launch(const GemmProblem& problem, platform::stream_t stream) {
  static_assert(
      !traits::has_workspace_bytes<typename Gemm::ReducePolicy>::value,
      "launch(problem, stream): this ReducePolicy needs a workspace (it declares workspace_bytes): call "
      "launch(problem, workspace, workspace_bytes, stream) with a workspace of workspace_bytes<Gemm>() bytes");
  return launch<Gemm>(problem, nullptr, 0, stream);
}

/// Device workspace `launch<Gemm>` needs for `problem` (0 for most policies): plan<Gemm>(problem).workspace_bytes.
/// Depends on the shape of the problem and the device; an engine allocates the largest over its layers and M once.
/// @ingroup host_api
template <class Gemm>
Status workspace_bytes(const GemmProblem& problem, std::size_t* bytes) {
  if (bytes == nullptr) return detail::null("bytes: null");
  Plan p;
  const Status s = plan<Gemm>(problem, &p);
  *bytes = s.ok() ? p.workspace_bytes : 0;
  return s;
}

/// Zeroes a newly allocated workspace: its head (kWorkspaceCounterBytes, policy/reduce.hpp) holds the split-K
/// counters, which must start at zero, and every launch leaves it zero; the rest is scratch.
/// @ingroup host_api
inline Status clear_workspace(void* workspace, std::size_t bytes, platform::stream_t stream) {
  if (workspace == nullptr && bytes > 0) return detail::null("workspace: null");
  if (bytes == 0) return Status::success();
  const platform::native_error_t e = platform::memset_2d_async(workspace, bytes, bytes, 1, stream);
  if (e != platform::kNativeSuccess) return detail::runtime_error(e);
  return Status::success();
}

OPT4GPTQ_NAMESPACE_END
