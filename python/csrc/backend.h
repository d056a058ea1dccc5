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
};

inline constexpr Kernel kAllKernels[] = {Kernel::kAuto,          Kernel::kBaseline,   Kernel::kSmb,
                                         Kernel::kVml,           Kernel::kIla,        Kernel::kOpt4Gptq,
                                         Kernel::kDeterministic, Kernel::kTensorCore, Kernel::kTensorCoreDeterministic};

/// "auto", "baseline", "smb", "vml", "ila", "opt4gptq", "deterministic", "tensorcore", "tensorcore_deterministic".
const char* kernel_name(Kernel kernel);
/// false when `name` is none of kernel_name()'s strings.
bool parse_kernel(const char* name, Kernel* kernel);

/// Device memory for one launch, zero-filled on the launch's stream before the launch (the deterministic presets'
/// split-K counters must start at zero). ops.cpp implements it with PyTorch's caching allocator, one allocation per
/// call: two streams never share a workspace, and a CUDA graph captures the allocation from its own memory pool.
class Workspace {
 public:
  /// Null when the allocation failed (the implementation may also throw).
  virtual void* zeroed(std::size_t bytes) = 0;

 protected:
  ~Workspace() = default;
};

/// The kernel that runs a call of `m` rows on a layer of (k, n, num_groups): `requested`, or, for Kernel::kAuto, the
/// library's measured dispatch table. This is the one place where the package chooses a kernel: the runtime
/// dispatcher (opt4gptq::Dispatcher) replaces the table lookup here when it lands.
Kernel resolve_kernel(Kernel requested, int m, int k, int n, int num_groups, bool act_order);

/// Runs `kernel` (Kernel::kAuto is resolved first) on `problem` on `stream`: plans it, takes a workspace from
/// `workspace` when the plan needs one, launches. Never synchronizes. `*ran`, when not null, receives the kernel that
/// ran.
opt4gptq::Status launch_by_name(const opt4gptq::GemmProblem& problem, Kernel kernel, Workspace& workspace,
                                cudaStream_t stream, Kernel* ran = nullptr);

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

/// gptq_gemm's activation gather for a shuffled act-order layer: out[r][i] = a[r][perm[i]] for r < m, i < k (fp16;
/// `a` has row stride `lda` halves, `out` is dense [m, k]). An entry outside [0, k) gives NaN: a wrong permutation
/// shows in the outputs instead of reading out of bounds.
opt4gptq::Status gather_columns(const void* a, std::int64_t lda, const std::int32_t* perm, int m, int k, void* out,
                                cudaStream_t stream);

}  // namespace opt4gptq_torch
