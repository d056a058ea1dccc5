#pragma once
/// @file
/// The platform layer: the one header (besides the inline-assembly MathPolicy) that knows whether it is compiled by
/// hipcc for AMD GPUs (HIP) or by nvcc for NVIDIA GPUs (CUDA). Everything else in the library is written once against
/// the names defined here: the fp16 types, the packed-fp16 atomic add, the stream and error types, the runtime calls the
/// host API needs, and the wave (warp) size.
///
/// Debian's HIP-on-NVIDIA headers do not compile with CUDA 13, so NVIDIA builds use the CUDA runtime directly rather
/// than going through HIP.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "gpu_arch.hpp"
#include "version.hpp"

#if defined(_MSVC_LANG)
#define OPT4GPTQ_CPLUSPLUS _MSVC_LANG
#else
#define OPT4GPTQ_CPLUSPLUS __cplusplus
#endif
#if OPT4GPTQ_CPLUSPLUS < 201703L
#error "opt4gptq requires C++17: pass -std=c++17 to hipcc or nvcc (hipcc defaults to C++11)"
#endif

#if defined(__HIP__) || defined(__HIPCC__)
#define OPT4GPTQ_BACKEND_HIP 1
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>
#elif defined(__CUDACC__)
#define OPT4GPTQ_BACKEND_CUDA 1
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#else
#error "opt4gptq headers must be compiled as GPU code: use hipcc (AMD, -x hip) or nvcc (NVIDIA, .cu or -x cu)"
#endif

/// Device function, always inlined (the kernel is one unrolled body; calls would spill the accumulators).
#define OPT4GPTQ_DEVICE __device__ __forceinline__
/// Function usable on host and device.
#define OPT4GPTQ_HOST_DEVICE __host__ __device__ __forceinline__

/// Defined while the compiler produces device code (the second pass of hipcc/nvcc).
#if defined(__HIP_DEVICE_COMPILE__) || defined(__CUDA_ARCH__)
#define OPT4GPTQ_DEVICE_PASS 1
#endif

OPT4GPTQ_NAMESPACE_BEGIN

using half = __half;
using half2 = __half2;

