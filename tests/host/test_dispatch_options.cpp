// What the dispatcher chooses (dispatch_options.hpp, dispatch/tables.hpp, gpu_arch.hpp), in plain C++: which table
// serves which architecture, which kernels a device runs and the options allow, and the kernel of a call for every
// combination of options that changes it. The runtime object (host/dispatcher.hpp) applies exactly this choice.

#include <catch2/catch.hpp>

#include <opt4gptq/dispatch/tables.hpp>
#include <opt4gptq/dispatch_options.hpp>
#include <opt4gptq/dispatch_table.hpp>
#include <opt4gptq/gpu_arch.hpp>
#include <string>

#if defined(OPT4GPTQ_BACKEND_HIP) || defined(OPT4GPTQ_BACKEND_CUDA) || defined(__CUDACC__) || defined(__HIP__)
#error "this translation unit must be plain C++: no GPU compiler, no platform.hpp"
#endif

using namespace opt4gptq;

namespace {
bool names(const Status& s, const char* argument) { return std::string(s.message).rfind(argument, 0) == 0; }

constexpr GpuArch kH200 = nvidia_arch(9, 0);
constexpr GpuArch kA100 = nvidia_arch(8, 0);
constexpr GpuArch kT4 = nvidia_arch(7, 5);
constexpr GpuArch kGfx906{GpuVendor::kAmd, 9, 0x06};
constexpr GpuArch kGfx90a{GpuVendor::kAmd, 9, 0x0a};

// Every kernel but the prefill path (a build without cuBLAS), and the SIMT kernels only (an AMD build with gfx906).
constexpr KernelSet kNoCublas = KernelSet::all().without(KernelChoice::kDequantCublas);
constexpr KernelSet kSimtOnly =
    kNoCublas.without(KernelChoice::kTensorCore).without(KernelChoice::kTensorCoreDeterministic);

constexpr std::int64_t kSmallLayer = layer_weight_bytes(2048, 2048, 16);   // 2.2 MB
constexpr std::int64_t kLargeLayer = layer_weight_bytes(8192, 28672, 64);  // 122 MB
}  // namespace

TEST_CASE("parse_amd_arch reads the runtime's gfx names", "[host][dispatch]") {
  GpuArch a;
  REQUIRE(parse_amd_arch("gfx906:sramecc+:xnack-", &a));
  CHECK(a.vendor == GpuVendor::kAmd);
  CHECK(a.major == 9);
  CHECK(a.minor == 0x06);
  REQUIRE(parse_amd_arch("gfx90a", &a));
  CHECK(a.minor == 0x0a);
  REQUIRE(parse_amd_arch("gfx942:sramecc+:xnack-", &a));
  CHECK(a.minor == 0x42);
  REQUIRE(parse_amd_arch("gfx1100", &a));
  CHECK(a.major == 11);
  CHECK(a.minor == 0x00);
  const GpuArch before = a;
  for (const char* bad : {"", "gfx", "gfx90", "gpu906", "gfx9z6", "gfx12345", "gfxa06"}) {
    INFO(bad);
    CHECK_FALSE(parse_amd_arch(bad, &a));
    CHECK(a.major == before.major);
  }
  CHECK_FALSE(parse_amd_arch(nullptr, &a));
  constexpr GpuArch gfx908 = [] {
    GpuArch parsed;
    parse_amd_arch("gfx908", &parsed);
    return parsed;
  }();  // usable at compile time
  STATIC_REQUIRE(gfx908.has_matrix_cores());
}

TEST_CASE("matrix instructions: NVIDIA sm_80+, AMD gfx908/gfx90a/gfx94x, not gfx906", "[host][dispatch]") {
  STATIC_REQUIRE(kH200.has_matrix_cores());
  STATIC_REQUIRE(kA100.has_matrix_cores());
  STATIC_REQUIRE_FALSE(kT4.has_matrix_cores());
  STATIC_REQUIRE_FALSE(kGfx906.has_matrix_cores());
  STATIC_REQUIRE(kGfx90a.has_matrix_cores());
  STATIC_REQUIRE(GpuArch{GpuVendor::kAmd, 9, 0x08}.has_matrix_cores());
  STATIC_REQUIRE(GpuArch{GpuVendor::kAmd, 9, 0x40}.has_matrix_cores());
  STATIC_REQUIRE_FALSE(GpuArch{GpuVendor::kAmd, 11, 0x00}.has_matrix_cores());
  STATIC_REQUIRE_FALSE(GpuArch{}.has_matrix_cores());
}

