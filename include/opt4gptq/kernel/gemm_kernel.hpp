#pragma once
/// @file
/// GemmKernel: a dequant-GEMM composed of three slots, and its `__global__` entry point.
///  - the Mainloop (kernel/mainloop_simt.hpp) streams the weights of a block's work, dequantizes them with its codec
///    and leaves per-thread partial sums;
///  - the ReducePolicy (policy/reduce.hpp) turns the partial sums into C;
///  - the Scheduler (kernel/scheduler.hpp) plans the grid, the K split and the split-K workspace, and maps each block
///    to its work.
/// The kernel only wires them together and checks that they agree; DequantGemm (kernel/dequant_gemm.hpp) is the
/// paper's composition. No thread leaves early once a block has started work: ReducePolicies may synchronize.
/// @ingroup kernel

#include <cstdint>
#include <type_traits>

#include "../detail/checks.hpp"
#include "../element.hpp"
#include "../platform.hpp"
#include "../policy/reduce.hpp"
#include "../policy/traits.hpp"
#include "../problem.hpp"
#include "../status.hpp"
#include "params.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

namespace detail {
/// The ReducePolicy's shared storage, or nothing when a policy failed its checks (so that a broken policy yields
/// its static_assert message and no follow-up errors).
template <class Reduce, class Tile, int kRows, bool kValid>
struct reduce_storage {
  using type = typename Reduce::template SharedStorage<Tile, kRows>;
};
template <class Reduce, class Tile, int kRows>
struct reduce_storage<Reduce, Tile, kRows, false> {
  struct type {};
};

/// A mainloop's LoadPolicy and MathPolicy, re-exported by the kernel; void for a mainloop that has none.
template <class Mainloop, class = void>
struct mainloop_load_policy {
  using type = void;
};
template <class Mainloop>
struct mainloop_load_policy<Mainloop, std::void_t<typename Mainloop::LoadPolicy>> {
  using type = typename Mainloop::LoadPolicy;
};
/// A mainloop's element type of A and C (`Element`: ElementFp16 or ElementBf16); fp16 for a mainloop that does not
/// say (every mainloop written before bf16 existed).
template <class Mainloop, class = void>
struct mainloop_element {
  using type = ElementFp16;
};
template <class Mainloop>
struct mainloop_element<Mainloop, std::void_t<typename Mainloop::Element>> {
  using type = typename Mainloop::Element;
};

/// Whether a mainloop runs the ReducePolicy step itself (`kOwnsReduceStep` and `reduce<Reduce, kRows>(storage,
/// acc, out)`: accumulators the ReducePolicy contract does not take, e.g. matrix fragments).
template <class Mainloop, class = void>
struct mainloop_owns_reduce_step : std::false_type {};
template <class Mainloop>
struct mainloop_owns_reduce_step<Mainloop, std::void_t<decltype(Mainloop::kOwnsReduceStep)>>
    : std::bool_constant<Mainloop::kOwnsReduceStep> {};

template <class Mainloop, class = void>
struct mainloop_math_policy {
  using type = void;
};
template <class Mainloop>
struct mainloop_math_policy<Mainloop, std::void_t<typename Mainloop::MathPolicy>> {
  using type = typename Mainloop::MathPolicy;
};

/// Whether a mainloop asks for its shared memory dynamically (`kDynamicSharedMemory`: stage rings larger than the
/// 48 KiB a block may declare statically on NVIDIA); false for one that does not say.
template <class Mainloop, class = void>
struct mainloop_dynamic_shared : std::false_type {};
template <class Mainloop>
struct mainloop_dynamic_shared<Mainloop, std::void_t<decltype(Mainloop::kDynamicSharedMemory)>>
    : std::bool_constant<Mainloop::kDynamicSharedMemory> {};

/// The blocks per multiprocessor a tile asks the compiler to fit (`kMinBlocksPerMultiprocessor`: a register budget of
/// 64K / (threads x blocks)); 0 for a tile that does not say.
template <class Tile, class = void>
struct tile_min_blocks : std::integral_constant<int, 0> {};
template <class Tile>
struct tile_min_blocks<Tile, std::void_t<decltype(Tile::kMinBlocksPerMultiprocessor)>>
    : std::integral_constant<int, Tile::kMinBlocksPerMultiprocessor> {};
}  // namespace detail

