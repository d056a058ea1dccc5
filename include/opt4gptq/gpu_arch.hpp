#pragma once
/// @file
/// GpuArch: which architecture a device is (NVIDIA compute capability, AMD gfx name), the key of the dispatch tables
/// and of what the device can run (matrix instructions). Plain C++: the runtime query is host/device_info.hpp's.
/// @ingroup host_api

#include "version.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup host_api
enum class GpuVendor : int {
  kUnknown = 0,  ///< not queried
  kNvidia = 1,
  kAmd = 2,
};

/// @ingroup host_api
/// A device architecture: NVIDIA compute capability `major.minor` (sm_90: 9, 0), or AMD `gfx<major><minor>` with the
/// last two characters of the gfx name as a hexadecimal `minor` (gfx906: 9, 0x06; gfx90a: 9, 0x0a; gfx942: 9, 0x42;
/// gfx1100: 11, 0x00).
struct GpuArch {
  GpuVendor vendor = GpuVendor::kUnknown;
  int major = 0;
  int minor = 0;

  /// The matrix instructions of kernel/mainloop_mma.hpp: NVIDIA mma.sync m16n8k16 (sm_80 and later); AMD
  /// v_mfma_f32_16x16x16f16 (gfx908, gfx90a, gfx940-942; mma/instructions.hpp). gfx906 (HYGON DCU Z100) has none.
  constexpr bool has_matrix_cores() const {
    if (vendor == GpuVendor::kNvidia) return major >= 8;
    if (vendor == GpuVendor::kAmd)
      return major == 9 && (minor == 0x08 || minor == 0x0a || minor == 0x40 || minor == 0x41 || minor == 0x42);
    return false;
  }
};

/// @ingroup host_api
/// The architecture of an NVIDIA device of compute capability `major.minor`.
constexpr GpuArch nvidia_arch(int major, int minor) { return GpuArch{GpuVendor::kNvidia, major, minor}; }

/// @ingroup host_api
/// Reads an AMD architecture name as the runtime reports it (`hipDeviceProp_t::gcnArchName`, e.g.
/// "gfx90a:sramecc+:xnack-"; the feature suffix is ignored). False (and `*arch` untouched) when the name is not
/// `gfx` followed by 3 or 4 hexadecimal digits.
constexpr bool parse_amd_arch(const char* name, GpuArch* arch) {
  if (name == nullptr || arch == nullptr || name[0] != 'g' || name[1] != 'f' || name[2] != 'x') return false;
  int digits[4] = {0, 0, 0, 0};
  int count = 0;
  for (const char* p = name + 3; *p != '\0' && *p != ':'; ++p) {
    const char c = *p;
    const int value = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (value < 0 || count == 4) return false;
    digits[count++] = value;
  }
  if (count < 3) return false;
  int major = 0;
  for (int i = 0; i < count - 2; ++i) {
    if (digits[i] > 9) return false;  // the major is decimal (gfx1100: 11)
    major = 10 * major + digits[i];
  }
  *arch = GpuArch{GpuVendor::kAmd, major, 16 * digits[count - 2] + digits[count - 1]};
  return true;
}

OPT4GPTQ_NAMESPACE_END