namespace platform {

/// Threads that execute in lock step: 64 on AMD GCN/CDNA (gfx9, the DCU family), 32 on NVIDIA and on AMD RDNA.
/// Only device code may depend on it: the host pass of hipcc cannot know the target and assumes gfx9's 64.
#if defined(__HIP_DEVICE_COMPILE__)
inline constexpr int kWaveSize = __AMDGCN_WAVEFRONT_SIZE;
#elif defined(OPT4GPTQ_BACKEND_HIP)
inline constexpr int kWaveSize = 64;
#else
inline constexpr int kWaveSize = 32;
#endif

#if defined(OPT4GPTQ_BACKEND_HIP)
using stream_t = hipStream_t;
using native_error_t = hipError_t;
inline constexpr native_error_t kNativeSuccess = hipSuccess;
inline constexpr const char* kBackendName = "HIP";
inline native_error_t last_error() { return hipGetLastError(); }
inline const char* error_string(native_error_t e) { return hipGetErrorString(e); }
inline native_error_t device_count(int* count) { return hipGetDeviceCount(count); }
inline native_error_t current_device(int* device) { return hipGetDevice(device); }
inline native_error_t multiprocessor_count(int device, int* count) {
  return hipDeviceGetAttribute(count, hipDeviceAttributeMultiprocessorCount, device);
}
/// The device's architecture, from its gfx name (an unreadable name gives an AMD architecture of gfx major 0).
inline native_error_t device_arch(int device, GpuArch* arch) {
  hipDeviceProp_t prop;
  const native_error_t e = hipGetDeviceProperties(&prop, device);
  if (e != hipSuccess) return e;
  if (!parse_amd_arch(prop.gcnArchName, arch)) *arch = GpuArch{GpuVendor::kAmd, 0, 0};
  return hipSuccess;
}
template <class Kernel>
inline native_error_t max_active_blocks(Kernel kernel, int threads, int* blocks, std::size_t dynamic_shared = 0) {
  return hipOccupancyMaxActiveBlocksPerMultiprocessor(blocks, kernel, threads, dynamic_shared);
}
/// Lets `kernel` be launched with `bytes` of dynamic shared memory (beyond the default limit).
template <class Kernel>
inline native_error_t allow_dynamic_shared(Kernel kernel, std::size_t bytes) {
  return hipFuncSetAttribute(reinterpret_cast<const void*>(kernel), hipFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(bytes));
}
inline native_error_t memset_2d_async(void* ptr, std::size_t pitch_bytes, std::size_t width_bytes, std::size_t height,
                                      stream_t stream) {
  if (pitch_bytes == width_bytes) return hipMemsetAsync(ptr, 0, width_bytes * height, stream);
  return hipMemset2DAsync(ptr, pitch_bytes, 0, width_bytes, height, stream);
}
inline native_error_t copy_to_host_async(void* dst, const void* src, std::size_t bytes, stream_t stream) {
  return hipMemcpyAsync(dst, src, bytes, hipMemcpyDeviceToHost, stream);
}
inline native_error_t stream_synchronize(stream_t stream) { return hipStreamSynchronize(stream); }
// Memory, events and device names: used by the tests, examples and benchmarks (the kernels need none of them).
using event_t = hipEvent_t;
inline native_error_t device_malloc(void** ptr, std::size_t bytes) { return hipMalloc(ptr, bytes); }
inline native_error_t device_free(void* ptr) { return hipFree(ptr); }
inline native_error_t copy_to_device(void* dst, const void* src, std::size_t bytes) {
  return hipMemcpy(dst, src, bytes, hipMemcpyHostToDevice);
}
inline native_error_t copy_to_host(void* dst, const void* src, std::size_t bytes) {
  return hipMemcpy(dst, src, bytes, hipMemcpyDeviceToHost);
}
inline native_error_t copy_device_async(void* dst, const void* src, std::size_t bytes, stream_t stream) {
  return hipMemcpyAsync(dst, src, bytes, hipMemcpyDeviceToDevice, stream);
}
inline native_error_t device_synchronize() { return hipDeviceSynchronize(); }
inline native_error_t stream_create(stream_t* s) { return hipStreamCreateWithFlags(s, hipStreamNonBlocking); }
inline native_error_t stream_destroy(stream_t s) { return hipStreamDestroy(s); }
using graph_exec_t = hipGraphExec_t;
/// Captures what `issue(stream)` enqueues on `stream` into an executable graph (benchmarks replay launches this way).
template <class F>
inline native_error_t capture_graph(stream_t stream, F&& issue, graph_exec_t* exec) {
  native_error_t e = hipStreamBeginCapture(stream, hipStreamCaptureModeRelaxed);
  if (e != hipSuccess) return e;
  issue(stream);
  hipGraph_t graph;
  e = hipStreamEndCapture(stream, &graph);
  if (e != hipSuccess) return e;
  e = hipGraphInstantiate(exec, graph, nullptr, nullptr, 0);
  (void)hipGraphDestroy(graph);
  return e;
}
inline native_error_t graph_launch(graph_exec_t exec, stream_t s) { return hipGraphLaunch(exec, s); }
inline native_error_t graph_destroy(graph_exec_t exec) { return hipGraphExecDestroy(exec); }
inline native_error_t event_create(event_t* e) { return hipEventCreate(e); }
inline native_error_t event_destroy(event_t e) { return hipEventDestroy(e); }
inline native_error_t event_record(event_t e, stream_t s) { return hipEventRecord(e, s); }
inline native_error_t event_synchronize(event_t e) { return hipEventSynchronize(e); }
inline native_error_t event_elapsed_ms(float* ms, event_t start, event_t stop) {
  return hipEventElapsedTime(ms, start, stop);
}
inline native_error_t l2_cache_bytes(int device, int* bytes) {
  return hipDeviceGetAttribute(bytes, hipDeviceAttributeL2CacheSize, device);
}
inline native_error_t driver_version(int* version) { return hipDriverGetVersion(version); }
inline native_error_t device_name(int device, char* name, int length) {
  hipDeviceProp_t prop;
  const native_error_t e = hipGetDeviceProperties(&prop, device);
  if (e == hipSuccess) std::snprintf(name, static_cast<std::size_t>(length), "%s", prop.name);
  return e;
}
#else
using stream_t = cudaStream_t;
using native_error_t = cudaError_t;
inline constexpr native_error_t kNativeSuccess = cudaSuccess;
inline constexpr const char* kBackendName = "CUDA";
inline native_error_t last_error() { return cudaGetLastError(); }
inline const char* error_string(native_error_t e) { return cudaGetErrorString(e); }
inline native_error_t device_count(int* count) { return cudaGetDeviceCount(count); }
inline native_error_t current_device(int* device) { return cudaGetDevice(device); }
inline native_error_t multiprocessor_count(int device, int* count) {
  return cudaDeviceGetAttribute(count, cudaDevAttrMultiProcessorCount, device);
}
/// The device's architecture: its compute capability.
inline native_error_t device_arch(int device, GpuArch* arch) {
  int major = 0, minor = 0;
  native_error_t e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (e == cudaSuccess) *arch = nvidia_arch(major, minor);
  return e;
}
template <class Kernel>
inline native_error_t max_active_blocks(Kernel kernel, int threads, int* blocks, std::size_t dynamic_shared = 0) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, kernel, threads, dynamic_shared);
}
/// Lets `kernel` be launched with `bytes` of dynamic shared memory (beyond the default 48 KiB).
template <class Kernel>
inline native_error_t allow_dynamic_shared(Kernel kernel, std::size_t bytes) {
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
}
inline native_error_t memset_2d_async(void* ptr, std::size_t pitch_bytes, std::size_t width_bytes, std::size_t height,
                                      stream_t stream) {
  if (pitch_bytes == width_bytes) return cudaMemsetAsync(ptr, 0, width_bytes * height, stream);
  return cudaMemset2DAsync(ptr, pitch_bytes, 0, width_bytes, height, stream);
}
inline native_error_t copy_to_host_async(void* dst, const void* src, std::size_t bytes, stream_t stream) {
  return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream);
}
inline native_error_t stream_synchronize(stream_t stream) { return cudaStreamSynchronize(stream); }
// Memory, events and device names: used by the tests, examples and benchmarks (the kernels need none of them).
using event_t = cudaEvent_t;
inline native_error_t device_malloc(void** ptr, std::size_t bytes) { return cudaMalloc(ptr, bytes); }
inline native_error_t device_free(void* ptr) { return cudaFree(ptr); }
inline native_error_t copy_to_device(void* dst, const void* src, std::size_t bytes) {
  return cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
}
inline native_error_t copy_to_host(void* dst, const void* src, std::size_t bytes) {
  return cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
}
inline native_error_t copy_device_async(void* dst, const void* src, std::size_t bytes, stream_t stream) {
  return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream);
}
inline native_error_t device_synchronize() { return cudaDeviceSynchronize(); }
inline native_error_t stream_create(stream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamNonBlocking); }
inline native_error_t stream_destroy(stream_t s) { return cudaStreamDestroy(s); }
using graph_exec_t = cudaGraphExec_t;
/// Captures what `issue(stream)` enqueues on `stream` into an executable graph (benchmarks replay launches this way).
template <class F>
inline native_error_t capture_graph(stream_t stream, F&& issue, graph_exec_t* exec) {
  native_error_t e = cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed);
  if (e != cudaSuccess) return e;
  issue(stream);
  cudaGraph_t graph;
  e = cudaStreamEndCapture(stream, &graph);
  if (e != cudaSuccess) return e;
  e = cudaGraphInstantiate(exec, graph, 0);
  (void)cudaGraphDestroy(graph);
  return e;
}
inline native_error_t graph_launch(graph_exec_t exec, stream_t s) { return cudaGraphLaunch(exec, s); }
inline native_error_t graph_destroy(graph_exec_t exec) { return cudaGraphExecDestroy(exec); }
inline native_error_t event_create(event_t* e) { return cudaEventCreate(e); }
inline native_error_t event_destroy(event_t e) { return cudaEventDestroy(e); }
inline native_error_t event_record(event_t e, stream_t s) { return cudaEventRecord(e, s); }
inline native_error_t event_synchronize(event_t e) { return cudaEventSynchronize(e); }
inline native_error_t event_elapsed_ms(float* ms, event_t start, event_t stop) {
  return cudaEventElapsedTime(ms, start, stop);
}
inline native_error_t l2_cache_bytes(int device, int* bytes) {
  return cudaDeviceGetAttribute(bytes, cudaDevAttrL2CacheSize, device);
}
inline native_error_t driver_version(int* version) { return cudaDriverGetVersion(version); }
inline native_error_t device_name(int device, char* name, int length) {
  cudaDeviceProp prop;
  const native_error_t e = cudaGetDeviceProperties(&prop, device);
  if (e == cudaSuccess) std::snprintf(name, static_cast<std::size_t>(length), "%s", prop.name);
  return e;
}
#endif

