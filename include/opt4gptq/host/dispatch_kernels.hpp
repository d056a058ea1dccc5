#pragma once
/// @file
/// The kernels the dispatcher can run, listed once: a type list per element type (fp16, bf16) indexed by
/// KernelChoice, and how a runtime choice (kernel and the call's dtype) reaches its type. A KernelChoice names a kernel
/// family; its bf16 build is the bf16 preset of the same structure (DeterministicF32 -> Bf16Deterministic, Decode ->
/// Bf16Decode, the four matrix-core kernels -> their Bf16 presets, DequantCublas in either type). The paper's
/// fp16-chain kernels (Baseline, Opt4Gptq, Deterministic) have no bf16 build: a table's rule naming them is skipped for
/// bf16 calls, and the next rule for the same calls decides. The lists depend on the build: the matrix-core kernels only where every GPU target of the build
/// has matrix instructions (they are a compile-time error on gfx906), the prefill path only with cuBLAS.
///
/// A kernel in the list is a type with
/// @code
/// struct SomeKernel {
///   static constexpr KernelChoice kChoice;
///   static Status validate(const GemmProblem&);                    // can it run this call (named argument if not)
///   static Status plan_shape(int m, const QuantizedWeights&, const DeviceInfo&, const PlanOptions&, Plan*);
///   static Status launch(const Plan&, const GemmProblem&, void* workspace, std::size_t bytes, platform::stream_t);
/// };
/// @endcode
/// plan_shape() plans a call of m rows from the layer's shape alone (no pointers); launch() validates the call and the
/// plan and enqueues it. LibraryKernel adapts any GemmKernel (a preset); DequantCublas is the prefill path.
///
/// Adding a kernel (e.g. a decode preset): its KernelChoice value and kernel_info() row (dispatch_table.hpp), then one
/// line below, in the list of the targets it builds for (and one in the bf16 list when it has a bf16 build).
/// @ingroup host_api

#include <cstddef>
#include <tuple>

#include "../dispatch_table.hpp"
#include "../element.hpp"
#include "../platform.hpp"
#include "../presets.hpp"
#include "../problem.hpp"
#include "../status.hpp"
#include "../weights.hpp"
#include "dequant_cublas.hpp"
#include "device_info.hpp"
#include "launch.hpp"
#include "plan.hpp"
#include "validate.hpp"

/// Whether every GPU target of this translation unit has matrix instructions, so that the dispatcher may build its
/// matrix-core kernels: 1 by default for NVIDIA (define it to 0 when building for targets before sm_80), 0 by default
/// for AMD (define it to 1 when every --offload-arch is gfx908, gfx90a or gfx94x; with gfx906 among them the
/// matrix-core kernels do not compile, and the dispatcher runs the SIMT kernels on every AMD GPU).
#if !defined(OPT4GPTQ_ALL_TARGETS_HAVE_MATRIX_CORES)
#if defined(OPT4GPTQ_BACKEND_CUDA)
#define OPT4GPTQ_ALL_TARGETS_HAVE_MATRIX_CORES 1
#else
#define OPT4GPTQ_ALL_TARGETS_HAVE_MATRIX_CORES 0
#endif
#endif

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup host_api
/// A GemmKernel (a preset or any composition) as a dispatcher kernel.
template <KernelChoice kChoice_, class Gemm_>
struct LibraryKernel {
  using Gemm = Gemm_;
  static constexpr KernelChoice kChoice = kChoice_;

  static Status validate(const GemmProblem& p) { return opt4gptq::validate<Gemm>(p); }

  static Status plan_shape(int m, const QuantizedWeights& w, const DeviceInfo& device, const PlanOptions& options,
                           Plan* out) {
    GemmProblem shape;  // plan_valid reads the shape only: M and the layer
    shape.m = m;
    shape.weights = &w;
    return detail::plan_valid<Gemm>(shape, &device, options, out);
  }

  static Status launch(const Plan& plan, const GemmProblem& p, void* workspace, std::size_t bytes,
                       platform::stream_t stream) {
    return opt4gptq::launch<Gemm>(plan, p, workspace, bytes, stream);
  }
};

