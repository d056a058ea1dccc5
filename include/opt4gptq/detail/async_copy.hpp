#pragma once
/// @file
/// Copies of 16 bytes from global into shared memory that do not hold registers or stall the issuing thread while
/// they are in flight, for mainloops that keep several stages of a stream in flight (kernel/mainloop_mma_pipelined.hpp).
///
/// - NVIDIA sm_80 and later: `cp.async.cg.shared.global` (L2 only: the weights are read once, and the activations are
///   staged once per block), grouped with `cp.async.commit_group` and waited for with `cp.async.wait_group N`
///   ("at most N of my most recent groups may still be in flight"). A copy that is out of the tensor passes a source
///   size of 0, which fills the 16 bytes with zeros and reads nothing.
/// - Elsewhere (AMD, older NVIDIA) the copy is a plain 16-byte load and shared store: correct, but the load's latency
///   is paid at the store, so a pipeline built on it has one stage in flight. gfx90a has no global-to-LDS copy of 16
///   bytes per lane (gfx940's `global_load_lds_dwordx4` is not in clang 15); no AMD GPU has run this code.
/// Only this header (and the platform layer) knows which it is: mainloops call copy16(), commit(), wait<N>().
/// @ingroup kernel

#include <cstdint>

#include "../platform.hpp"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define OPT4GPTQ_HAS_CP_ASYNC 1
#else
#define OPT4GPTQ_HAS_CP_ASYNC 0
#endif

OPT4GPTQ_NAMESPACE_BEGIN
namespace detail {
namespace async_copy {

/// Whether the device pass being compiled copies asynchronously (false in the host pass).
inline constexpr bool kAsynchronous = OPT4GPTQ_HAS_CP_ASYNC != 0;

/// 16 bytes from `src` (16-byte aligned, global) to `dst` (16-byte aligned, shared), or 16 zero bytes when `inside`
/// is false (then `src` is not read; it must still be a valid address expression, any value).
OPT4GPTQ_DEVICE void copy16(void* dst, const void* src, bool inside) {
#if OPT4GPTQ_HAS_CP_ASYNC
  const unsigned int shared = static_cast<unsigned int>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared), "l"(src), "r"(inside ? 16 : 0)
               : "memory");
#else
  struct alignas(16) Bytes16 {
    std::uint32_t x, y, z, w;
  };
  *static_cast<Bytes16*>(dst) = inside ? *static_cast<const Bytes16*>(src) : Bytes16{0u, 0u, 0u, 0u};
#endif
}

/// Closes the group of copies issued by this thread since the last commit.
OPT4GPTQ_DEVICE void commit() {
#if OPT4GPTQ_HAS_CP_ASYNC
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

/// Waits until at most `kPending` of this thread's most recent groups are still in flight; the copies of the older
/// groups are then visible to this thread (to others after a barrier).
template <int kPending>
OPT4GPTQ_DEVICE void wait() {
#if OPT4GPTQ_HAS_CP_ASYNC
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
#endif
}

}  // namespace async_copy
}  // namespace detail
OPT4GPTQ_NAMESPACE_END
