#pragma once
/// @file
/// Warp- and block-level collectives, from rocPRIM on AMD and CUB on NVIDIA (both maintained by the vendors and tuned
/// per architecture: DPP and `ds_swizzle` on gfx9, `SHFL` on NVIDIA). This is part of the platform layer: kernel code
/// calls these names and stays free of `#ifdef`s. Not API.

#include "../platform.hpp"

#if defined(OPT4GPTQ_BACKEND_HIP)
// First (clang-format would sort it after the others): rocPRIM 2.x block_scan uses rocprim::min without including it.
// clang-format off
#include <rocprim/functional.hpp>
// clang-format on
#include <rocprim/block/block_radix_sort.hpp>
#include <rocprim/block/block_scan.hpp>
#include <rocprim/warp/warp_reduce.hpp>
#else
#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/warp/warp_reduce.cuh>
#endif

OPT4GPTQ_NAMESPACE_BEGIN
namespace detail {

struct MaxOp {
  template <class T>
  OPT4GPTQ_HOST_DEVICE T operator()(const T& a, const T& b) const {
    return a < b ? b : a;
  }
};

/// Sum over each group of `kLogicalWarp` consecutive lanes (a power of two, at most the wave size); the result is
/// valid in the group's first lane. Every lane of the group must call it.
template <int kLogicalWarp>
struct WarpSum {
#if defined(OPT4GPTQ_BACKEND_HIP)
  using Impl = rocprim::warp_reduce<float, kLogicalWarp>;
  using TempStorage = typename Impl::storage_type;
  OPT4GPTQ_DEVICE static float sum(float value, TempStorage& storage) {
    float result;
    Impl().reduce(value, result, storage);
    return result;
  }
#else
  using Impl = cub::WarpReduce<float, kLogicalWarp>;
  using TempStorage = typename Impl::TempStorage;
  OPT4GPTQ_DEVICE static float sum(float value, TempStorage& storage) { return Impl(storage).Sum(value); }
#endif
};

/// One lane is its own group: nothing to combine (CUB and rocPRIM do not take logical warps of one lane).
template <>
struct WarpSum<1> {
  struct TempStorage {};
  OPT4GPTQ_DEVICE static float sum(float value, TempStorage&) { return value; }
};

/// Maximum of an unsigned value over each group of `kLogicalWarp` consecutive lanes (a power of two, at most the wave
/// size); the result is valid in the group's first lane. Every lane of the group must call it.
template <int kLogicalWarp>
struct WarpMaxUnsigned {
#if defined(OPT4GPTQ_BACKEND_HIP)
  using Impl = rocprim::warp_reduce<unsigned int, kLogicalWarp>;
  using TempStorage = typename Impl::storage_type;
  OPT4GPTQ_DEVICE static unsigned int max(unsigned int value, TempStorage& storage) {
    unsigned int result;
    Impl().reduce(value, result, storage, MaxOp{});
    return result;
  }
#else
  using Impl = cub::WarpReduce<unsigned int, kLogicalWarp>;
  using TempStorage = typename Impl::TempStorage;
  OPT4GPTQ_DEVICE static unsigned int max(unsigned int value, TempStorage& storage) {
    return Impl(storage).Reduce(value, MaxOp{});
  }
#endif
};

/// Stable ascending sort of one (key, value) pair per thread over a block of `kThreads`, on bits [0, end_bit).
template <int kThreads>
struct BlockSortPairs {
#if defined(OPT4GPTQ_BACKEND_HIP)
  using Impl = rocprim::block_radix_sort<int, kThreads, 1, int>;
  using TempStorage = typename Impl::storage_type;
  OPT4GPTQ_DEVICE static void sort(int& key, int& value, TempStorage& storage, int end_bit) {
    int keys[1] = {key};
    int values[1] = {value};
    Impl().sort(keys, values, storage, 0, static_cast<unsigned int>(end_bit));
    key = keys[0];
    value = values[0];
  }
#else
  using Impl = cub::BlockRadixSort<int, kThreads, 1, int>;
  using TempStorage = typename Impl::TempStorage;
  OPT4GPTQ_DEVICE static void sort(int& key, int& value, TempStorage& storage, int end_bit) {
    int keys[1] = {key};
    int values[1] = {value};
    Impl(storage).Sort(keys, values, 0, end_bit);
    key = keys[0];
    value = values[0];
  }
#endif
};

/// Block-wide scans of one int per thread.
template <int kThreads>
struct BlockScanInt {
#if defined(OPT4GPTQ_BACKEND_HIP)
  using Impl = rocprim::block_scan<int, kThreads>;
  using TempStorage = typename Impl::storage_type;
  OPT4GPTQ_DEVICE static int inclusive_max(int value, TempStorage& storage) {
    int result;
    Impl().inclusive_scan(value, result, storage, MaxOp{});
    return result;
  }
  OPT4GPTQ_DEVICE static int exclusive_sum(int value, int& total, TempStorage& storage) {
    int result;
    Impl().exclusive_scan(value, result, 0, total, storage, rocprim::plus<int>());
    return result;
  }
#else
  using Impl = cub::BlockScan<int, kThreads>;
  using TempStorage = typename Impl::TempStorage;
  OPT4GPTQ_DEVICE static int inclusive_max(int value, TempStorage& storage) {
    int result;
    Impl(storage).InclusiveScan(value, result, MaxOp{});
    return result;
  }
  OPT4GPTQ_DEVICE static int exclusive_sum(int value, int& total, TempStorage& storage) {
    int result;
    Impl(storage).ExclusiveSum(value, result, total);
    return result;
  }
#endif
};

}  // namespace detail
OPT4GPTQ_NAMESPACE_END
