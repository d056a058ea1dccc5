#pragma once
/// @file
/// Compile-time checks of the three policy contracts: one detection trait per required member, and one static_assert
/// per trait whose message spells out the member that is missing. `DequantGemm` runs all three checks, then gates its
/// body on the result so that a broken policy gives these messages and not a cascade of template errors.
///
/// Limit: a detection trait cannot tell `__device__` from `__host__` functions. A policy member without `__device__`
/// passes the check and fails later with the compiler's own message.
/// @ingroup policies

#include <type_traits>
#include <utility>

#include "../platform.hpp"
#include "../tile.hpp"
#include "reduce.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

namespace traits {

// ---- LoadPolicy ------------------------------------------------------------------------------------------------
template <class P, class = void>
struct has_vector_halves : std::false_type {};
template <class P>
struct has_vector_halves<P, std::void_t<decltype(P::kVectorHalves)>>
    : std::bool_constant<std::is_integral_v<std::remove_cv_t<decltype(P::kVectorHalves)>>> {};

template <class P, bool = has_vector_halves<P>::value>
struct valid_vector_halves : std::false_type {};
template <class P>
struct valid_vector_halves<P, true> : std::bool_constant<P::kVectorHalves == 1 || P::kVectorHalves == 2 ||
                                                         P::kVectorHalves == 4 || P::kVectorHalves == 8> {};

template <class P, bool = valid_vector_halves<P>::value, class = void>
struct has_load : std::false_type {};
template <class P>
struct has_load<
    P, true,
    std::void_t<decltype(P::load(std::declval<const half*>(),
                                 std::declval<half (&)[valid_vector_halves<P>::value ? P::kVectorHalves : 1]>()))>>
    : std::true_type {};

// ---- MathPolicy ------------------------------------------------------------------------------------------------
template <class P, class = void>
struct has_fma2 : std::false_type {};
template <class P>
struct has_fma2<P, std::void_t<decltype(P::fma2(std::declval<half2>(), std::declval<half2>(), std::declval<half2>()))>>
    : std::is_same<decltype(P::fma2(std::declval<half2>(), std::declval<half2>(), std::declval<half2>())), half2> {};

template <class P, class = void>
struct has_add2 : std::false_type {};
template <class P>
struct has_add2<P, std::void_t<decltype(P::add2(std::declval<half2>(), std::declval<half2>()))>>
    : std::is_same<decltype(P::add2(std::declval<half2>(), std::declval<half2>())), half2> {};

/// Optional member: `static float dot8(const half2 (&a)[4], const half2 (&w)[4])`.
template <class P, class = void>
struct has_dot8 : std::false_type {};
template <class P>
struct has_dot8<P,
                std::void_t<decltype(P::dot8(std::declval<const half2 (&)[4]>(), std::declval<const half2 (&)[4]>()))>>
    : std::true_type {};

// ---- ReducePolicy (probed with a small tile) -------------------------------------------------------------------
using ProbeTile = TileShape<128, 32, 128, 0, 4, 1>;

template <class P, class = void>
struct has_shared_storage : std::false_type {};
template <class P>
struct has_shared_storage<P, std::void_t<typename P::template SharedStorage<ProbeTile, 1>>> : std::true_type {};

template <class P, class = void>
struct has_accumulates_into_output : std::false_type {};
template <class P>
struct has_accumulates_into_output<P, std::void_t<decltype(P::accumulates_into_output(1))>>
    : std::is_convertible<decltype(P::accumulates_into_output(1)), bool> {};

template <class P, bool = has_shared_storage<P>::value, class = void>
struct has_reduce : std::false_type {};
template <class P>
struct has_reduce<P, true,
                  std::void_t<decltype(P::template reduce<ProbeTile, 1>(
                      std::declval<typename P::template SharedStorage<ProbeTile, 1>&>(),
                      std::declval<const float (&)[1][4]>(), std::declval<const ThreadOutput&>()))>> : std::true_type{};

/// Optional member: `static std::size_t workspace_bytes(const ReduceGeometry&)`.
template <class P, class = void>
struct has_workspace_bytes : std::false_type {};
template <class P>
struct has_workspace_bytes<P, std::void_t<decltype(P::workspace_bytes(std::declval<const ReduceGeometry&>()))>>
    : std::is_convertible<decltype(P::workspace_bytes(std::declval<const ReduceGeometry&>())), std::size_t> {};

/// Optional member: `static std::size_t counter_bytes(const ReduceGeometry&)`, the counters the policy keeps in the
/// workspace's head (kWorkspaceCounterBytes).
template <class P, class = void>
struct has_counter_bytes : std::false_type {};
template <class P>
struct has_counter_bytes<P, std::void_t<decltype(P::counter_bytes(std::declval<const ReduceGeometry&>()))>>
    : std::is_convertible<decltype(P::counter_bytes(std::declval<const ReduceGeometry&>())), std::size_t> {};

/// The block-sum contract (ReduceSharedBuffered::block_sums): block_sums() and commit(), probed with the tile of the
/// mainloop that asks.
template <class P, class Tile, bool = has_shared_storage<P>::value, class = void>
struct has_block_commit : std::false_type {};
template <class P, class Tile>
struct has_block_commit<
    P, Tile, true,
    std::void_t<decltype(P::template block_sums<Tile, 16>(
                    std::declval<typename P::template SharedStorage<Tile, 16>&>())),
                decltype(P::template commit<Tile, 16>(std::declval<typename P::template SharedStorage<Tile, 16>&>(),
                                                      std::declval<const ThreadOutput&>()))>>
    : std::is_same<decltype(P::template block_sums<Tile, 16>(
                       std::declval<typename P::template SharedStorage<Tile, 16>&>())),
                   float*> {};

}  // namespace traits