TEST_CASE("each architecture gets its table", "[host][dispatch]") {
  CHECK(&dispatch::table_for(kH200) == &dispatch::kSm90H200);
  CHECK(&dispatch::table_for(nvidia_arch(9, 0)) == &dispatch::kSm90H200);
  CHECK(&dispatch::table_for(kA100) == &dispatch::kNvidiaMatrixCore);
  CHECK(&dispatch::table_for(nvidia_arch(12, 0)) == &dispatch::kNvidiaMatrixCore);
  CHECK(&dispatch::table_for(kT4) == &dispatch::kNvidiaSimt);
  CHECK(&dispatch::table_for(kGfx90a) == &dispatch::kAmdMatrixCore);
  CHECK(&dispatch::table_for(kGfx906) == &dispatch::kAmdSimt);
  CHECK(&dispatch::table_for(GpuArch{}) == &dispatch::kAmdSimt);
  // Provisional tables say so, and never name a kernel their devices cannot run.
  for (const DispatchTable* t :
       {&dispatch::kNvidiaMatrixCore, &dispatch::kNvidiaSimt, &dispatch::kAmdMatrixCore, &dispatch::kAmdSimt}) {
    CHECK(std::string(t->measured_on).rfind("not measured", 0) == 0);
    CHECK(kernel_info(t->invariant).batch_invariant);
  }
  for (int i = 0; i < dispatch::kAmdSimt.rule_count; ++i)
    CHECK_FALSE(kernel_info(dispatch::kAmdSimt.rules[i].kernel).needs_matrix_cores);
  for (const DispatchTable* t : {&dispatch::kAmdSimt, &dispatch::kAmdMatrixCore})
    for (int i = 0; i < t->rule_count; ++i) CHECK_FALSE(kernel_info(t->rules[i].kernel).needs_cublas);
  CHECK_FALSE(kernel_info(dispatch::kAmdSimt.invariant).needs_matrix_cores);
  CHECK_FALSE(kernel_info(dispatch::kNvidiaSimt.invariant).needs_matrix_cores);
}

TEST_CASE("runnable_kernels: what the program built and the device runs", "[host][dispatch]") {
  CHECK(runnable_kernels(KernelSet::all(), kH200) == KernelSet::all());
  const KernelSet on_gfx906 = runnable_kernels(KernelSet::all(), kGfx906);
  CHECK_FALSE(on_gfx906.contains(KernelChoice::kTensorCore));
  CHECK_FALSE(on_gfx906.contains(KernelChoice::kTensorCoreDeterministic));
  CHECK_FALSE(on_gfx906.contains(KernelChoice::kDequantCublas));  // cuBLAS is NVIDIA's
  CHECK(on_gfx906.contains(KernelChoice::kDeterministicF32));
  const KernelSet on_gfx90a = runnable_kernels(KernelSet::all(), kGfx90a);
  CHECK(on_gfx90a.contains(KernelChoice::kTensorCoreDeterministic));
  CHECK_FALSE(on_gfx90a.contains(KernelChoice::kDequantCublas));
  CHECK(runnable_kernels(kSimtOnly, kGfx90a) == kSimtOnly);  // a build with gfx906 among its targets
  CHECK_FALSE(runnable_kernels(KernelSet::all(), kT4).contains(KernelChoice::kTensorCore));
}