/// @ingroup kernel
/// The kernel composed of a mainloop, a ReducePolicy and a scheduler. `kPoliciesValid` is false (after readable
/// static_assert messages) when a policy breaks its contract; the body is then not instantiated, so no other errors
/// follow.
template <class Mainloop_, class Reduce, class Scheduler_>
struct GemmKernel {
  using Mainloop = Mainloop_;
  using ReducePolicy = Reduce;
  using Scheduler = Scheduler_;
  using TileShape = typename Mainloop::TileShape;
  using Codec = typename Mainloop::Codec;
  using LoadPolicy = typename detail::mainloop_load_policy<Mainloop>::type;
  using MathPolicy = typename detail::mainloop_math_policy<Mainloop>::type;
  /// The element type of A and C this kernel is built for (ElementFp16 or ElementBf16): a call must say the same in
  /// GemmProblem::dtype.
  using Element = typename detail::mainloop_element<Mainloop>::type;

  static_assert(std::is_same_v<typename Scheduler::TileShape, TileShape>,
                "GemmKernel: the scheduler plans its grid for another tile than the mainloop's (compose them with the "
                "same TileShape, e.g. SplitKScheduler<Tile> with MainloopSimt<..., Tile, ...>)");

  static constexpr bool kPoliciesValid = Mainloop::kPoliciesValid && Mainloop::template reduce_policy_valid<Reduce>();
  static constexpr int kThreads = Mainloop::kThreads;
  static constexpr int kMaxRows = Mainloop::kMaxRows;
  using EntryRows = typename Mainloop::EntryRows;
  static constexpr int rows_per_block(int m) { return Mainloop::rows_per_block(m); }

  /// The ReducePolicy's storage overlays the mainloop's: the reduction starts after the last stage.
  template <int kRows>
  union SharedStorage {
    typename Mainloop::template SharedStorage<kRows> mainloop;
    typename detail::reduce_storage<Reduce, TileShape, kRows, kPoliciesValid>::type reduce;
  };

  /// Static shared memory is limited to 48 KiB per block on NVIDIA (AMD allows 64 KiB); say so before ptxas does.
  /// A mainloop that declares kDynamicSharedMemory gets its storage as dynamic shared memory instead (the host API
  /// raises the kernel's limit once per device), up to what one block may have: 227 KiB on NVIDIA sm_90, 163 KiB on
  /// sm_80, 64 KiB on AMD; the launch fails with the runtime's message on a GPU with less.
  static constexpr bool kDynamicShared = detail::mainloop_dynamic_shared<Mainloop>::value;
  /// Whether the tile states a register budget (kMinBlocksPerMultiprocessor) for the compiler.
  static constexpr bool kBoundedRegisters = detail::tile_min_blocks<TileShape>::value > 0;
  static constexpr int kMinBlocksPerMultiprocessor = kBoundedRegisters ? detail::tile_min_blocks<TileShape>::value : 1;
  static constexpr std::size_t kSharedBytes = sizeof(SharedStorage<kMaxRows>);
  static_assert(!kPoliciesValid || kDynamicShared || kSharedBytes <= 48 * 1024,
                "GemmKernel: the tile needs more than 48 KiB of shared memory at its largest rows of M per block "
                "(staging: 16 bytes per 8 rows of K per row of M; the ReducePolicy's storage overlaid): use a smaller "
                "stage or fewer threads");
  static_assert(!kPoliciesValid || !kDynamicShared || kSharedBytes <= 227 * 1024,
                "GemmKernel: the tile needs more shared memory than any GPU gives one block (227 KiB): use fewer "
                "stages, a shorter stage or fewer rows of M per block");
  /// Dynamic shared memory of the entry point of `kRows` rows of M per block (0 for static storage).
  template <int kRows>
  static constexpr std::size_t dynamic_shared_bytes() {
    return kDynamicShared ? sizeof(SharedStorage<kRows>) : 0;
  }

