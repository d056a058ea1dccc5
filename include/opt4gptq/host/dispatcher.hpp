#pragma once
/// @file
/// The dispatcher: one entry point for every M. An engine creates a Dispatcher per layer and device at load time
/// (DispatchOptions say what the kernels must guarantee), allocates Dispatcher::workspace_bytes() once, and launches
/// every call through it; the kernel of each call comes from the dispatch table of the device's architecture
/// (dispatch/tables.hpp), among the kernels this program built (host/dispatch_kernels.hpp) that the options allow
/// (dispatch_options.hpp). `presets::Auto` is the same choice per call, with the default options, behind the usual
/// `launch<Gemm>(problem, workspace, bytes, stream)`.
///
/// Workspace: one workspace serves every Dispatcher (every layer) of an engine in sequence on one stream: allocate the
/// largest workspace_bytes() of them, clear it once with clear_workspace(), and give each stream its own. Every launch
/// leaves its head (kWorkspaceCounterBytes: the split-K counters) zero again, which is what the deterministic kernels
/// need of it; the rest is scratch (the prefill path's dense weights stay there).
/// @ingroup host_api

#include <cstddef>
#include <cstdint>

#include "../detail/checks.hpp"
#include "../dispatch/tables.hpp"
#include "../dispatch_options.hpp"
#include "../dispatch_table.hpp"
#include "../platform.hpp"
#include "../problem.hpp"
#include "../status.hpp"
#include "../weights.hpp"
#include "device_info.hpp"
#include "dispatch_kernels.hpp"
#include "launch.hpp"
#include "plan.hpp"
#include "validate.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup host_api
/// Rows per launch of a Dispatcher whose K split is fixed (batch_invariant, or DispatchOptions::rows_of_k_per_block):
/// larger calls run as several launches of this many rows (the last fewer), each row computed exactly as in any other
/// launch. A fixed split keeps the K blocks of small M at every M, so the split-K workspace grows with M (fp32
/// partials of every row, column and K block); 256 rows bound it to about 256 · n · k_blocks · 4 bytes (tens of MB).
inline constexpr int kFixedSplitRowsPerLaunch = 256;

/// @ingroup host_api
/// What the dispatcher chose for a call of M rows, and how it runs it.
struct DispatchPlan {
  KernelChoice kernel = KernelChoice::kDeterministicF32;  ///< the kernel chosen
  const char* kernel_name = "";                           ///< kernel_name(kernel): for logs and benchmarks
  int m = 0;                                              ///< rows of the call
  /// Launches the call makes: 1; 0 for M = 0; ceil(m / rows_per_launch) when a fixed K split splits it into row chunks
  int launches = 0;
  int rows_per_launch = 0;  ///< rows of every launch but the last
  Plan plan;                ///< the kernel's plan of a launch of rows_per_launch rows
  Plan last;                ///< the kernel's plan of the last launch (the rows left; = plan when they are as many)
  std::size_t workspace_bytes = 0;  ///< the workspace this call needs (at most Dispatcher::workspace_bytes())
};

/// @ingroup host_api
/// The dispatcher of one layer on one device: which kernel runs a call of M rows, with a workspace sized once for
/// every M up to DispatchOptions::max_m. Cheap to copy; it copies the layer's QuantizedWeights (the tensors, and an
/// act-order layout, must outlive it) and holds no device memory. Every call is const and thread-safe.
class Dispatcher {
 public:
  /// Checks the layer and the options and prepares the dispatch on `device` (which must be the current device, as
  /// for plan(); current_device_info() fills it), sizing the workspace by planning every M up to options.max_m
  /// (a microsecond or so each, once). A batch-invariant Dispatcher also fixes its K split here.
  static Status create(const QuantizedWeights& weights, const DispatchOptions& options, const DeviceInfo& device,
                       Dispatcher* out) {
    if (out == nullptr) return detail::null("dispatcher: null");
    Status s = check_weights(weights);
    if (!s.ok()) return s;
    s = check_dispatch_options(options);
    if (!s.ok()) return s;
    if (device.arch.vendor == GpuVendor::kUnknown)
      return detail::invalid("device.arch: unknown (fill the DeviceInfo with current_device_info())");
    if (device.multiprocessors < 1)
      return detail::invalid("device.multiprocessors: must be >= 1 (fill the DeviceInfo with current_device_info())");

    Dispatcher d;
    d.weights_ = weights;
    d.options_ = options;
    d.device_ = device;
    d.table_ = &dispatch::table_for(device.arch);
    d.runnable_ = runnable_kernels(built_kernels(options.dtype), device.arch);
    d.weight_bytes_ = layer_weight_bytes(weights.k, weights.n, weights.groups());
    d.split_.rows_of_k_per_block = options.rows_of_k_per_block;
    if (options.batch_invariant && options.rows_of_k_per_block == 0) {
      // The split the scheduler chooses for M = 1 on this device, kept for every M: decode keeps its speed, and
      // larger M runs the same K blocks (fp32 partials in the workspace, added in K order).
      Plan one;
      s = with_kernel(d.kernel_for(1), options.dtype, [&](auto kernel) {
        return decltype(kernel)::plan_shape(1, d.weights_, d.device_, PlanOptions{}, &one);
      });
      if (!s.ok()) return s;
      d.split_.rows_of_k_per_block = one.rows_of_k_per_block;
    }
    for (int m = 1; m <= options.max_m; ++m) {
      DispatchPlan p;
      s = d.plan_unchecked(m, &p);
      if (!s.ok()) return s;
      if (p.workspace_bytes > d.workspace_bytes_) d.workspace_bytes_ = p.workspace_bytes;
    }
    d.ready_ = true;
    *out = d;
    return Status::success();
  }