TEST_CASE("check_dispatch_options names the field at fault", "[host][dispatch]") {
  CHECK(check_dispatch_options(DispatchOptions{}).ok());
  DispatchOptions o;
  o.max_m = 0;
  CHECK(names(check_dispatch_options(o), "options.max_m"));
  o.max_m = kMaxDispatchM + 1;
  CHECK(names(check_dispatch_options(o), "options.max_m"));
  o = DispatchOptions{};
  o.rows_of_k_per_block = -128;
  CHECK(names(check_dispatch_options(o), "options.rows_of_k_per_block"));
  o = DispatchOptions{};
  o.accumulation = static_cast<Accumulation>(7);
  CHECK(names(check_dispatch_options(o), "options.accumulation"));
  CHECK(check_dispatch_options(o).code == StatusCode::kInvalidArgument);
  o = DispatchOptions{};
  o.dtype = static_cast<ElementType>(5);
  CHECK(names(check_dispatch_options(o), "options.dtype"));
  o.dtype = ElementType::kBf16;
  CHECK(check_dispatch_options(o).ok());
}

TEST_CASE("meets_options: accumulation, determinism, batch invariance", "[host][dispatch]") {
  DispatchOptions o;  // defaults: no fp16 partial sums
  CHECK_FALSE(meets_options(KernelChoice::kBaseline, o));
  CHECK_FALSE(meets_options(KernelChoice::kOpt4Gptq, o));
  CHECK_FALSE(meets_options(KernelChoice::kDeterministic, o));
  CHECK(meets_options(KernelChoice::kTensorCore, o));
  CHECK(meets_options(KernelChoice::kTensorCoreDeterministic, o));
  CHECK(meets_options(KernelChoice::kDeterministicF32, o));
  CHECK(meets_options(KernelChoice::kDequantCublas, o));
  o.accumulation = Accumulation::kFp16Partials;
  for (int i = 0; i < kKernelChoiceCount; ++i) CHECK(meets_options(static_cast<KernelChoice>(i), o));
  o.accumulation = Accumulation::kFp32;
  CHECK_FALSE(meets_options(KernelChoice::kTensorCore, o));
  CHECK(meets_options(KernelChoice::kTensorCoreDeterministic, o));
  o = DispatchOptions{};
  o.deterministic = true;
  CHECK_FALSE(meets_options(KernelChoice::kTensorCore, o));
  CHECK(meets_options(KernelChoice::kDequantCublas, o));
  o = DispatchOptions{};
  o.batch_invariant = true;
  CHECK_FALSE(meets_options(KernelChoice::kTensorCore, o));
  CHECK_FALSE(meets_options(KernelChoice::kDequantCublas, o));  // cuBLAS chooses its algorithm per M
  CHECK(meets_options(KernelChoice::kTensorCoreDeterministic, o));
  CHECK(meets_options(KernelChoice::kDeterministicF32, o));
  CHECK(allowed_kernels(DispatchOptions{}, KernelSet()).empty());
}

