#pragma once
/// @file
/// Host API of the kernel: `validate<Gemm>(problem)`, `launch<Gemm>(problem, stream)` and the launch geometry.
/// `launch` validates first, zero-fills C on the same stream when the ReducePolicy accumulates into it, launches, and
/// returns; it never synchronizes. No call allocates, throws or prints.

#include <atomic>
#include <cstdint>

#include "../detail/checks.hpp"
#include "../kernel/dequant_gemm.hpp"
#include "../problem.hpp"
#include "../status.hpp"

namespace opt4gptq {

/// Checks everything the kernel assumes, in argument order, and names the first argument that breaks it.
/// Host-only: it reads no device memory (g_idx contents are checked by prepare_act_order on the device).
/// @ingroup host_api
template <class Gemm>
Status validate(const GemmProblem& p) {
  using detail::invalid;
  using detail::misaligned;
  using detail::null;
  if constexpr (!Gemm::kPoliciesValid) {
    // Not reachable in a program that compiled: the policy checks' static_asserts stop the build first. This branch
    // only keeps the rest of the function from being instantiated with a broken policy (one error, not a cascade).
    return Status::error(StatusCode::kUnsupported, "policies: a policy breaks its contract (see the compiler errors)");
  } else {
  constexpr int kVector = Gemm::LoadPolicy::kVectorHalves;

  if (p.m < 1) return invalid("problem.m: must be >= 1 (rows of A and C)");
  if (p.n < 8 || p.n % 8 != 0)
    return invalid("problem.n: must be a positive multiple of 8 (qzeros packs 8 columns per int32)");
  if (p.k < 8 || p.k % 8 != 0)
    return invalid("problem.k: must be a positive multiple of 8 (qweight packs 8 rows per int32)");
  if (p.group_size != -1 && (p.group_size < 8 || p.group_size % 8 != 0))
    return Status::error(StatusCode::kUnsupported,
                         "problem.group_size: unsupported; use -1 (one group) or a positive multiple of 8 "
                         "(32, 64, 128, ...)");
  if (p.zero_format != ZeroPointFormat::kGptqV1 && p.zero_format != ZeroPointFormat::kGptqV2)
    return invalid("problem.zero_format: must be ZeroPointFormat::kGptqV1 (\"gptq\") or kGptqV2 (\"gptq_v2\")");
  if (p.num_groups < 0) return invalid("problem.num_groups: must be >= 0 (0 = ceil(k / group_size))");
  if (p.m > 65535 * Gemm::kMaxRows) return invalid("problem.m: too large for one launch (more than 524280 rows)");

  if (p.act_order == nullptr) {
    if (p.group_size > 0 && p.k % p.group_size != 0)
      return invalid("problem.k: must be a multiple of problem.group_size (without act-order, group g is rows "
                     "g*group_size .. (g+1)*group_size-1); a layer with g_idx must go through prepare_act_order()");
    if (p.num_groups != 0 && p.num_groups != format::num_groups(p.k, p.group_size))
      return invalid("problem.num_groups: must be k / group_size (or 0) without act-order");
    if (p.qweight == nullptr) return null("problem.qweight: null");
  } else {
    const PreparedActOrder& ao = *p.act_order;
    if (ao.qweight == nullptr || ao.perm == nullptr || ao.word_group == nullptr || ao.info == nullptr)
      return null("problem.act_order: incomplete; fill it with prepare_act_order()");
    if (p.qweight != nullptr && p.qweight != ao.qweight)
      return invalid("problem.qweight: must be null when problem.act_order is set (the kernel reads the prepared "
                     "copy)");
    if (ao.k != p.k) return invalid("problem.act_order: prepared for a different k");
    if (ao.n != p.n) return invalid("problem.act_order: prepared for a different n");
    if (p.num_groups != 0 && p.num_groups != ao.num_groups)
      return invalid("problem.num_groups: differs from the num_groups the act-order layout was prepared with");
    if (p.ldq != 0 && p.ldq != p.n)
      return invalid("problem.ldq: must be 0 (or n) with act-order: the prepared copy is dense");
  }
  if (p.a == nullptr) return null("problem.a: null");
  if (p.qzeros == nullptr) return null("problem.qzeros: null");
  if (p.scales == nullptr) return null("problem.scales: null");
  if (p.c == nullptr) return null("problem.c: null");

  if (p.lda_or_dense() < p.k) return invalid("problem.lda: must be >= k (or 0 for dense rows)");
  if (p.ldq_or_dense() < p.n) return invalid("problem.ldq: must be >= n (or 0 for dense rows)");
  if (p.ldz_or_dense() < p.n / 8) return invalid("problem.ldz: must be >= n / 8 (or 0 for dense rows)");
  if (p.lds_or_dense() < p.n) return invalid("problem.lds: must be >= n (or 0 for dense rows)");
  if (p.ldc_or_dense() < p.n) return invalid("problem.ldc: must be >= n (or 0 for dense rows)");

  if (!detail::aligned_to(p.a, 2 * kVector))
    return misaligned("problem.a: not aligned for the LoadPolicy: the address must be a multiple of "
                      "2 * LoadPolicy::kVectorHalves bytes");
  if (p.lda_or_dense() % kVector != 0)
    return misaligned("problem.lda: must be a multiple of LoadPolicy::kVectorHalves (each row is read in vectors)");
  const void* weights = p.act_order ? static_cast<const void*>(p.act_order->qweight) : p.qweight;
  if (!detail::aligned_to(weights, 16))
    return misaligned("problem.qweight: must be 16-byte aligned (one load reads 4 columns of a packed row)");
  if (p.ldq_or_dense() % 4 != 0) return misaligned("problem.ldq: must be a multiple of 4 (16-byte rows of 4 words)");
  if (!detail::aligned_to(p.scales, 8))
    return misaligned("problem.scales: must be 8-byte aligned (4 scales are read at once)");
  if (p.lds_or_dense() % 4 != 0) return misaligned("problem.lds: must be a multiple of 4");
  if (!detail::aligned_to(p.qzeros, 4)) return misaligned("problem.qzeros: must be 4-byte aligned");
  if (!detail::aligned_to(p.c, 4)) return misaligned("problem.c: must be 4-byte aligned (outputs are written in pairs)");
  if (p.ldc_or_dense() % 2 != 0) return misaligned("problem.ldc: must be even (outputs are written in pairs)");
  return Status::success();
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
  bool zero_fill_output = false;  ///< the host API zero-fills C before the kernel
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

/// Multiprocessors of the current device, cached per device (a runtime query costs microseconds).
inline Status multiprocessors(int device, int* count) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices] = {};
  if (device >= 0 && device < kMaxDevices) {
    *count = cache[device].load(std::memory_order_relaxed);
    if (*count > 0) return Status::success();
  }
  const platform::native_error_t e = platform::multiprocessor_count(device, count);
  if (e != platform::kNativeSuccess)
    return Status::error(StatusCode::kRuntimeError, platform::error_string(e), static_cast<int>(e));
  if (device >= 0 && device < kMaxDevices) cache[device].store(*count, std::memory_order_relaxed);
  return Status::success();
}

/// Resident blocks per multiprocessor of one kernel instantiation, cached per device.
template <class Kernel>
Status blocks_per_multiprocessor(Kernel kernel, int threads, int device, int* blocks) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices] = {};
  if (device >= 0 && device < kMaxDevices) {
    *blocks = cache[device].load(std::memory_order_relaxed);
    if (*blocks > 0) return Status::success();
  }
  const platform::native_error_t e = platform::max_active_blocks(kernel, threads, blocks);
  if (e != platform::kNativeSuccess)
    return Status::error(StatusCode::kRuntimeError, platform::error_string(e), static_cast<int>(e));
  if (*blocks < 1) *blocks = 1;
  if (device >= 0 && device < kMaxDevices) cache[device].store(*blocks, std::memory_order_relaxed);
  return Status::success();
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
    int device = 0;
    const platform::native_error_t e = platform::current_device(&device);
    if (e != platform::kNativeSuccess)
      return Status::error(StatusCode::kRuntimeError, platform::error_string(e), static_cast<int>(e));
    int sms = 0;
    int per_sm = 0;
    Status s = multiprocessors(device, &sms);
    if (!s.ok()) return s;
    s = blocks_per_multiprocessor(kernel, Tile::kThreads, device, &per_sm);
    if (!s.ok()) return s;
    resident = sms * per_sm;
  }
  shape.rows_of_k_per_block = rows_of_k_per_block<Tile>(k_rows, shape.grid_x * shape.grid_y, resident);
  shape.grid_z = ceil_div(k_rows, shape.rows_of_k_per_block);
  if (shape.grid_z > 65535) return invalid("problem.k: too large for one launch (more than 65535 blocks along K)");
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
    if (e != platform::kNativeSuccess)
      return Status::error(StatusCode::kRuntimeError, platform::error_string(e), static_cast<int>(e));
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
  params.zero_offset = zero_point_offset(p.zero_format);
  params.rows_per_block = shape.rows_of_k_per_block;
  params.whole_k = shape.grid_z == 1;
  if (p.act_order) {
    params.perm = p.act_order->perm;
    params.word_group = p.act_order->word_group;
    params.act_order_info = p.act_order->info;
  }
  params.workspace = workspace;
  const dim3 grid(shape.grid_x, shape.grid_y, shape.grid_z);
  kernel<<<grid, dim3(Tile::kThreads), 0, stream>>>(params);
  const platform::native_error_t e = platform::last_error();
  if (e != platform::kNativeSuccess)
    return Status::error(StatusCode::kLaunchFailed, platform::error_string(e), static_cast<int>(e));
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

/// launch() for policies that need no workspace (all shipped presets but the deterministic one).
/// @ingroup host_api
template <class Gemm>
Status launch(const GemmProblem& problem, platform::stream_t stream) {
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
  if (e != platform::kNativeSuccess)
    return Status::error(StatusCode::kRuntimeError, platform::error_string(e), static_cast<int>(e));
  return Status::success();
}

}  // namespace opt4gptq