/// Workspace a ReducePolicy needs for a grid: its `workspace_bytes`, or 0 when it declares none.
template <class Reduce>
constexpr std::size_t reduce_workspace_bytes(const ReduceGeometry& grid) {
  if constexpr (traits::has_workspace_bytes<Reduce>::value)
    return Reduce::workspace_bytes(grid);
  else
    return 0;
}

/// Bytes of the workspace's head a ReducePolicy's counters take for a grid: its `counter_bytes`, or 0.
template <class Reduce>
constexpr std::size_t reduce_counter_bytes(const ReduceGeometry& grid) {
  if constexpr (traits::has_counter_bytes<Reduce>::value)
    return grid.k_blocks <= 1 ? 0 : Reduce::counter_bytes(grid);
  else
    return 0;
}

template <class P>
inline constexpr bool is_load_policy_v = traits::valid_vector_halves<P>::value&& traits::has_load<P>::value;
template <class P>
inline constexpr bool is_math_policy_v = traits::has_fma2<P>::value&& traits::has_add2<P>::value;
template <class P>
inline constexpr bool is_reduce_policy_v =
    traits::has_shared_storage<P>::value&& traits::has_accumulates_into_output<P>::value&& traits::has_reduce<P>::value;

/// @ingroup policies
template <class P>
constexpr bool check_load_policy() {
  static_assert(traits::has_vector_halves<P>::value,
                "LoadPolicy must declare: static constexpr int kVectorHalves (halves per load: 1, 2, 4 or 8)");
  static_assert(!traits::has_vector_halves<P>::value || traits::valid_vector_halves<P>::value,
                "LoadPolicy::kVectorHalves must be 1, 2, 4 or 8");
  static_assert(!traits::valid_vector_halves<P>::value || traits::has_load<P>::value,
                "LoadPolicy must declare: __device__ static void load(const opt4gptq::half* src, "
                "opt4gptq::half (&dst)[kVectorHalves])");
  return is_load_policy_v<P>;
}

/// @ingroup policies
template <class P>
constexpr bool check_math_policy() {
  static_assert(traits::has_fma2<P>::value,
                "MathPolicy must declare: __device__ static opt4gptq::half2 fma2(opt4gptq::half2 a, "
                "opt4gptq::half2 b, opt4gptq::half2 c)");
  static_assert(traits::has_add2<P>::value,
                "MathPolicy must declare: __device__ static opt4gptq::half2 add2(opt4gptq::half2 a, "
                "opt4gptq::half2 b)");
  return is_math_policy_v<P>;
}

/// @ingroup policies
template <class P>
constexpr bool check_reduce_policy() {
  static_assert(traits::has_shared_storage<P>::value,
                "ReducePolicy must declare: template <class Tile, int kRows> struct SharedStorage (may be empty)");
  static_assert(traits::has_accumulates_into_output<P>::value,
                "ReducePolicy must declare: static constexpr bool accumulates_into_output(int k_blocks)");
  static_assert(!traits::has_shared_storage<P>::value || traits::has_reduce<P>::value,
                "ReducePolicy must declare: template <class Tile, int kRows> __device__ static void reduce("
                "SharedStorage<Tile, kRows>& smem, const float (&partial)[kRows][4], "
                "const opt4gptq::ThreadOutput& out)");
  return is_reduce_policy_v<P>;
}

/// For mainloops whose accumulators are matrix fragments (kernel/mainloop_mma.hpp): a ReducePolicy that commits a
/// block's sums from shared memory.
/// @ingroup policies
template <class P, class Tile>
constexpr bool check_block_reduce_policy() {
  constexpr bool kReduce = check_reduce_policy<P>();
  static_assert(!kReduce || traits::has_block_commit<P, Tile>::value,
                "this mainloop's accumulators are matrix fragments: its ReducePolicy must also commit a block's sums "
                "from shared memory (template <class Tile, int kRows> __device__ static float* block_sums("
                "SharedStorage<Tile, kRows>&) and void commit(SharedStorage<Tile, kRows>&, const ThreadOutput&)): "
                "ReduceSharedBuffered or ReduceSharedSerial, not ReduceGlobalAtomic");
  return kReduce && traits::has_block_commit<P, Tile>::value;
}

namespace traits {
/// Whether a ReducePolicy writes bf16 outputs (`static constexpr bool kWritesBf16 = true`: see ThreadOutputBf16).
template <class P, class = void>
struct writes_bf16 : std::false_type {};
template <class P>
struct writes_bf16<P, std::void_t<decltype(P::kWritesBf16)>> : std::bool_constant<P::kWritesBf16> {};
}  // namespace traits

/// For kernels whose C holds bf16 (ElementBf16): a ReducePolicy of the contract that also rounds to bf16.
/// @ingroup policies
template <class P>
constexpr bool check_bf16_reduce_policy() {
  constexpr bool kReduce = check_reduce_policy<P>();
  static_assert(!kReduce || traits::writes_bf16<P>::value,
                "a bf16 kernel's ReducePolicy must write bf16 outputs: declare static constexpr bool kWritesBf16 = "
                "true, take the output as a template parameter (ThreadOutputBf16) and write through "
                "detail::to_output_pair / detail::atomic_add_pair (the shipped ReducePolicies do)");
  return kReduce && traits::writes_bf16<P>::value;
}

#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
/// C++20 spellings of the same checks, for constraining your own templates (the library itself stays C++17).
template <class P>
concept LoadPolicy = is_load_policy_v<P>;
template <class P>
concept MathPolicy = is_math_policy_v<P>;
template <class P>
concept ReducePolicy = is_reduce_policy_v<P>;
#endif

OPT4GPTQ_NAMESPACE_END
