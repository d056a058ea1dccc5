#pragma once
/// @file
/// Device facts the host API plans launches with: the multiprocessor count and architecture of a device, and how many
/// blocks of one kernel instantiation fit on one multiprocessor. Both are runtime queries that cost microseconds, so they are cached
/// per device, in one cache whose key is a type: `DeviceCache<Key>` holds one slot per device for each Key. The
/// occupancy key is the kernel instantiation itself (kernel, rows of M per block, act-order), not the type of the
/// kernel's function pointer, which every instantiation shares (`void(*)(KernelParams)`): keyed by that, the first
/// kernel queried decided the K split of every other one.
/// @ingroup host_api

#include <atomic>

#include "../detail/checks.hpp"
#include "../kernel/gemm_kernel.hpp"
#include "../platform.hpp"
#include "../status.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace detail {

/// A Status for a failed runtime call.
inline Status runtime_error(platform::native_error_t e) {
  return Status::error(StatusCode::kRuntimeError, platform::error_string(e), static_cast<int>(e));
}

/// A Status for a rejected kernel launch.
inline Status launch_failed(platform::native_error_t e) {
  return Status::error(StatusCode::kLaunchFailed, platform::error_string(e), static_cast<int>(e));
}

/// One int per device and Key, filled by the first successful query. Devices past kMaxDevices are queried each time.
template <class Key>
struct DeviceCache {
  static constexpr int kMaxDevices = 64;

  /// `*value` from the cache, or from `query(int*)` (a runtime call returning platform::native_error_t).
  template <class Query>
  static Status get(int device, Query&& query, int* value) {
    static std::atomic<int> slots[kMaxDevices] = {};
    const bool cached = device >= 0 && device < kMaxDevices;
    if (cached) {
      *value = slots[device].load(std::memory_order_relaxed);
      if (*value > 0) return Status::success();
    }
    const platform::native_error_t e = query(value);
    if (e != platform::kNativeSuccess) return runtime_error(e);
    if (*value < 1) *value = 1;  // a kernel that fits nowhere would fail its launch, with the runtime's message
    if (cached) slots[device].store(*value, std::memory_order_relaxed);
    return Status::success();
  }
};

struct MultiprocessorCountKey {};
struct ArchKey {};
template <class Gemm, int kRowsM, bool kActOrder>
struct OccupancyKey {};

}  // namespace detail

/// The device a launch runs on, as the planner sees it.
/// @ingroup host_api
struct DeviceInfo {
  int device = 0;           ///< runtime device index
  int multiprocessors = 0;  ///< SMs (NVIDIA) or CUs (AMD)
  GpuArch arch;             ///< which dispatch table and kernels serve it (the plan of one kernel does not need it)
};

/// The current device, its multiprocessor count and its architecture (cached per device).
/// @ingroup host_api
inline Status current_device_info(DeviceInfo* info) {
  if (info == nullptr) return detail::null("info: null");
  platform::native_error_t e = platform::current_device(&info->device);
  if (e != platform::kNativeSuccess) return detail::runtime_error(e);
  const int device = info->device;
  Status s = detail::DeviceCache<detail::MultiprocessorCountKey>::get(
      device, [device](int* count) { return platform::multiprocessor_count(device, count); }, &info->multiprocessors);
  if (!s.ok()) return s;
  // One int per device: vendor, major and minor packed (never 0: the vendor is at least 1).
  int packed = 0;
  s = detail::DeviceCache<detail::ArchKey>::get(
      device,
      [device](int* value) {
        GpuArch arch;
        const platform::native_error_t err = platform::device_arch(device, &arch);
        *value = static_cast<int>(arch.vendor) << 16 | (arch.major & 0xff) << 8 | (arch.minor & 0xff);
        return err;
      },
      &packed);
  if (!s.ok()) return s;
  info->arch = GpuArch{static_cast<GpuVendor>(packed >> 16), (packed >> 8) & 0xff, packed & 0xff};
  return Status::success();
}

namespace detail {

template <class Gemm, int kRowsM, bool kActOrder>
struct DynamicSharedKey {};

/// Raises the dynamic shared memory limit of the entry point of (Gemm, kRowsM, kActOrder) to what it uses, once per
/// device (`device` is the current one); nothing for kernels with static shared memory.
template <class Gemm, int kRowsM, bool kActOrder>
Status prepare_entry_point(int device) {
  constexpr std::size_t kBytes = Gemm::template dynamic_shared_bytes<kRowsM>();
  if constexpr (kBytes == 0) {
    (void)device;
    return Status::success();
  } else {
    int done = 0;
    return DeviceCache<DynamicSharedKey<Gemm, kRowsM, kActOrder>>::get(
        device,
        [](int* value) {
          *value = 1;
          return platform::allow_dynamic_shared(entry_point<Gemm, kRowsM, kActOrder>(), kBytes);
        },
        &done);
  }
}

/// Resident blocks per multiprocessor of the entry point of (Gemm, kRowsM, kActOrder) on `device` (the current
/// device: the occupancy query asks about it), with its dynamic shared memory.
template <class Gemm, int kRowsM, bool kActOrder>
Status blocks_per_multiprocessor(int device, int* blocks) {
  const Status s = prepare_entry_point<Gemm, kRowsM, kActOrder>(device);
  if (!s.ok()) return s;
  return DeviceCache<OccupancyKey<Gemm, kRowsM, kActOrder>>::get(
      device,
      [&](int* value) {
        return platform::max_active_blocks(entry_point<Gemm, kRowsM, kActOrder>(), Gemm::kThreads, value,
                                           Gemm::template dynamic_shared_bytes<kRowsM>());
      },
      blocks);
}

}  // namespace detail
OPT4GPTQ_NAMESPACE_END
