#pragma once
/// @file
/// Host API of the kernel: `validate<Gemm>(problem)`, `launch<Gemm>(problem, stream)` and the launch geometry.
/// `launch` validates first, zero-fills C on the same stream when the ReducePolicy accumulates into it, launches, and
/// returns; it never synchronizes. No call allocates, throws or prints.

#include <cstdint>

#include "../detail/checks.hpp"
#include "../kernel/dequant_gemm.hpp"
#include "../problem.hpp"
#include "../status.hpp"
#include "device_info.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// Checks everything the kernel assumes and names the first argument that breaks it: first the problem itself
/// (check_problem(), the format's rules, no GPU needed), then what this kernel can run (Gemm::can_implement(): its load
/// widths, alignments and grid limits). Host-only: it reads no device memory (g_idx contents are checked by
/// prepare_act_order on the device).
/// @ingroup host_api
template <class Gemm>
Status validate(const GemmProblem& p) {
  if constexpr (!Gemm::kPoliciesValid) {
    // Not reachable in a program that compiled: the policy checks' static_asserts stop the build first. This branch
    // only keeps the rest of the function from being instantiated with a broken policy (one error, not a cascade).
    return Status::error(StatusCode::kUnsupported, "policies: a policy breaks its contract (see the compiler errors)");
  } else {
    const Status s = check_problem(p);
    if (!s.ok()) return s;
    return Gemm::can_implement(p);
  }
}

/// How a problem maps onto the grid.
/// @ingroup host_api
struct LaunchShape {
  int rows_per_block = 0;  ///< rows of M per block (1..8)
  int grid_x = 0;          ///< column tiles
  int grid_y = 0;          ///< chunks of M
  int grid_z = 0;          ///< K blocks
  int rows_of_k_per_block = 0;
  bool zero_fill_output = false;    ///< the host API zero-fills C before the kernel
  std::size_t workspace_bytes = 0;  ///< device workspace the ReducePolicy needs for this grid
};