  /// What this kernel can run, beyond the problem's own rules (check_problem): the element type, the grid's limit on
  /// M chunks, then the mainloop's widths and alignments. The message names the argument. validate<Gemm>() calls it
  /// after check_problem().
  static Status can_implement(const GemmProblem& p) {
    const Status element = detail::check_element(p.dtype, Element::kType);
    if (!element.ok()) return element;
    if (static_cast<std::int64_t>(p.m) > static_cast<std::int64_t>(detail::kMaxGridYZ) * kMaxRows)
      return detail::invalid(
          "problem.m: too large for one launch (more than 65535 chunks of the kernel's largest rows per block: "
          "524280 rows for the SIMT mainloop, 4194240 for the MMA mainloop)");
    return Mainloop::can_implement(p);
  }

  template <int kRows, bool kActOrder>
  OPT4GPTQ_DEVICE static void run(const KernelParams& p, SharedStorage<kRows>& smem) {
    if constexpr (kPoliciesValid) {
      // The mainloop hands its accumulators to the reduction in place (no copy: the same live ranges as one
      // function), and where they belong; the scheduler adds the split-K context. Accumulators and output are the
      // mainloop's types (float[kRows][4] and ThreadOutput for MainloopSimt): the ReducePolicy must take them.
      Mainloop::template run<kRows, kActOrder>(
          p, Scheduler::template work<kRows>(p), smem.mainloop, [&](const auto& acc, auto&& where) {
            using ReduceStorage = typename detail::reduce_storage<Reduce, TileShape, kRows, true>::type;
            if constexpr (!std::is_empty_v<ReduceStorage>) __syncthreads();  // the reduce storage overlays
            auto out = where();
            Scheduler::split_k_context(p, out);
            if constexpr (detail::mainloop_owns_reduce_step<Mainloop>::value)
              Mainloop::template reduce<Reduce, kRows>(smem.reduce, acc, out);
            else
              Reduce::template reduce<TileShape, kRows>(smem.reduce, acc, out);
          });
    }
  }
};

/// The `__global__` entry point: one per (kernel, rows of M per block, act-order).
template <class Gemm, int kRows, bool kActOrder>
__global__ static void __launch_bounds__(Gemm::kThreads) dequant_gemm_kernel(const KernelParams params) {
  __shared__ typename Gemm::template SharedStorage<kRows> smem;
  Gemm::template run<kRows, kActOrder>(params, smem);
}

/// The entry point of kernels with static storage whose tile states a register budget (GemmKernel::kBoundedRegisters).
template <class Gemm, int kRows, bool kActOrder>
__global__ static void __launch_bounds__(Gemm::kThreads, Gemm::kMinBlocksPerMultiprocessor)
    dequant_gemm_kernel_bounded(const KernelParams params) {
  __shared__ typename Gemm::template SharedStorage<kRows> smem;
  Gemm::template run<kRows, kActOrder>(params, smem);
}

/// The entry point of kernels whose storage is dynamic shared memory (GemmKernel::kDynamicShared).
template <class Gemm, int kRows, bool kActOrder>
__global__ static void __launch_bounds__(Gemm::kThreads, Gemm::kMinBlocksPerMultiprocessor)
    dequant_gemm_kernel_dynamic(const KernelParams params) {
  extern __shared__ __align__(16) unsigned char opt4gptq_dynamic_shared[];
  Gemm::template run<kRows, kActOrder>(
      params, *reinterpret_cast<typename Gemm::template SharedStorage<kRows>*>(opt4gptq_dynamic_shared));
}

/// The entry point of (Gemm, kRows, kActOrder): static or dynamic shared memory, as the kernel says.
template <class Gemm, int kRows, bool kActOrder>
constexpr auto entry_point() {
  if constexpr (Gemm::kDynamicShared)
    return &dequant_gemm_kernel_dynamic<Gemm, kRows, kActOrder>;
  else if constexpr (Gemm::kBoundedRegisters)
    return &dequant_gemm_kernel_bounded<Gemm, kRows, kActOrder>;
  else
    return &dequant_gemm_kernel<Gemm, kRows, kActOrder>;
}

OPT4GPTQ_NAMESPACE_END
