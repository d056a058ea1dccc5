#pragma once
/// @file
/// validate<Gemm>(problem): whether a kernel can run a problem, with a message naming the first argument at fault.

#include "../detail/checks.hpp"
#include "../problem.hpp"
#include "../status.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// Checks everything the kernel assumes and names the first argument that breaks it: first the problem itself
/// (check_problem(): the layer's format rules, then the call's; no GPU needed), then what this kernel can run
/// (Gemm::can_implement(): its grid limits, load widths and alignments). Host-only: it reads no device memory (g_idx
/// contents are checked by prepare_act_order on the device).
/// @ingroup host_api
template <class Gemm>
Status validate(const GemmProblem& p) {
  if constexpr (!Gemm::kPoliciesValid) {
    // Not reachable in a program that compiled: the policy checks' static_asserts stop the build first. This branch
    // only keeps the rest of the function from being instantiated with a broken policy (one error, not a cascade).
    return Status::error(StatusCode::kUnsupported, "policies: a policy breaks its contract (see the compiler errors)");
  } else {
    const Status s = check_problem(p);
    if (!s.ok()) return s;
    return Gemm::can_implement(p);
  }
}

OPT4GPTQ_NAMESPACE_END