  /// create() on the current device (current_device_info()).
  static Status create(const QuantizedWeights& weights, const DispatchOptions& options, Dispatcher* out) {
    DeviceInfo device;
    const Status s = current_device_info(&device);
    if (!s.ok()) return s;
    return create(weights, options, device, out);
  }

  /// The workspace that serves every call of up to options.max_m rows (0 when no kernel it may choose needs one).
  std::size_t workspace_bytes() const { return workspace_bytes_; }

  /// The kernel and the plan of a call of `m` rows (0 <= m <= options.max_m). Launches nothing.
  Status plan(int m, DispatchPlan* out) const {
    if (out == nullptr) return detail::null("plan: null");
    if (!ready_) return detail::invalid("dispatcher: not created (Dispatcher::create)");
    if (m < 0) return detail::invalid("m: must be >= 0 (rows of the call; 0 is a no-op)");
    if (m > options_.max_m)
      return detail::invalid("m: larger than options.max_m (the workspace was sized for calls up to max_m rows)");
    return plan_unchecked(m, out);
  }

  /// Computes C = A · dequant(W) for `problem` (a call on this Dispatcher's layer) on `stream`: plan(), then the
  /// launch(es) of the kernel chosen. Never synchronizes. `workspace` (workspace_bytes() bytes, cleared once with
  /// clear_workspace()) serves one stream at a time.
  Status launch(const GemmProblem& problem, void* workspace, std::size_t workspace_bytes,
                platform::stream_t stream) const {
    Status s = check_call(problem);
    if (!s.ok()) return s;
    DispatchPlan p;
    s = plan_unchecked(problem.m, &p);
    if (!s.ok()) return s;
    return launch_checked(p, problem, workspace, workspace_bytes, stream);
  }

  /// launch() with a plan from plan(problem.m), for engines that keep one per M.
  Status launch(const DispatchPlan& plan, const GemmProblem& problem, void* workspace, std::size_t workspace_bytes,
                platform::stream_t stream) const {
    const Status s = check_call(problem);
    if (!s.ok()) return s;
    if (plan.m != problem.m) return detail::invalid("plan: made for another M (Dispatcher::plan(problem.m))");
    return launch_checked(plan, problem, workspace, workspace_bytes, stream);
  }

  /// The table the choices come from (the device's architecture).
  const DispatchTable& table() const { return *table_; }
  /// The options the Dispatcher was created with.
  const DispatchOptions& options() const { return options_; }
  /// The kernels the options allow among those this program built and the device runs.
  KernelSet allowed() const { return allowed_kernels(options_, runnable_); }
  /// The fixed rows of K per block of every launch (batch_invariant or options.rows_of_k_per_block), else 0.
  int rows_of_k_per_block() const { return split_.rows_of_k_per_block; }

 private:
  KernelChoice kernel_for(int m) const {
    return choose_kernel(*table_, options_, runnable_, m, weight_bytes_, weights_.act_order != nullptr);
  }

