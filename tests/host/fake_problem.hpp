#pragma once
// Problems whose pointers are fake addresses (never dereferenced), for the host tests of the argument checks. Plain
// C++ (problem.hpp only), so that the g++ test and the GPU-compiled tests share it.

#include <opt4gptq/problem.hpp>

#include <cstdint>

namespace test {

template <class T>
T* fake(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

/// A valid 4096 x 4096 problem with group size 128, v2 zeros, all pointers 256-byte aligned and 256 MiB apart.
inline opt4gptq::GemmProblem valid_problem() {
  opt4gptq::GemmProblem p;
  p.m = 5;
  p.n = 4096;
  p.k = 4096;
  p.a = fake<const opt4gptq::half>(0x10000000);
  p.qweight = fake<const std::int32_t>(0x20000000);
  p.qzeros = fake<const std::int32_t>(0x30000000);
  p.scales = fake<const opt4gptq::half>(0x40000000);
  p.c = fake<opt4gptq::half>(0x50000000);
  p.group_size = 128;
  p.zero_format = opt4gptq::ZeroPointFormat::kGptqV2;
  return p;
}

/// The view prepare_act_order() would give for a layer of (k, n, num_groups), at fake addresses.
inline opt4gptq::PreparedActOrder fake_act_order(int k, int n, int num_groups) {
  opt4gptq::PreparedActOrder ao;
  ao.qweight = fake<const std::int32_t>(0x60000000);
  ao.perm = fake<const std::int32_t>(0x70000000);
  ao.word_group = fake<const std::int32_t>(0x80000000);
  ao.info = fake<const std::int32_t>(0x90000000);
  ao.k = k;
  ao.n = n;
  ao.num_groups = num_groups;
  ao.k_rows_max = static_cast<int>(opt4gptq::PreparedActOrder::rows_max(k, num_groups));
  return ao;
}

}  // namespace test