TEST_CASE("the H200's choice under each option", "[host][dispatch]") {
  const auto& t = dispatch::table_for(kH200);
  auto choose = [&](const DispatchOptions& o, int m, std::int64_t bytes, bool act_order = false,
                    KernelSet runnable = KernelSet::all()) {
    return choose_kernel(t, o, runnable_kernels(runnable, kH200), m, bytes, act_order);
  };
  // The table (bench/results/2026-12-02-h200-pipelined) lists, per M and layer size, the fastest kernel, then the
  // fastest without fp16 partial sums, then the fastest with fp32 sums to the end and a fixed order.
  DispatchOptions fast;  // fp16 partial sums allowed: the measured choice
  fast.accumulation = Accumulation::kFp16Partials;
  CHECK(choose(fast, 1, kLargeLayer) == KernelChoice::kBaseline);
  CHECK(choose(fast, 1, kSmallLayer) == KernelChoice::kDecode);
  CHECK(choose(fast, 2, kLargeLayer, true) == KernelChoice::kBaseline);
  CHECK(choose(fast, 64, kLargeLayer) == KernelChoice::kTensorCorePipelined);
  CHECK(choose(fast, 512, kLargeLayer) == KernelChoice::kDequantCublas);

  const DispatchOptions defaults;  // overflow-safe (no fp16 partial sums); fp16 atomics of fp32 K-block sums allowed
  CHECK(choose(defaults, 1, kLargeLayer) == KernelChoice::kDecode);
  CHECK(choose(defaults, 1, kLargeLayer, true) == KernelChoice::kDecode);
  CHECK(choose(defaults, 8, kSmallLayer) == KernelChoice::kTensorCorePipelined);
  CHECK(choose(defaults, 64, kLargeLayer) == KernelChoice::kTensorCorePipelined);
  CHECK(choose(defaults, 200, kLargeLayer) == KernelChoice::kDequantCublas);  // the M = 256 rule serves 129 .. 256
  CHECK(choose(defaults, 256, kLargeLayer) == KernelChoice::kDequantCublas);
  CHECK(choose(defaults, 4096, kSmallLayer, true) == KernelChoice::kDequantCublas);
  // Without cuBLAS, the library's kernel for prefill (the table's fallback: the fastest at M = 256 without it).
  CHECK(choose(defaults, 4096, kLargeLayer, false, kNoCublas) == KernelChoice::kTensorCorePipelined);

  // fp32 to the end: fp16 atomics across K blocks (TensorCore*, not *Deterministic) excluded, and Decode's
  // range-scaled fp16 partial sums (Accumulation::kFp16RangeScaled) too
  DispatchOptions strict;
  strict.accumulation = Accumulation::kFp32;
  for (const int m : {1, 2, 8, 64}) {
    INFO("M = " << m);
    CHECK(choose(strict, m, kLargeLayer) == KernelChoice::kTensorCorePipelinedDeterministic);
  }
  CHECK(choose(strict, 256, kLargeLayer) == KernelChoice::kDequantCublas);

  DispatchOptions deterministic;  // a fixed order of every addition; range-scaled fp16 partial sums allowed
  deterministic.deterministic = true;
  CHECK(choose(deterministic, 1, kLargeLayer) == KernelChoice::kDecode);
  CHECK(choose(deterministic, 8, kSmallLayer) == KernelChoice::kDecode);
  CHECK(choose(deterministic, 1024, kSmallLayer) == KernelChoice::kDequantCublas);

  DispatchOptions invariant;  // one kernel for every M, never cuBLAS
  invariant.batch_invariant = true;
  for (const int m : {1, 2, 3, 17, 64, 65, 255, 256, 4096}) {
    INFO("M = " << m);
    CHECK(choose(invariant, m, kLargeLayer) == KernelChoice::kTensorCoreDeterministic);
    CHECK(choose(invariant, m, kSmallLayer, true) == KernelChoice::kTensorCoreDeterministic);
  }
}