  Status plan_unchecked(int m, DispatchPlan* out) const {
    DispatchPlan d;
    d.m = m;
    d.kernel = kernel_for(m > 0 ? m : 1);
    d.kernel_name = kernel_name(d.kernel);
    if (m == 0) {
      *out = d;
      return Status::success();
    }
    // The prefill path dequantizes once per call however many rows: never in chunks.
    const bool chunked = split_.rows_of_k_per_block != 0 && d.kernel != KernelChoice::kDequantCublas;
    d.rows_per_launch = chunked && m > kFixedSplitRowsPerLaunch ? kFixedSplitRowsPerLaunch : m;
    d.launches = (m + d.rows_per_launch - 1) / d.rows_per_launch;
    const int last_rows = m - (d.launches - 1) * d.rows_per_launch;
    const Status s = with_kernel(d.kernel, options_.dtype, [&](auto kernel) {
      using Kernel = decltype(kernel);
      Status planned = Kernel::plan_shape(d.rows_per_launch, weights_, device_, split_, &d.plan);
      if (!planned.ok()) return planned;
      if (last_rows == d.rows_per_launch) {
        d.last = d.plan;
        return planned;
      }
      return Kernel::plan_shape(last_rows, weights_, device_, split_, &d.last);
    });
    if (!s.ok()) return s;
    d.workspace_bytes =
        d.plan.workspace_bytes > d.last.workspace_bytes ? d.plan.workspace_bytes : d.last.workspace_bytes;
    *out = d;
    return Status::success();
  }

  /// The call's own rules, then that it is on this layer and within max_m.
  Status check_call(const GemmProblem& problem) const {
    if (!ready_) return detail::invalid("dispatcher: not created (Dispatcher::create)");
    Status s = check_problem(problem);
    if (!s.ok()) return s;
    if (problem.dtype != options_.dtype)
      return Status::error(StatusCode::kUnsupported,
                           problem.dtype == ElementType::kBf16
                               ? "problem.dtype: bf16, but the Dispatcher was created for fp16 calls "
                                 "(DispatchOptions::dtype = ElementType::kBf16 creates one for bf16)"
                               : "problem.dtype: fp16, but the Dispatcher was created for bf16 calls "
                                 "(DispatchOptions::dtype)");
    const QuantizedWeights& w = *problem.weights;
    if (w.k != weights_.k || w.n != weights_.n || w.groups() != weights_.groups() ||
        w.packed_rows() != weights_.packed_rows() || (w.act_order != nullptr) != (weights_.act_order != nullptr))
      return detail::invalid(
          "problem.weights: a layer of another shape than the Dispatcher's (k, n, groups or act-order differ)");
    if (problem.m > options_.max_m)
      return detail::invalid("problem.m: larger than the Dispatcher's options.max_m (its workspace size)");
    return Status::success();
  }

  Status launch_checked(const DispatchPlan& plan, const GemmProblem& problem, void* workspace,
                        std::size_t workspace_bytes, platform::stream_t stream) const {
    if (plan.launches == 0) return Status::success();  // M = 0: nothing to compute, nothing launched
    if (plan.workspace_bytes > 0) {
      if (workspace == nullptr)
        return detail::null("workspace: null, and this call needs one (allocate Dispatcher::workspace_bytes())");
      if (workspace_bytes < plan.workspace_bytes)
        return Status::error(StatusCode::kWorkspaceTooSmall,
                             "workspace_bytes: smaller than this call needs (allocate Dispatcher::workspace_bytes())");
    }
    return with_kernel(plan.kernel, options_.dtype, [&](auto kernel) {
      using Kernel = decltype(kernel);
      for (int i = 0; i < plan.launches; ++i) {
        const bool last = i + 1 == plan.launches;
        const std::int64_t row = static_cast<std::int64_t>(i) * plan.rows_per_launch;
        GemmProblem part = problem;
        part.m = last ? plan.m - i * plan.rows_per_launch : plan.rows_per_launch;
        part.a = detail::element_offset(problem.a, row * problem.lda_or_dense());
        part.c = detail::element_offset(problem.c, row * problem.ldc_or_dense());
        const Status s = Kernel::launch(last ? plan.last : plan.plan, part, workspace, workspace_bytes, stream);
        if (!s.ok()) return s;
      }
      return Status::success();
    });
  }

  QuantizedWeights weights_;
  DispatchOptions options_;
  DeviceInfo device_;
  const DispatchTable* table_ = &dispatch::kAmdSimt;
  KernelSet runnable_;
  std::int64_t weight_bytes_ = 0;
  PlanOptions split_;  ///< the K split every launch uses (rows_of_k_per_block 0: the scheduler's, per launch)
  std::size_t workspace_bytes_ = 0;
  bool ready_ = false;
};

