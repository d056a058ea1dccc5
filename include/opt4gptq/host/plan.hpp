#pragma once
/// @file
/// Plan: how one kernel runs one problem on one device (rows of M per block, the grid and its K split, whether C is
/// zero-filled first, the workspace), computed once by plan<Gemm>() and used by both the workspace-size query and
/// the launch, so that no launch repeats the planning. An engine may keep a plan per (layer, M) and launch with it
/// (launch(plan, problem, ...), host/launch.hpp): the per-call cost is then the problem's checks and the launch.

#include <cstddef>
#include <type_traits>
#include <utility>

#include "../detail/checks.hpp"
#include "../kernel/gemm_kernel.hpp"
#include "../kernel/params.hpp"
#include "../kernel/scheduler.hpp"
#include "../policy/traits.hpp"
#include "../problem.hpp"
#include "../status.hpp"
#include "device_info.hpp"
#include "validate.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup host_api
struct Plan {
  int rows_per_block = 0;  ///< rows of M per block (1..8); 0 for M = 0 (nothing is launched)
  int grid_x = 0;          ///< column tiles
  int grid_y = 0;          ///< chunks of M
  int grid_z = 0;          ///< K blocks
  int rows_of_k_per_block = 0;
  bool zero_fill_output = false;    ///< the host API zero-fills C before the kernel
  std::size_t workspace_bytes = 0;  ///< device workspace the ReducePolicy needs for this grid
  // What the plan was made for: launch(plan, problem) rejects a problem that differs.
  int m = 0;
  int n = 0;
  int k_rows = 0;  ///< rows of packed weights: k, or the act-order layout's k_rows_max
  bool act_order = false;
  const void* kernel = nullptr;  ///< identifies the kernel type the plan is for
};

/// @ingroup host_api
/// What a caller may fix in a plan instead of letting the kernel's scheduler choose it.
struct PlanOptions {
  /// Rows of K per block (a positive multiple of the tile's kStageRows), or 0: the scheduler's choice, which depends
  /// on M and on the GPU's size. Fixed, the K split and so the order of the fp32 additions are the same for every M
  /// and every GPU (batch invariance; host/dispatcher.hpp), and no device query is needed.
  int rows_of_k_per_block = 0;
};