TEST_CASE("bf16 calls: the kernels with a bf16 build, each with its fp16 build's promise", "[host][dispatch][bf16]") {
  // What host/dispatch_kernels.hpp builds for bf16 (a GPU header; its static_assert keeps the two in step): every kernel
  // but the paper's fp16-chain ones.
  constexpr KernelSet kBf16Built = KernelSet::all()
                                       .without(KernelChoice::kBaseline)
                                       .without(KernelChoice::kOpt4Gptq)
                                       .without(KernelChoice::kDeterministic);
  DispatchOptions bf16;
  bf16.dtype = ElementType::kBf16;
  // Decode's bf16 build runs Decode's arithmetic on activations converted to range-scaled fp16: strict fp32 options
  // exclude it in both types.
  for (int i = 0; i < kKernelChoiceCount; ++i) {
    const auto k = static_cast<KernelChoice>(i);
    CHECK(kernel_info(k, ElementType::kBf16).accumulation == kernel_info(k, ElementType::kFp16).accumulation);
  }
  CHECK(kernel_info(KernelChoice::kDecode, ElementType::kBf16).accumulation == Accumulation::kFp16RangeScaled);
  DispatchOptions strict_fp16;
  strict_fp16.accumulation = Accumulation::kFp32;
  DispatchOptions strict_bf16 = strict_fp16;
  strict_bf16.dtype = ElementType::kBf16;
  CHECK_FALSE(meets_options(KernelChoice::kDecode, strict_fp16));
  CHECK_FALSE(meets_options(KernelChoice::kDecode, strict_bf16));
  CHECK_FALSE(meets_options(KernelChoice::kTensorCore, strict_bf16));  // K blocks meet through bf16 atomics

  const auto& t = dispatch::table_for(kH200);
  const KernelSet runnable = runnable_kernels(kBf16Built, kH200);
  DispatchOptions fast = bf16;  // even with every accumulation allowed, no rule may name a kernel without a bf16 build
  fast.accumulation = Accumulation::kFp16Partials;
  for (const DispatchOptions& o : {bf16, fast, strict_bf16}) {
    for (const int m : {1, 2, 3, 4, 8, 16, 32, 64, 128, 256, 1024, 4096})
      for (const std::int64_t bytes : {kSmallLayer, kLargeLayer})
        for (const bool act_order : {false, true}) {
          INFO("M = " << m << ", " << bytes << " bytes, act-order " << act_order);
          CHECK(kBf16Built.contains(choose_kernel(t, o, runnable, m, bytes, act_order)));
        }
  }
  // Where the fp16 choice has a bf16 build, bf16 takes the same kernel (the table's measurement is of fp16).
  CHECK(choose_kernel(t, bf16, runnable, 1, kLargeLayer, false) == KernelChoice::kDecode);
  CHECK(choose_kernel(t, bf16, runnable, 64, kLargeLayer, false) == KernelChoice::kTensorCorePipelined);
  CHECK(choose_kernel(t, bf16, runnable, 4096, kLargeLayer, false) == KernelChoice::kDequantCublas);
  // Where it is a paper kernel (fp16 partials allowed), the next rule for the same calls decides.
  CHECK(choose_kernel(t, fast, runnable_kernels(KernelSet::all(), kH200), 1, kLargeLayer, false) ==
        KernelChoice::kBaseline);
  CHECK(choose_kernel(t, fast, runnable, 1, kLargeLayer, false) == KernelChoice::kDecode);
}

TEST_CASE("AMD: gfx906 runs the SIMT kernels, gfx90a the MFMA ones where the build has them", "[host][dispatch]") {
  const KernelSet gfx906 = runnable_kernels(KernelSet::all(), kGfx906);
  const auto& simt = dispatch::table_for(kGfx906);
  DispatchOptions fast;
  fast.accumulation = Accumulation::kFp16Partials;
  CHECK(choose_kernel(simt, fast, gfx906, 1, kLargeLayer, false) == KernelChoice::kOpt4Gptq);
  CHECK(choose_kernel(simt, fast, gfx906, 4096, kLargeLayer, true) == KernelChoice::kOpt4Gptq);
  for (const int m : {1, 8, 256, 4096}) {
    INFO("M = " << m);
    // Overflow-safe, deterministic or batch invariant: fp32 dot products through v_dot2_f32_f16, fp32 fix-up.
    CHECK(choose_kernel(simt, DispatchOptions{}, gfx906, m, kLargeLayer, false) == KernelChoice::kDeterministicF32);
    DispatchOptions invariant;
    invariant.batch_invariant = true;
    CHECK(choose_kernel(simt, invariant, gfx906, m, kSmallLayer, false) == KernelChoice::kDeterministicF32);
  }
  // gfx90a: MFMA when the build has it; with gfx906 among the build's targets it has not, and the SIMT kernels serve.
  const auto& mfma = dispatch::table_for(kGfx90a);
  CHECK(choose_kernel(mfma, DispatchOptions{}, runnable_kernels(KernelSet::all(), kGfx90a), 8, kLargeLayer, false) ==
        KernelChoice::kTensorCore);
  CHECK(choose_kernel(mfma, DispatchOptions{}, runnable_kernels(KernelSet::all(), kGfx90a), 4096, kLargeLayer, false) ==
        KernelChoice::kTensorCore);
  CHECK(choose_kernel(mfma, DispatchOptions{}, runnable_kernels(kSimtOnly, kGfx90a), 8, kLargeLayer, false) ==
        KernelChoice::kDeterministicF32);
  DispatchOptions invariant;
  invariant.batch_invariant = true;
  CHECK(choose_kernel(mfma, invariant, runnable_kernels(kSimtOnly, kGfx90a), 8, kLargeLayer, false) ==
        KernelChoice::kDeterministicF32);
}
