#pragma once
/// @file
/// Which dispatch table serves a device: the measured table of its architecture where one exists
/// (dispatch/sm90_h200.hpp), else the provisional table of its kind (dispatch/provisional.hpp). A new measured table
/// is one include and one line here.
/// @ingroup host_api

#include "../dispatch_table.hpp"
#include "../gpu_arch.hpp"
#include "provisional.hpp"
#include "sm90_h200.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace dispatch {

/// @ingroup host_api
/// The table for a device of architecture `arch`. An unknown architecture gets the AMD SIMT table, whose kernels
/// need nothing of the device.
constexpr const DispatchTable& table_for(const GpuArch& arch) {
  if (arch.vendor == GpuVendor::kNvidia) {
    if (arch.major == 9) return kSm90H200;
    return arch.has_matrix_cores() ? kNvidiaMatrixCore : kNvidiaSimt;
  }
  if (arch.vendor == GpuVendor::kAmd && arch.has_matrix_cores()) return kAmdMatrixCore;
  return kAmdSimt;
}

}  // namespace dispatch
OPT4GPTQ_NAMESPACE_END