namespace detail {

// ---- the lists: one line per kernel -------------------------------------------------------------------------------
/// Kernels every target builds.
using SimtDispatchKernels = std::tuple<LibraryKernel<KernelChoice::kBaseline, presets::Baseline>,
                                       LibraryKernel<KernelChoice::kOpt4Gptq, presets::Opt4Gptq>,
                                       LibraryKernel<KernelChoice::kDeterministic, presets::Deterministic>,
                                       LibraryKernel<KernelChoice::kDeterministicF32, presets::DeterministicF32>,
                                       LibraryKernel<KernelChoice::kDecode, presets::Decode>>;
using Bf16SimtDispatchKernels = std::tuple<LibraryKernel<KernelChoice::kDeterministicF32, presets::Bf16Deterministic>,
                                           LibraryKernel<KernelChoice::kDecode, presets::Bf16Decode>>;
/// Kernels that need matrix instructions on every target of the build.
#if OPT4GPTQ_ALL_TARGETS_HAVE_MATRIX_CORES
using MatrixCoreDispatchKernels = std::tuple<
    LibraryKernel<KernelChoice::kTensorCore, presets::TensorCore>,
    LibraryKernel<KernelChoice::kTensorCoreDeterministic, presets::TensorCoreDeterministic>,
    LibraryKernel<KernelChoice::kTensorCorePipelined, presets::TensorCorePipelined>,
    LibraryKernel<KernelChoice::kTensorCorePipelinedDeterministic, presets::TensorCorePipelinedDeterministic>>;
using Bf16MatrixCoreDispatchKernels = std::tuple<
    LibraryKernel<KernelChoice::kTensorCore, presets::Bf16TensorCore>,
    LibraryKernel<KernelChoice::kTensorCoreDeterministic, presets::Bf16TensorCoreDeterministic>,
    LibraryKernel<KernelChoice::kTensorCorePipelined, presets::Bf16TensorCorePipelined>,
    LibraryKernel<KernelChoice::kTensorCorePipelinedDeterministic, presets::Bf16TensorCorePipelinedDeterministic>>;
#else
using MatrixCoreDispatchKernels = std::tuple<>;
using Bf16MatrixCoreDispatchKernels = std::tuple<>;
#endif
/// Kernels that need a vendor BLAS (DequantCublas takes either element type at run time).
#if OPT4GPTQ_WITH_CUBLAS
using BlasDispatchKernels = std::tuple<DequantCublas>;
#else
using BlasDispatchKernels = std::tuple<>;
#endif
// -----------------------------------------------------------------------------------------------------------------

using DispatchKernels =
    decltype(std::tuple_cat(SimtDispatchKernels{}, MatrixCoreDispatchKernels{}, BlasDispatchKernels{}));
using Bf16DispatchKernels =
    decltype(std::tuple_cat(Bf16SimtDispatchKernels{}, Bf16MatrixCoreDispatchKernels{}, BlasDispatchKernels{}));

template <class... Kernels>
constexpr KernelSet kernel_set_of(std::tuple<Kernels...>*) {
  KernelSet set;
  ((set = set.with(Kernels::kChoice)), ...);
  return set;
}

template <class F, class... Kernels>
Status with_kernel_of(KernelChoice choice, F& f, std::tuple<Kernels...>*) {
  Status s = Status::error(StatusCode::kUnsupported,
                           "kernel: not built into this program for this element type (see host/dispatch_kernels.hpp: "
                           "matrix-core kernels need OPT4GPTQ_ALL_TARGETS_HAVE_MATRIX_CORES, the prefill path "
                           "OPT4GPTQ_WITH_CUBLAS; the paper's fp16-chain kernels have no bf16 build)");
  (void)((Kernels::kChoice == choice && (s = f(Kernels{}), true)) || ...);
  return s;
}

}  // namespace detail

/// @ingroup host_api
/// The kernels this program has built for the dispatcher, for calls of element type `dtype`.
constexpr KernelSet built_kernels(ElementType dtype = ElementType::kFp16) {
  return dtype == ElementType::kBf16 ? detail::kernel_set_of(static_cast<detail::Bf16DispatchKernels*>(nullptr))
                                     : detail::kernel_set_of(static_cast<detail::DispatchKernels*>(nullptr));
}
static_assert(built_kernels(ElementType::kFp16).contains(KernelChoice::kDeterministicF32) &&
                  built_kernels(ElementType::kBf16).contains(KernelChoice::kDeterministicF32),
              "the dispatcher's kernel lists must hold DeterministicF32 (and its bf16 build, Bf16Deterministic): it is "
              "the kernel that meets every option");

/// @ingroup host_api
/// Calls `f(Kernel{})` with the dispatcher kernel of `choice` built for `dtype` and returns its Status; kUnsupported
/// (naming `kernel`) when this program did not build it for that type.
template <class F>
Status with_kernel(KernelChoice choice, ElementType dtype, F&& f) {
  if (dtype == ElementType::kBf16)
    return detail::with_kernel_of(choice, f, static_cast<detail::Bf16DispatchKernels*>(nullptr));
  return detail::with_kernel_of(choice, f, static_cast<detail::DispatchKernels*>(nullptr));
}

/// @ingroup host_api
/// with_kernel() for fp16 calls.
template <class F>
Status with_kernel(KernelChoice choice, F&& f) {
  return with_kernel(choice, ElementType::kFp16, static_cast<F&&>(f));
}

OPT4GPTQ_NAMESPACE_END
