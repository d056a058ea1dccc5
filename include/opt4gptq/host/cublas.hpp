#pragma once
/// @file
/// The dense fp16 or bf16 GEMM of the prefill path, from cuBLAS (NVIDIA, when the program is built with
/// `OPT4GPTQ_WITH_CUBLAS=1`, which CMake's opt4gptq target defines for CUDA sources when the option of that name is
/// on, and links CUDA::cublas). One cuBLAS handle per device and host thread, created on first use and destroyed when
/// the thread ends; every call sets the caller's stream on it. Without cuBLAS this header declares nothing, and the
/// dispatcher runs the library's own kernels at every M.
/// @ingroup host_api

#include <cstdint>

#include "../detail/checks.hpp"
#include "../element.hpp"
#include "../platform.hpp"
#include "../status.hpp"
#include "device_info.hpp"

#if !defined(OPT4GPTQ_WITH_CUBLAS)
#define OPT4GPTQ_WITH_CUBLAS 0
#endif
#if OPT4GPTQ_WITH_CUBLAS && !defined(OPT4GPTQ_BACKEND_CUDA)
#error "OPT4GPTQ_WITH_CUBLAS=1 needs the CUDA backend (nvcc); AMD builds have no cuBLAS: define it to 0"
#endif

#if OPT4GPTQ_WITH_CUBLAS
#include <cublas_v2.h>

OPT4GPTQ_NAMESPACE_BEGIN
namespace detail {

/// A Status for a failed cuBLAS call (its status name as the message, its code as native_error).
inline Status cublas_error(cublasStatus_t status) {
  return Status::error(StatusCode::kRuntimeError, cublasGetStatusString(status), static_cast<int>(status));
}

/// One host thread's cuBLAS handles, one per device, destroyed with the thread.
struct CublasHandles {
  static constexpr int kMaxDevices = 64;
  cublasHandle_t per_device[kMaxDevices] = {};
  CublasHandles() = default;
  CublasHandles(const CublasHandles&) = delete;
  CublasHandles& operator=(const CublasHandles&) = delete;
  ~CublasHandles() {
    for (cublasHandle_t h : per_device)
      if (h != nullptr) (void)cublasDestroy(h);
  }
};

/// The calling thread's cuBLAS handle for `device` (the current device), created on first use. A handle belongs to
/// one device; cuBLAS advises against sharing one between host threads (a setting changed by one applies to all),
/// so each thread has its own.
inline Status cublas_handle(int device, cublasHandle_t* handle) {
  thread_local CublasHandles handles;
  if (device < 0 || device >= CublasHandles::kMaxDevices)
    return invalid("device: index past the 64 devices the cuBLAS handle cache serves");
  cublasHandle_t& h = handles.per_device[device];
  if (h == nullptr) {
    const cublasStatus_t status = cublasCreate(&h);
    if (status != CUBLAS_STATUS_SUCCESS) {
      h = nullptr;
      return cublas_error(status);
    }
  }
  *handle = h;
  return Status::success();
}

}  // namespace detail

/// `C[m][n] = A[m][k] · W[k][n]`, all of element type `dtype` (fp16 or bf16) and row-major (row strides lda, ldw, ldc
/// in elements), accumulated in fp32 (CUBLAS_COMPUTE_32F), on `stream` and the current device. cuBLAS is
/// column-major: the row-major product is the column-major `Cᵀ (n x m) = Wᵀ (n x k) · Aᵀ (k x m)`, which is the same
/// memory, so nothing is transposed or copied. The caller checks shapes and pointers; strides and sizes must fit in
/// int (cuBLAS's types).
/// @ingroup host_api
inline Status cublas_gemm(int m, int n, int k, const void* a, std::int64_t lda, const void* w, std::int64_t ldw,
                          void* c, std::int64_t ldc, ElementType dtype, platform::stream_t stream) {
  constexpr std::int64_t kIntMax = 0x7fffffff;
  if (lda > kIntMax) return detail::invalid("problem.lda: past 2^31 - 1 elements (cuBLAS takes int strides)");
  if (ldw > kIntMax) return detail::invalid("ldw: past 2^31 - 1 elements (cuBLAS takes int strides)");
  if (ldc > kIntMax) return detail::invalid("problem.ldc: past 2^31 - 1 elements (cuBLAS takes int strides)");
  if (dtype != ElementType::kFp16 && dtype != ElementType::kBf16)
    return detail::invalid("dtype: not an ElementType (ElementType::kFp16 or ElementType::kBf16)");
  const cudaDataType_t type = dtype == ElementType::kBf16 ? CUDA_R_16BF : CUDA_R_16F;
  int device = 0;
  const platform::native_error_t e = platform::current_device(&device);
  if (e != platform::kNativeSuccess) return detail::runtime_error(e);
  cublasHandle_t handle = nullptr;
  const Status s = detail::cublas_handle(device, &handle);
  if (!s.ok()) return s;
  cublasStatus_t status = cublasSetStream(handle, stream);
  if (status != CUBLAS_STATUS_SUCCESS) return detail::cublas_error(status);
  const float alpha = 1.0f, beta = 0.0f;
  status = cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &alpha, w, type, static_cast<int>(ldw), a, type,
                        static_cast<int>(lda), &beta, c, type, static_cast<int>(ldc), CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT);
  if (status != CUBLAS_STATUS_SUCCESS) return detail::cublas_error(status);
  return Status::success();
}

/// cublas_gemm() in fp16.
/// @ingroup host_api
inline Status cublas_gemm_f16(int m, int n, int k, const half* a, std::int64_t lda, const half* w, std::int64_t ldw,
                              half* c, std::int64_t ldc, platform::stream_t stream) {
  return cublas_gemm(m, n, k, a, lda, w, ldw, c, ldc, ElementType::kFp16, stream);
}

OPT4GPTQ_NAMESPACE_END
#endif  // OPT4GPTQ_WITH_CUBLAS