namespace detail {

/// Whether a scheduler can plan a grid for a K split the caller fixes (plan_grid_with_k_split).
template <class Scheduler, class = void>
struct scheduler_fixes_k_split : std::false_type {};
template <class Scheduler>
struct scheduler_fixes_k_split<
    Scheduler, std::void_t<decltype(Scheduler::plan_grid_with_k_split(0, 0, 0, 0, 0, static_cast<GridPlan*>(nullptr)))>>
    : std::true_type {};

/// One address per kernel type: a plan made for one kernel is not launched with another.
template <class Gemm>
struct KernelIdentity {
  static constexpr char tag = 0;
};

/// Calls `f(std::integral_constant<int, kRows>, std::bool_constant<kActOrder>)` for the entry point of
/// `rows_per_block` rows of M per block (one of Gemm::EntryRows; Gemm::rows_per_block(m) says which a call uses).
template <class Gemm, class F, int... kRows>
Status with_entry_point_of(int rows_per_block, bool act_order, F&& f, std::integer_sequence<int, kRows...>) {
  Status s = invalid("plan: no entry point of this kernel runs that many rows of M per block");
  auto call = [&](auto rows) {
    s = act_order ? f(rows, std::bool_constant<true>{}) : f(rows, std::bool_constant<false>{});
    return true;
  };
  (void)((rows_per_block == kRows && call(std::integral_constant<int, kRows>{})) || ...);
  return s;
}
template <class Gemm, class F>
Status with_entry_point(int rows_per_block, bool act_order, F&& f) {
  return with_entry_point_of<Gemm>(rows_per_block, act_order, f, typename Gemm::EntryRows{});
}

/// `out` (its shape and rows per block set) completed with the scheduler's grid.
template <class Gemm>
Status finish_plan(const GridPlan& grid, Plan out, Plan* plan) {
  out.grid_x = grid.x;
  out.grid_y = grid.y;
  out.grid_z = grid.z;
  out.rows_of_k_per_block = grid.rows_of_k_per_block;
  out.zero_fill_output = Gemm::ReducePolicy::accumulates_into_output(grid.z);
  const ReduceGeometry geometry = Gemm::Scheduler::reduce_geometry(grid, out.rows_per_block);
  if (reduce_counter_bytes<typename Gemm::ReducePolicy>(geometry) > kWorkspaceCounterBytes)
    return detail::invalid(
        "problem.m: the K split needs a counter for more output tiles than a workspace's head holds (262144, "
        "kWorkspaceCounterBytes): split the call along M");
  out.workspace_bytes = reduce_workspace_bytes<typename Gemm::ReducePolicy>(geometry);
  *plan = out;
  return Status::success();
}

/// The plan of a problem that passed validate<Gemm>() (only its shape is read: M and the layer).
template <class Gemm>
Status plan_valid(const GemmProblem& p, const DeviceInfo* device, const PlanOptions& options, Plan* plan) {
  using Scheduler = typename Gemm::Scheduler;
  const QuantizedWeights& w = *p.weights;
  Plan out;
  out.m = p.m;
  out.n = w.n;
  out.k_rows = w.packed_rows();
  out.act_order = w.act_order != nullptr;
  out.kernel = &KernelIdentity<Gemm>::tag;
  if (p.m == 0) {  // an idle rank or an empty expert: nothing to compute, nothing to write, nothing launched
    *plan = out;
    return Status::success();
  }
  out.rows_per_block = Gemm::rows_per_block(p.m);
  GridPlan grid;
  if (options.rows_of_k_per_block != 0) {
    if constexpr (scheduler_fixes_k_split<Scheduler>::value) {
      const Status s = Scheduler::plan_grid_with_k_split(out.m, out.n, out.k_rows, out.rows_per_block,
                                                         options.rows_of_k_per_block, &grid);
      if (!s.ok()) return s;
      return finish_plan<Gemm>(grid, out, plan);
    } else {
      return Status::error(StatusCode::kUnsupported,
                           "options.rows_of_k_per_block: this kernel's scheduler chooses its K split itself");
    }
  }
  int resident = 0;
  if constexpr (Scheduler::kNeedsResidentBlocks) {
    DeviceInfo current;
    if (device == nullptr) {
      const Status s = current_device_info(&current);
      if (!s.ok()) return s;
      device = &current;
    } else {
      // The occupancy query asks the runtime about the current device: facts of another one would be cached and
      // planned under the wrong device.
      int current_index = 0;
      const platform::native_error_t e = platform::current_device(&current_index);
      if (e != platform::kNativeSuccess) return runtime_error(e);
      if (device->device != current_index)
        return invalid(
            "device: describes another device than the current one (plan on the device that will run the "
            "launch, e.g. with current_device_info())");
    }
    int per_sm = 0;
    const Status s = with_entry_point<Gemm>(out.rows_per_block, out.act_order, [&](auto kRows, auto kActOrder) {
      constexpr int R = decltype(kRows)::value;
      constexpr bool A = decltype(kActOrder)::value;
      return blocks_per_multiprocessor<Gemm, R, A>(device->device, &per_sm);
    });
    if (!s.ok()) return s;
    resident = device->multiprocessors * per_sm;
  }
  const Status s = Scheduler::plan_grid(out.m, out.n, out.k_rows, out.rows_per_block, resident, &grid);
  if (!s.ok()) return s;
  return finish_plan<Gemm>(grid, out, plan);
}

/// The device's view of a validated problem under `plan`.
inline KernelParams make_params(const GemmProblem& p, const Plan& plan, void* workspace) {
  const QuantizedWeights& w = *p.weights;
  KernelParams params{};
  params.a = static_cast<const half*>(p.a);  // 16-bit elements of the kernel's type (validate() checked dtype)
  params.lda = p.lda_or_dense();
  params.qweight = reinterpret_cast<const std::uint32_t*>(w.packed());
  params.ldq = w.ldq_or_dense();
  params.qzeros = reinterpret_cast<const std::uint32_t*>(w.qzeros);
  params.ldz = w.ldz_or_dense();
  params.scales = w.scales;
  params.lds = w.lds_or_dense();
  params.c = static_cast<half*>(p.c);
  params.ldc = p.ldc_or_dense();
  params.m = p.m;
  params.n = w.n;
  params.k_rows = plan.k_rows;
  params.group_size = w.group_size > 0 ? w.group_size : plan.k_rows;
  params.zero_word_offset = format::zero_word_offset(w.zero_format);
  params.rows_per_block = plan.rows_of_k_per_block;
  params.whole_k = plan.grid_z == 1;
  if (w.act_order) {
    params.perm = w.act_order->perm;
    params.word_group = w.act_order->word_group;
    params.act_order_info = w.act_order->info;
    params.act_order_k = w.k;
    params.act_order_groups = w.act_order->num_groups;
  }
  params.workspace = workspace;
  return params;
}

}  // namespace detail

/// Checks the problem (validate<Gemm>()) and plans it for `device`, which must describe the current device (the
/// occupancy query asks the runtime about the current one). Launches nothing. M = 0 gives an empty plan.
/// @ingroup host_api
template <class Gemm>
Status plan(const GemmProblem& problem, const DeviceInfo& device, Plan* out) {
  if (out == nullptr) return detail::null("plan: null");
  const Status s = validate<Gemm>(problem);
  if (!s.ok()) return s;
  if constexpr (Gemm::kPoliciesValid) return detail::plan_valid<Gemm>(problem, &device, PlanOptions{}, out);
  return s;
}

/// plan() with parts of the plan fixed by the caller (PlanOptions: the K split). With a fixed K split no device
/// query is made; `device` is then only read by schedulers that ignore the option.
/// @ingroup host_api
template <class Gemm>
Status plan(const GemmProblem& problem, const DeviceInfo& device, const PlanOptions& options, Plan* out) {
  if (out == nullptr) return detail::null("plan: null");
  const Status s = validate<Gemm>(problem);
  if (!s.ok()) return s;
  if constexpr (Gemm::kPoliciesValid) return detail::plan_valid<Gemm>(problem, &device, options, out);
  return s;
}

/// plan() for the current device (current_device_info(), cached per device; only queried by schedulers that size
/// the grid to the GPU).
/// @ingroup host_api
template <class Gemm>
Status plan(const GemmProblem& problem, Plan* out) {
  if (out == nullptr) return detail::null("plan: null");
  const Status s = validate<Gemm>(problem);
  if (!s.ok()) return s;
  if constexpr (Gemm::kPoliciesValid) return detail::plan_valid<Gemm>(problem, nullptr, PlanOptions{}, out);
  return s;
}

OPT4GPTQ_NAMESPACE_END