namespace detail {

constexpr int ceil_div(std::int64_t a, std::int64_t b) { return static_cast<int>((a + b - 1) / b); }
constexpr int k_rows_of(const GemmProblem& p) { return p.act_order ? p.act_order->k_rows_max : p.k; }

/// Rows of K per block for a grid whose other dimensions give `blocks_xy` blocks: the tile's fixed count, or the
/// number of K blocks kb that minimises ceil(blocks_xy * kb / resident_blocks) * ceil(stages / kb), the stages that
/// the busiest block slot of the GPU runs one after the other (wave quantization; `resident_blocks` = SMs x blocks
/// per SM). Few long blocks leave the last wave nearly empty with too few loads in flight; many short ones cost more
/// reductions. Ties go to fewer K blocks, so one K block (no zero-fill, no split-K reduction) is used whenever the
/// column tiles alone fill the GPU as well as a split would.
template <class Tile>
constexpr int rows_of_k_per_block(int k_rows, int blocks_xy, int resident_blocks) {
  const int stages = ceil_div(k_rows, Tile::kStageRows);
  if constexpr (Tile::kStagesPerBlock > 0) {
    return Tile::kStagesPerBlock * Tile::kStageRows;
  } else {
    const std::int64_t resident = resident_blocks > 0 ? resident_blocks : 1;
    int best_k_blocks = 1;
    std::int64_t best_cost = -1;
    for (int k_blocks = 1; k_blocks <= stages; ++k_blocks) {
      const int per_block = ceil_div(stages, k_blocks);
      if (k_blocks > 1 && ceil_div(stages, k_blocks - 1) == per_block) continue;  // no shorter: more blocks for nothing
      const std::int64_t waves = (static_cast<std::int64_t>(blocks_xy) * k_blocks + resident - 1) / resident;
      const std::int64_t cost = waves * per_block;
      if (best_cost < 0 || cost < best_cost) {
        best_cost = cost;
        best_k_blocks = k_blocks;
      }
    }
    return ceil_div(stages, best_k_blocks) * Tile::kStageRows;
  }
}

template <class Gemm, int kRows, bool kActOrder>
Status launch_with(const GemmProblem& p, void* workspace, std::size_t workspace_bytes, platform::stream_t stream,
                   LaunchShape* shape_out, bool dry_run) {
  using Tile = typename Gemm::TileShape;
  const auto kernel = dequant_gemm_kernel<Gemm, kRows, kActOrder>;
  const int k_rows = k_rows_of(p);
  LaunchShape shape;
  shape.rows_per_block = kRows;
  shape.grid_x = ceil_div(p.n, Tile::kBlockCols);
  shape.grid_y = ceil_div(p.m, kRows);
  int resident = 0;
  if constexpr (Tile::kStagesPerBlock == 0) {
    DeviceInfo device;
    Status s = current_device_info(&device);
    if (!s.ok()) return s;
    int per_sm = 0;
    s = blocks_per_multiprocessor<Gemm, kRows, kActOrder>(kernel, Tile::kThreads, device.device, &per_sm);
    if (!s.ok()) return s;
    resident = device.multiprocessors * per_sm;
  }
  shape.rows_of_k_per_block = rows_of_k_per_block<Tile>(k_rows, shape.grid_x * shape.grid_y, resident);
  shape.grid_z = ceil_div(k_rows, shape.rows_of_k_per_block);
  if (shape.grid_z > kMaxGridYZ) return invalid("problem.k: too large for one launch (more than 65535 blocks along K)");
  shape.zero_fill_output = Gemm::ReducePolicy::accumulates_into_output(shape.grid_z);
  shape.workspace_bytes = reduce_workspace_bytes<typename Gemm::ReducePolicy>(
      ReduceGeometry{shape.grid_x * shape.grid_y, kRows * Tile::kBlockCols, shape.grid_z});
  if (shape_out) *shape_out = shape;
  if (dry_run) return Status::success();
  if (shape.workspace_bytes > 0) {
    if (workspace == nullptr)
      return null("workspace: null, and this ReducePolicy needs one for this problem (size: workspace_bytes<Gemm>)");
    if (workspace_bytes < shape.workspace_bytes)
      return Status::error(StatusCode::kWorkspaceTooSmall,
                           "workspace_bytes: smaller than workspace_bytes<Gemm>(problem) for this problem");
    if (!aligned_to(workspace, 16)) return misaligned("workspace: must be 16-byte aligned");
  }

  const std::int64_t ldc = p.ldc_or_dense();
  if (shape.zero_fill_output) {
    const platform::native_error_t e =
        platform::memset_2d_async(p.c, ldc * sizeof(half), p.n * sizeof(half), p.m, stream);
    if (e != platform::kNativeSuccess) return runtime_error(e);
  }

  KernelParams params{};
  params.a = p.a;
  params.lda = p.lda_or_dense();
  params.qweight = reinterpret_cast<const std::uint32_t*>(p.act_order ? p.act_order->qweight : p.qweight);
  params.ldq = p.ldq_or_dense();
  params.qzeros = reinterpret_cast<const std::uint32_t*>(p.qzeros);
  params.ldz = p.ldz_or_dense();
  params.scales = p.scales;
  params.lds = p.lds_or_dense();
  params.c = p.c;
  params.ldc = ldc;
  params.m = p.m;
  params.n = p.n;
  params.k_rows = k_rows;
  params.group_size = p.group_size > 0 ? p.group_size : k_rows;
  params.zero_word_offset = format::zero_word_offset(p.zero_format);
  params.rows_per_block = shape.rows_of_k_per_block;
  params.whole_k = shape.grid_z == 1;
  if (p.act_order) {
    params.perm = p.act_order->perm;
    params.word_group = p.act_order->word_group;
    params.act_order_info = p.act_order->info;
    params.act_order_k = p.k;
    params.act_order_groups = p.act_order->num_groups;
  }
  params.workspace = workspace;
  const dim3 grid(shape.grid_x, shape.grid_y, shape.grid_z);
  kernel<<<grid, dim3(Tile::kThreads), 0, stream>>>(params);
  const platform::native_error_t e = platform::last_error();
  if (e != platform::kNativeSuccess) return launch_failed(e);
  return Status::success();
}

template <class Gemm, bool kActOrder>
Status dispatch_rows(const GemmProblem& p, void* ws, std::size_t ws_bytes, platform::stream_t stream,
                     LaunchShape* shape, bool dry_run) {
  // Exact row counts for M <= 8 (no wasted rows in the common decode sizes); larger M runs in chunks of 8, the last
  // chunk padded with zero rows that are computed but never written.
  switch (p.m < Gemm::kMaxRows ? p.m : Gemm::kMaxRows) {
    case 1: return launch_with<Gemm, 1, kActOrder>(p, ws, ws_bytes, stream, shape, dry_run);
    case 2: return launch_with<Gemm, 2, kActOrder>(p, ws, ws_bytes, stream, shape, dry_run);
    case 3: return launch_with<Gemm, 3, kActOrder>(p, ws, ws_bytes, stream, shape, dry_run);
    case 4: return launch_with<Gemm, 4, kActOrder>(p, ws, ws_bytes, stream, shape, dry_run);
    case 5: return launch_with<Gemm, 5, kActOrder>(p, ws, ws_bytes, stream, shape, dry_run);
    case 6: return launch_with<Gemm, 6, kActOrder>(p, ws, ws_bytes, stream, shape, dry_run);
    case 7: return launch_with<Gemm, 7, kActOrder>(p, ws, ws_bytes, stream, shape, dry_run);
    default: return launch_with<Gemm, 8, kActOrder>(p, ws, ws_bytes, stream, shape, dry_run);
  }
}

template <class Gemm>
Status dispatch(const GemmProblem& p, void* ws, std::size_t ws_bytes, platform::stream_t stream, LaunchShape* shape,
                bool dry_run) {
  static_assert(Gemm::kMaxRows == 8, "dispatch_rows covers row counts 1..8");
  const Status s = validate<Gemm>(p);
  if (!s.ok()) return s;
  if (p.m == 0) {  // an idle rank or an empty expert: nothing to compute, nothing to write, nothing launched
    if (shape) *shape = LaunchShape{};
    return Status::success();
  }
  if constexpr (Gemm::kPoliciesValid) {
    return p.act_order ? dispatch_rows<Gemm, true>(p, ws, ws_bytes, stream, shape, dry_run)
                       : dispatch_rows<Gemm, false>(p, ws, ws_bytes, stream, shape, dry_run);
  } else {
    return s;
  }
}

}  // namespace detail

