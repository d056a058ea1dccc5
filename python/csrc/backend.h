#pragma once
// The package's C++ side has two halves that meet here, in plain C++:
//   - ops.cpp: the PyTorch half (op schemas, argument checks, tensors, streams, the per-layer cache). It includes
//     PyTorch headers and no GPU header of the library;
//   - the .cu files: the library's kernels (one translation unit per preset, so that ninja builds them in parallel),
//     the act-order helpers and the kernel choice. They include no PyTorch header.
// Only plain types cross: opt4gptq::GemmProblem / QuantizedWeights / Status (plain C++ headers of the library), raw
// device pointers and cudaStream_t. Keeping PyTorch out of the kernels' translation units also keeps nvcc away from
// PyTorch's headers, and the kernels' code is the library's own, compiled as its tests compile it.

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include <opt4gptq/element.hpp>
#include <opt4gptq/problem.hpp>
#include <opt4gptq/status.hpp>
#include <opt4gptq/weights.hpp>

namespace opt4gptq_torch {

/// The kernels the ops can run, by the names the Python side uses (kernel_name()). kAuto is resolved per call by
/// resolve_kernel().
enum class Kernel : int {
  kAuto = 0,
  kBaseline,
  kSmb,
  kVml,
  kIla,
  kOpt4Gptq,
  kDeterministic,
  kTensorCore,
  kTensorCoreDeterministic,
  kDeterministicF32,
  kDecode,
  kTensorCorePipelined,
  kTensorCorePipelinedDeterministic,
  kDequantMatmul,
};

inline constexpr Kernel kAllKernels[] = {Kernel::kAuto,
                                         Kernel::kBaseline,
                                         Kernel::kSmb,
                                         Kernel::kVml,
                                         Kernel::kIla,
                                         Kernel::kOpt4Gptq,
                                         Kernel::kDeterministic,
                                         Kernel::kTensorCore,
                                         Kernel::kTensorCoreDeterministic,
                                         Kernel::kDeterministicF32,
                                         Kernel::kDecode,
                                         Kernel::kTensorCorePipelined,
                                         Kernel::kTensorCorePipelinedDeterministic,
                                         Kernel::kDequantMatmul};

/// The kernels a bf16 call (bf16 activations and output) can name: each runs its bf16 build (presets::Bf16Deterministic
/// for deterministic_f32, presets::Bf16Decode, the four presets::Bf16TensorCore*; dequant_matmul dequantizes into bf16)
/// and auto chooses among them. The paper's fp16-chain kernels (baseline, smb, vml, ila, opt4gptq, deterministic) have
/// no bf16 build: their arithmetic is the fp16 chain itself.
inline constexpr Kernel kBf16Kernels[] = {Kernel::kAuto,
                                          Kernel::kDeterministicF32,
                                          Kernel::kDecode,
                                          Kernel::kTensorCore,
                                          Kernel::kTensorCoreDeterministic,
                                          Kernel::kTensorCorePipelined,
                                          Kernel::kTensorCorePipelinedDeterministic,
                                          Kernel::kDequantMatmul};

/// Whether `kernel` is in kBf16Kernels.
constexpr bool has_bf16_build(Kernel kernel) {
  for (Kernel k : kBf16Kernels)
    if (k == kernel) return true;
  return false;
}

/// "auto", "baseline", "smb", "vml", "ila", "opt4gptq", "deterministic", "tensorcore", "tensorcore_deterministic",
/// "deterministic_f32", "decode", "tensorcore_pipelined", "tensorcore_pipelined_deterministic", "dequant_matmul".
const char* kernel_name(Kernel kernel);
/// false when `name` is none of kernel_name()'s strings.
bool parse_kernel(const char* name, Kernel* kernel);

/// Device memory for one launch, zero-filled when created or grown (the split-K counters in the workspace's head must
/// start at zero, and each launch leaves the head zero again; past the head it is scratch: the library's workspace
/// contract, policy/reduce.hpp). ops.cpp keeps one per stream (and per graph capture), grown when a call needs more: two streams never
/// share a workspace.
class Workspace {
 public:
  /// Null when the allocation failed (the implementation may also throw).
  virtual void* zeroed(std::size_t bytes) = 0;