/// Reinterprets the bits of a trivially copyable value (std::bit_cast is C++20).
template <class To, class From>
OPT4GPTQ_HOST_DEVICE To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast: sizes differ");
  To to;
  __builtin_memcpy(&to, &from, sizeof(To));
  return to;
}

/// The bf16 nearest to `f` (ties to even; NaN stays NaN), as the 16 bits of an fp32's upper half.
OPT4GPTQ_HOST_DEVICE std::uint32_t float_to_bf16_bits(float f) {
  const std::uint32_t x = bit_cast<std::uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (x >> 16) | 0x0040u;
  return (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
}

/// (lo, hi) rounded to nearest even into a packed bf16 pair, lo in the low half: one `cvt.rn.bf16x2.f32` on NVIDIA
/// sm_80+; integer rounding elsewhere (gfx9 before gfx950 has no instruction that narrows to bf16).
OPT4GPTQ_DEVICE std::uint32_t floats_to_bf16x2(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  std::uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
#else
  return float_to_bf16_bits(lo) | (float_to_bf16_bits(hi) << 16);
#endif
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
/// Defined where fma_bf16x2() exists: NVIDIA sm_80 and later (AMD gfx9 before gfx950 has no packed bf16 arithmetic).
#define OPT4GPTQ_PACKED_BF16_FMA 1
/// a · b + c on packed bf16 pairs, each half rounded once to nearest even: one `fma.rn.bf16x2` (HFMA2.BF16).
OPT4GPTQ_DEVICE std::uint32_t fma_bf16x2(std::uint32_t a, std::uint32_t b, std::uint32_t c) {
  std::uint32_t d;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
#endif

/// `*address += value` for a packed bf16 pair, atomically for each half: NVIDIA sm_90's
/// `red.global.add.noftz.bf16x2`; elsewhere (sm_80, and AMD, where this library relies on no bf16 atomic) a 32-bit
/// compare-and-swap loop that adds in fp32 and rounds to bf16, retried while another thread changed the word.
OPT4GPTQ_DEVICE void atomic_add_bf16x2(std::uint32_t* address, std::uint32_t value) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("red.global.add.noftz.bf16x2 [%0], %1;" ::"l"(address), "r"(value) : "memory");
#else
  unsigned int* word = reinterpret_cast<unsigned int*>(address);
  unsigned int observed = *word;
  unsigned int assumed;
  do {
    assumed = observed;
    const float lo = bit_cast<float>(assumed << 16) + bit_cast<float>(value << 16);
    const float hi = bit_cast<float>(assumed & 0xFFFF0000u) + bit_cast<float>(value & 0xFFFF0000u);
    observed = atomicCAS(word, assumed, floats_to_bf16x2(lo, hi));
  } while (observed != assumed);
#endif
}

/// `*address += value` for two fp16 values, atomically for each half.
/// - NVIDIA (sm_60+) and AMD gfx90a/gfx94x have a packed-fp16 global atomic (`RED.F16x2`, `global_atomic_pk_add_f16`).
/// - gfx906 (HYGON DCU Z100, MI50/60) has none, and HIP 5.2 declares no `atomicAdd(__half2*)` for any AMD target, so
///   it is a 32-bit compare-and-swap loop (`global_atomic_cmpswap`), retried while another thread changed the word.
OPT4GPTQ_DEVICE void atomic_add_half2(half2* address, half2 value) {
#if defined(OPT4GPTQ_BACKEND_CUDA)
  atomicAdd(address, value);
#elif defined(__gfx90a__) || defined(__gfx940__) || defined(__gfx941__) || defined(__gfx942__)
  using v2f16 = _Float16 __attribute__((ext_vector_type(2)));
  using global_v2f16_ptr = __attribute__((address_space(1))) v2f16*;
  __builtin_amdgcn_global_atomic_fadd_v2f16((global_v2f16_ptr)(address), bit_cast<v2f16>(value));
#else
  unsigned int* word = reinterpret_cast<unsigned int*>(address);
  unsigned int observed = *word;
  unsigned int assumed;
  do {
    assumed = observed;
    const half2 sum = __hadd2(bit_cast<half2>(assumed), value);
    observed = atomicCAS(word, assumed, bit_cast<unsigned int>(sum));
  } while (observed != assumed);
#endif
}

}  // namespace platform
OPT4GPTQ_NAMESPACE_END