/// Computes C = A · dequant(W) on `stream`. Validates first (nothing is launched when the problem is invalid), zero-
/// fills C on the same stream when the grid accumulates into it, and returns without synchronizing. A launch error
/// (e.g. no device) comes back as kLaunchFailed with the runtime's message; errors of the kernel itself surface at
/// the caller's next synchronization, as with any asynchronous launch.
/// `workspace` (device memory of `workspace_bytes`) is needed only by ReducePolicies that ask for one (see
/// workspace_bytes<Gemm>(); ReduceSharedSerial with more than one K block): clear it once with clear_workspace()
/// after allocating it, then reuse it for every call on the stream.
/// @ingroup host_api
template <class Gemm>
Status launch(const GemmProblem& problem, void* workspace, std::size_t workspace_bytes, platform::stream_t stream) {
  return detail::dispatch<Gemm>(problem, workspace, workspace_bytes, stream, nullptr, false);
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
  return detail::dispatch<Gemm>(problem, nullptr, 0, stream, nullptr, false);
}

/// The grid `launch` would use (queries the device for the adaptive tiles; launches nothing).
/// @ingroup host_api
template <class Gemm>
Status launch_shape(const GemmProblem& problem, LaunchShape* shape) {
  return detail::dispatch<Gemm>(problem, nullptr, 0, nullptr, shape, true);
}

/// Device workspace `launch<Gemm>` needs for `problem` (0 for most policies). Depends on the shape of the problem and
/// the device; an engine allocates the largest over its layers and M once.
/// @ingroup host_api
template <class Gemm>
Status workspace_bytes(const GemmProblem& problem, std::size_t* bytes) {
  if (bytes == nullptr) return detail::null("bytes: null");
  LaunchShape shape;
  const Status s = launch_shape<Gemm>(problem, &shape);
  *bytes = s.ok() ? shape.workspace_bytes : 0;
  return s;
}

/// Zeroes a newly allocated workspace (its split-K counters must start at zero; every launch leaves them zero).
/// @ingroup host_api
inline Status clear_workspace(void* workspace, std::size_t bytes, platform::stream_t stream) {
  if (workspace == nullptr && bytes > 0) return detail::null("workspace: null");
  if (bytes == 0) return Status::success();
  const platform::native_error_t e = platform::memset_2d_async(workspace, bytes, bytes, 1, stream);
  if (e != platform::kNativeSuccess) return detail::runtime_error(e);
  return Status::success();
}

OPT4GPTQ_NAMESPACE_END