 protected:
  ~Workspace() = default;
};

/// The kernel that runs a call of `m` rows on a layer of (k, n, num_groups) on the current device, for activations of
/// element type `dtype`: `requested`, or, for Kernel::kAuto, the library's dispatcher: the current device's dispatch
/// table (opt4gptq::dispatch::table_for) among the kernels this package builds for `dtype` (kBf16Kernels for bf16)
/// that the device runs and that meet the default DispatchOptions with options.dtype = `dtype` (fp32 accumulation: no
/// fp16 partial sums, so overflow-safe), opt4gptq::choose_kernel. The one place where the package chooses a kernel.
/// *status (when not null) receives an error when the current device cannot be queried.
Kernel resolve_kernel(Kernel requested, int m, int k, int n, int num_groups, bool act_order,
                      opt4gptq::ElementType dtype, opt4gptq::Status* status = nullptr);

/// Runs `kernel` (not kAuto, not kDequantMatmul: the caller resolves the first and runs the second itself, since it
/// needs PyTorch's matmul) on `problem` on `stream`: plans it, takes a workspace from `workspace` when the plan needs
/// one, launches; a bf16 problem (problem.dtype) runs the kernel's bf16 build, and kUnsupported comes back for a kernel
/// without one (the caller refuses those first, by name). Never synchronizes.
opt4gptq::Status launch_kernel(const opt4gptq::GemmProblem& problem, Kernel kernel, Workspace& workspace,
                               cudaStream_t stream);

/// The prefill path's first half (kDequantMatmul): W[r][c] = T(scale · (q - z)) of the whole layer into `out` (dense
/// [k, n] elements of `dtype` = T, fp16 or bf16; rows in the checkpoint's order), opt4gptq::dequantize. The caller
/// multiplies A by it.
opt4gptq::Status dequantize_layer(const opt4gptq::QuantizedWeights& weights, void* out, opt4gptq::ElementType dtype,
                                  cudaStream_t stream);

// ---- act-order (act_order.cu) ------------------------------------------------------------------------------------

/// opt4gptq::act_order_buffer_bytes.
std::size_t act_order_buffer_bytes(int k, int n, int num_groups);
/// opt4gptq::prepare_act_order: sorts an act-order layer's rows by group into `buffer` (two kernels on `stream`).
opt4gptq::Status prepare_act_order(const std::int32_t* qweight, std::int64_t ldq, const std::int32_t* g_idx, int k,
                                   int n, int num_groups, void* buffer, std::size_t buffer_bytes, cudaStream_t stream,
                                   opt4gptq::PreparedActOrder* prepared);
/// opt4gptq::check_act_order: waits for `stream`; kInvalidData when a g_idx entry was outside [0, num_groups).
opt4gptq::Status check_act_order(const opt4gptq::PreparedActOrder& prepared, cudaStream_t stream);
/// opt4gptq::act_order_view.
opt4gptq::PreparedActOrder act_order_view(const void* buffer, int k, int n, int num_groups);

/// gptq_shuffle's repack: dst[w][c] (dense, [k/8, n]) holds rows perm[8w .. 8w+7] of column c of `src` ([k/8, n], row
/// stride `ld_src` words), row perm[8w + j] in nibble j. An entry outside [0, k) gives a 0 nibble (the caller checks
/// that `perm` is a permutation first).
opt4gptq::Status permute_rows(const std::int32_t* src, std::int64_t ld_src, const std::int32_t* perm, int k, int n,
                              std::int32_t* dst, cudaStream_t stream);

/// gptq_gemm's activation gather for a shuffled act-order layer: out[r][i] = a[r][perm[i]] for r < m, i < k (16-bit
/// elements of `dtype`, fp16 or bf16; `a` has row stride `lda` elements, `out` is dense [m, k]). An entry outside
/// [0, k) gives NaN of `dtype`: a wrong permutation shows in the outputs instead of reading out of bounds.
opt4gptq::Status gather_columns(const void* a, std::int64_t lda, const std::int32_t* perm, int m, int k, void* out,
                                opt4gptq::ElementType dtype, cudaStream_t stream);

}  // namespace opt4gptq_torch
