#pragma once
// The dense GEMM of the same shape, from the vendor library: cuBLAS on NVIDIA, hipBLAS on AMD when the build found it
// (Debian 12 does not package hipBLAS). fp16 or bf16 inputs and output (the type of the point it is the yardstick of),
// fp32 accumulation.

#include <opt4gptq/element.hpp>
#include <opt4gptq/platform.hpp>

#if defined(OPT4GPTQ_BACKEND_CUDA)
#include <cublas_v2.h>
#define OPT4GPTQ_BENCH_HAVE_DENSE 1
#elif defined(OPT4GPTQ_BENCH_HIPBLAS)
#include <hipblas/hipblas.h>
#define OPT4GPTQ_BENCH_HAVE_DENSE 1
#else
#define OPT4GPTQ_BENCH_HAVE_DENSE 0
#endif

namespace bench {

class DenseGemm {
 public:
  DenseGemm() {
#if defined(OPT4GPTQ_BACKEND_CUDA)
    ok_ = cublasCreate(&handle_) == CUBLAS_STATUS_SUCCESS;
#elif defined(OPT4GPTQ_BENCH_HIPBLAS)
    ok_ = hipblasCreate(&handle_) == HIPBLAS_STATUS_SUCCESS;
#endif
  }
  ~DenseGemm() {
#if defined(OPT4GPTQ_BACKEND_CUDA)
    if (ok_) cublasDestroy(handle_);
#elif defined(OPT4GPTQ_BENCH_HIPBLAS)
    if (ok_) hipblasDestroy(handle_);
#endif
  }
  bool available() const { return ok_; }
  static const char* name() {
#if defined(OPT4GPTQ_BACKEND_CUDA)
    return "cuBLAS";
#elif defined(OPT4GPTQ_BENCH_HIPBLAS)
    return "hipBLAS";
#else
    return "none";
#endif
  }

  /// C[m][n] = A[m][k] · W[k][n], all row-major, of element type `dtype` (fp16 or bf16). In cuBLAS's column-major
  /// terms: C^T (n x m) = W^T (n x k) · A^T.
  bool run(int m, int n, int k, const void* a, const void* w, void* c, opt4gptq::ElementType dtype,
           opt4gptq::platform::stream_t stream) {
    const bool bf16 = dtype == opt4gptq::ElementType::kBf16;
#if defined(OPT4GPTQ_BACKEND_CUDA)
    const float alpha = 1.0f, beta = 0.0f;
    const cudaDataType_t type = bf16 ? CUDA_R_16BF : CUDA_R_16F;
    cublasSetStream(handle_, stream);
    return cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &alpha, w, type, n, a, type, k, &beta, c, type, n,
                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS;
#elif defined(OPT4GPTQ_BENCH_HIPBLAS)
    const float alpha = 1.0f, beta = 0.0f;
    const hipblasDatatype_t type = bf16 ? HIPBLAS_R_16B : HIPBLAS_R_16F;
    hipblasSetStream(handle_, stream);
    return hipblasGemmEx(handle_, HIPBLAS_OP_N, HIPBLAS_OP_N, n, m, k, &alpha, w, type, n, a, type, k, &beta, c, type,
                         n, HIPBLAS_R_32F, HIPBLAS_GEMM_DEFAULT) == HIPBLAS_STATUS_SUCCESS;
#else
    (void)m, (void)n, (void)k, (void)a, (void)w, (void)c, (void)bf16, (void)stream;
    return false;
#endif
  }

 private:
  bool ok_ = false;
#if defined(OPT4GPTQ_BACKEND_CUDA)
  cublasHandle_t handle_{};
#elif defined(OPT4GPTQ_BENCH_HIPBLAS)
  hipblasHandle_t handle_{};
#endif
};

}  // namespace bench
