// Act-order support for the ops: the library's prepare step, and the two small kernels of the vLLM-compatible path
// (gptq_shuffle's row permutation, gptq_gemm's activation gather).

#include <opt4gptq/format.hpp>
#include <opt4gptq/host/act_order.hpp>

#include "backend.h"

namespace opt4gptq_torch {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxGridY = 65535;

opt4gptq::Status launch_status() {
  const cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return opt4gptq::Status::success();
  return opt4gptq::Status::error(opt4gptq::StatusCode::kLaunchFailed, cudaGetErrorString(e), static_cast<int>(e));
}

/// One thread per (column, 8-row word): the word gathers its 8 rows from wherever `perm` says they are.
__global__ void permute_rows_kernel(const std::uint32_t* src, std::int64_t ld_src, const std::int32_t* perm, int k,
                                    int n, std::uint32_t* dst) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= n) return;
  for (int w = blockIdx.y; w < k / opt4gptq::format::kPackFactor; w += gridDim.y) {
    std::uint32_t word = 0;
#pragma unroll
    for (int j = 0; j < opt4gptq::format::kPackFactor; ++j) {
      const int row = perm[opt4gptq::format::kPackFactor * w + j];
      if (row >= 0 && row < k) {
        const std::uint32_t packed = src[(row / opt4gptq::format::kPackFactor) * ld_src + col];
        const std::uint32_t value = (packed >> (opt4gptq::format::kBits * (row % opt4gptq::format::kPackFactor))) &
                                    static_cast<std::uint32_t>(opt4gptq::format::kMaxQ);
        word |= value << (opt4gptq::format::kBits * j);
      }
    }
    dst[static_cast<std::int64_t>(w) * n + col] = word;
  }
}

/// One thread per (column of the output, row of M). The elements are moved as bits (fp16 or bf16 alike); `nan_bits` is
/// the type's quiet NaN.
__global__ void gather_columns_kernel(const unsigned short* a, std::int64_t lda, const std::int32_t* perm, int m, int k,
                                      unsigned short nan_bits, unsigned short* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= k) return;
  const int src = perm[i];
  const bool valid = src >= 0 && src < k;
  for (int r = blockIdx.y; r < m; r += gridDim.y)
    out[static_cast<std::int64_t>(r) * k + i] = valid ? a[static_cast<std::int64_t>(r) * lda + src] : nan_bits;
}

}  // namespace

std::size_t act_order_buffer_bytes(int k, int n, int num_groups) {
  return opt4gptq::act_order_buffer_bytes(k, n, num_groups);
}

opt4gptq::Status prepare_act_order(const std::int32_t* qweight, std::int64_t ldq, const std::int32_t* g_idx, int k,
                                   int n, int num_groups, void* buffer, std::size_t buffer_bytes, cudaStream_t stream,
                                   opt4gptq::PreparedActOrder* prepared) {
  return opt4gptq::prepare_act_order(qweight, ldq, g_idx, k, n, num_groups, buffer, buffer_bytes, stream, prepared);
}

opt4gptq::Status check_act_order(const opt4gptq::PreparedActOrder& prepared, cudaStream_t stream) {
  return opt4gptq::check_act_order(prepared, stream);
}

opt4gptq::PreparedActOrder act_order_view(const void* buffer, int k, int n, int num_groups) {
  return opt4gptq::act_order_view(buffer, k, n, num_groups);
}

opt4gptq::Status permute_rows(const std::int32_t* src, std::int64_t ld_src, const std::int32_t* perm, int k, int n,
                              std::int32_t* dst, cudaStream_t stream) {
  if (k < 8 || k % 8 != 0 || n < 1 || ld_src < n)
    return opt4gptq::Status::error(opt4gptq::StatusCode::kInvalidArgument, "permute_rows: bad shape");
  const int words = k / 8;
  const dim3 grid((n + kThreads - 1) / kThreads, words < kMaxGridY ? words : kMaxGridY);
  permute_rows_kernel<<<grid, kThreads, 0, stream>>>(reinterpret_cast<const std::uint32_t*>(src), ld_src, perm, k, n,
                                                     reinterpret_cast<std::uint32_t*>(dst));
  return launch_status();
}

opt4gptq::Status gather_columns(const void* a, std::int64_t lda, const std::int32_t* perm, int m, int k, void* out,
                                opt4gptq::ElementType dtype, cudaStream_t stream) {
  if (m == 0) return opt4gptq::Status::success();
  if (m < 0 || k < 1 || lda < k)
    return opt4gptq::Status::error(opt4gptq::StatusCode::kInvalidArgument, "gather_columns: bad shape");
  if (dtype != opt4gptq::ElementType::kFp16 && dtype != opt4gptq::ElementType::kBf16)
    return opt4gptq::Status::error(opt4gptq::StatusCode::kInvalidArgument, "gather_columns: dtype is not fp16 or bf16");
  // Quiet NaNs: 0x7E00 is fp16's, but a finite bf16 (2^125); bf16's is 0x7FC0 (an fp32 NaN's upper half).
  const unsigned short nan_bits = dtype == opt4gptq::ElementType::kBf16 ? 0x7FC0 : 0x7E00;
  const dim3 grid((k + kThreads - 1) / kThreads, m < kMaxGridY ? m : kMaxGridY);
  gather_columns_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const unsigned short*>(a), lda, perm, m, k, nan_bits,
                                                       static_cast<unsigned short*>(out));
  return launch_status();
}

}  // namespace opt4gptq_torch