namespace presets {
/// @ingroup presets
/// The dispatcher as a kernel type: `launch<presets::Auto>(problem, workspace, bytes, stream)` chooses, per call,
/// the kernel the current device's dispatch table names for the call's M among those the default DispatchOptions
/// allow (overflow-safe), and launches it. `workspace_bytes<presets::Auto>(problem)` is that kernel's workspace for
/// this call: size it, as for any kernel, for the largest layer and M the engine sends (the prefill path needs k x n
/// halves), and clear it once. `validate<presets::Auto>` works too. Plans do not: Auto's plan is the Dispatcher's
/// (DispatchPlan), so `plan<presets::Auto>`, `launch<presets::Auto>(plan, ...)` and the workspace-less
/// `launch<presets::Auto>(problem, stream)` (the chosen kernel may need a workspace) are deleted. An engine that
/// keeps state per layer uses a Dispatcher instead (options, a workspace size for every M, no per-call choice).
struct Auto {};
}  // namespace presets

namespace detail {

/// Auto's choice for a call: the current device's table, the default options, the kernel's plan.
inline Status auto_plan(const GemmProblem& p, KernelChoice* kernel, Plan* plan) {
  Status s = check_problem(p);
  if (!s.ok()) return s;
  DeviceInfo device;
  s = current_device_info(&device);
  if (!s.ok()) return s;
  const QuantizedWeights& w = *p.weights;
  DispatchOptions options;
  options.dtype = p.dtype;
  *kernel =
      choose_kernel(dispatch::table_for(device.arch), options, runnable_kernels(built_kernels(p.dtype), device.arch),
                    p.m > 0 ? p.m : 1, layer_weight_bytes(w.k, w.n, w.groups()), w.act_order != nullptr);
  return with_kernel(*kernel, p.dtype, [&](auto k) {
    using Kernel = decltype(k);
    const Status valid = Kernel::validate(p);
    if (!valid.ok()) return valid;
    return Kernel::plan_shape(p.m, w, device, PlanOptions{}, plan);
  });
}

}  // namespace detail

/// validate() for presets::Auto: the call's rules and those of the kernel Auto chooses for it.
/// @ingroup host_api
template <>
inline Status validate<presets::Auto>(const GemmProblem& problem) {
  KernelChoice kernel;
  Plan plan;
  return detail::auto_plan(problem, &kernel, &plan);
}

/// workspace_bytes() for presets::Auto: the workspace of the kernel Auto chooses for this call.
/// @ingroup host_api
template <>
inline Status workspace_bytes<presets::Auto>(const GemmProblem& problem, std::size_t* bytes) {
  if (bytes == nullptr) return detail::null("bytes: null");
  KernelChoice kernel;
  Plan plan;
  const Status s = detail::auto_plan(problem, &kernel, &plan);
  *bytes = s.ok() ? plan.workspace_bytes : 0;
  return s;
}

/// launch() for presets::Auto: the kernel the dispatch table chooses for this call (default DispatchOptions).
/// @ingroup host_api
template <>
inline Status launch<presets::Auto>(const GemmProblem& problem, void* workspace, std::size_t workspace_bytes,
                                    platform::stream_t stream) {
  KernelChoice kernel;
  Plan plan;
  const Status s = detail::auto_plan(problem, &kernel, &plan);
  if (!s.ok()) return s;
  return with_kernel(kernel, problem.dtype,
                     [&](auto k) { return decltype(k)::launch(plan, problem, workspace, workspace_bytes, stream); });
}

/// Deleted: Auto may choose a kernel that needs a workspace (use the form with a workspace).
template <>
Status launch<presets::Auto>(const GemmProblem& problem, platform::stream_t stream) = delete;
/// Deleted: Auto's plans are DispatchPlans (Dispatcher::plan).
template <>
Status launch<presets::Auto>(const Plan& plan, const GemmProblem& problem, void* workspace, std::size_t workspace_bytes,
                             platform::stream_t stream) = delete;
/// Deleted: Auto's plans are DispatchPlans (Dispatcher::plan).
template <>
Status plan<presets::Auto>(const GemmProblem& problem, Plan* out) = delete;
/// Deleted: Auto's plans are DispatchPlans (Dispatcher::plan).
template <>
Status plan<presets::Auto>(const GemmProblem& problem, const DeviceInfo& device, Plan* out) = delete;
/// Deleted: Auto's plans are DispatchPlans (Dispatcher::plan).
template <>
Status plan<presets::Auto>(const GemmProblem& problem, const DeviceInfo& device, const PlanOptions& options,
                           Plan* out) = delete;

OPT4GPTQ_NAMESPACE_END
