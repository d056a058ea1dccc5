#pragma once
/// @file
/// What a mainloop may read of a call, given the prepared act-order layout's header: the rows of packed weights in
/// use, and whether the data are valid. Shared by the mainloops, so that every kernel refuses a wrong view the same
/// way: reading nothing and producing NaN.
/// @ingroup kernel

#include "../platform.hpp"
#include "../weights.hpp"
#include "params.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace detail {

struct RowsInUse {
  int k_rows;       ///< rows of packed weights the grid may read
  bool data_valid;  ///< false: the outputs must be NaN (the host's check_act_order() says why)
};

/// Without act-order: all of p.k_rows, valid. With it, the buffer's header says what it was prepared for: a view that
/// disagrees (another layer's buffer, another num_groups) would gather A through a wrong permutation, so it reads
/// nothing; a g_idx entry outside [0, num_groups) found by prepare_act_order makes the data invalid.
template <bool kActOrder>
OPT4GPTQ_DEVICE RowsInUse rows_in_use(const KernelParams& p) {
  RowsInUse r{p.k_rows, true};
  if constexpr (kActOrder) {
    const int* info = p.act_order_info;
    const bool same_layout = info[ActOrderInfo::kK] == p.act_order_k && info[ActOrderInfo::kN] == p.n &&
                             info[ActOrderInfo::kGroups] == p.act_order_groups &&
                             info[ActOrderInfo::kRowsMax] == p.k_rows;
    r.k_rows = same_layout ? min(r.k_rows, info[ActOrderInfo::kRowsUsed]) : 0;
    r.data_valid = same_layout && info[ActOrderInfo::kInvalid] == 0;
  }
  return r;
}

/// Sets every fp32 of a register array (any shape) to NaN.
template <class Array>
OPT4GPTQ_DEVICE void fill_nan(Array& values) {
  constexpr int kCount = static_cast<int>(sizeof(Array) / sizeof(float));
  float* v = reinterpret_cast<float*>(&values);
#pragma unroll
  for (int i = 0; i < kCount; ++i) v[i] = __int_as_float(0x7fc00000);
}

}  // namespace detail
OPT4GPTQ_NAMESPACE_END
