#pragma once
/// @file
/// KernelParams: one call as the device sees it (strides applied, defaults filled in, the plan's K split), built on
/// the host by make_params() (host/plan.hpp) and passed to the `__global__` entry point by value. Every mainloop,
/// scheduler and ReducePolicy of the library reads its fields from here.

#include <cstdint>

#include "../platform.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup kernel
struct KernelParams {
  const half* a;
  std::int64_t lda;
  const std::uint32_t* qweight;
  std::int64_t ldq;
  const std::uint32_t* qzeros;
  std::int64_t ldz;
  const half* scales;
  std::int64_t lds;
  half* c;
  std::int64_t ldc;
  int m;
  int n;
  int k_rows;      ///< rows of qweight covered by the grid: k, or the prepared act-order layout's k_rows_max
  int group_size;  ///< rows per group (a group size of -1 arrives as a value >= k_rows: one group)
  std::uint32_t zero_word_offset;  ///< added to every qzeros word: format::zero_word_offset (v1 0x11111111, v2 0)
  int rows_per_block;              ///< scheduler: rows of K per block along grid z, a multiple of the stage
  int whole_k;                     ///< scheduler: 1 when the grid has one block along K
  const int* perm;                 ///< act-order: source row of A for each sorted row (-1: padding)
  const int* word_group;           ///< act-order: group of each sorted 8-row word
  const int* act_order_info;       ///< act-order: the prepared buffer's header (ActOrderInfo)
  int act_order_k;                 ///< act-order: rows of the layer (A's columns) the view says it was prepared for
  int act_order_groups;            ///< act-order: num_groups the view says it was prepared for
  void* workspace;                 ///< the ReducePolicy's workspace, when it needs one
};

OPT4GPTQ_NAMESPACE_END
