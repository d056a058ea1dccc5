#pragma once
/// @file
/// The dispatcher's rules as data: which kernel is fastest for a call of M rows on a layer of a given size, per
/// architecture, as a small table measured by the benchmark (bench/make_dispatch_table.py turns a results.csv into
/// one) and committed with the device it was measured on; and what each kernel a table may name promises (its
/// accumulation precision, determinism, batch invariance, what it needs of the device). Plain C++ (no GPU header): a
/// loader or a log can ask what would run. choose_kernel() reads a table; the tables are in dispatch/.
///
/// Adding a kernel to the dispatcher: a KernelChoice value and its row in kernel_info() here, its line in the kernel
/// list of host/dispatch_kernels.hpp, and its CSV name in bench/make_dispatch_table.py's CHOICES.
/// @ingroup host_api

#include <cstdint>

#include "element.hpp"
#include "version.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

/// @ingroup host_api
/// The kernels a dispatch table chooses among: the shipped presets (presets.hpp) and the prefill path
/// (host/dequant_cublas.hpp). Values are stable (tables are generated with them); new kernels take the next value.
enum class KernelChoice : int {
  kBaseline = 0,
  kOpt4Gptq = 1,
  kDeterministic = 2,
  kTensorCore = 3,
  kTensorCoreDeterministic = 4,
  kDeterministicF32 = 5,     ///< presets::DeterministicF32: the SIMT kernel that meets every DispatchOptions
  kDequantCublas = 6,        ///< prefill: dequantize into the workspace, then cuBLAS (NVIDIA, OPT4GPTQ_WITH_CUBLAS)
  kDecode = 7,               ///< presets::Decode: the SIMT decode kernel (M = 1..8; gfx906's decode path)
  kTensorCorePipelined = 8,  ///< presets::TensorCorePipelined
  kTensorCorePipelinedDeterministic = 9,  ///< presets::TensorCorePipelinedDeterministic
};

/// @ingroup host_api
/// Number of KernelChoice values (they are 0 .. kKernelChoiceCount - 1).
inline constexpr int kKernelChoiceCount = 10;

/// @ingroup host_api
/// Where a kernel may hold partial sums in fp16: the overflow hazard. Ordered from the safest; a DispatchOptions
/// allows every kernel up to the level it names.
enum class Accumulation : int {
  /// Every sum in fp32 up to the one rounding of C: the result is finite and accurate whenever the exact result (and
  /// every dequantized weight) fits in fp16. TensorCoreDeterministic, DeterministicF32, DequantCublas.
  kFp32 = 0,
  /// 4-product partial sums in fp16 of activations range scaled per row and window by a power of two, so that no
  /// partial sum can pass 61440 (kernel/range_scaling.hpp), then fp32: finite whenever the exact result fits in fp16,
  /// as kFp32, with the fp16 chain's rounding of the partial sums (relative error ~1e-3 of a partial). Decode on
  /// NVIDIA (on AMD its dot products are fp32; the level states the weaker of the two).
  kFp16RangeScaled = 1,
  /// fp32 inside each K block; K blocks meet in C through fp16 atomics, so a K block's partial sum (over K / k_blocks
  /// rows) must fit in fp16 too. With activations of either sign that holds whenever the result fits, but a layer
  /// whose K blocks cancel (one +80000, the next -79000) returns inf. TensorCore.
  kFp32PerKBlock = 2,
  /// 8-product partial sums in fp16 (the exllama chain; policy/math.hpp): infinite outputs once |a| · |q - z| sums
  /// past 65504 over 4 products (measured on an H200: from |a| of about 1000-2100 on random layers). Baseline (also
  /// fp16 atomics of 128-row partials in C), Opt4Gptq, Deterministic.
  kFp16Partials = 3,
};

/// @ingroup host_api
/// What a kernel promises, for the dispatcher's options (dispatch_options.hpp) and for logs.
struct KernelInfo {
  const char* name;           ///< as the benchmark's CSV and logs spell it
  Accumulation accumulation;  ///< where partial sums may be fp16
  bool deterministic;         ///< the same bits on every run (no atomics; fixed order of every addition)
  /// Row i of C does not depend on M or on the other rows once the K split is fixed (PlanOptions): batch invariance
  bool batch_invariant;
  bool needs_matrix_cores;  ///< NVIDIA sm_80+, AMD gfx908/gfx90a/gfx94x
  bool needs_cublas;        ///< built only with OPT4GPTQ_WITH_CUBLAS (NVIDIA)
};

/// @ingroup host_api
/// The row of kernel_info() for each KernelChoice.
constexpr KernelInfo kernel_info(KernelChoice k) {
  constexpr Accumulation kFp32 = Accumulation::kFp32;
  constexpr Accumulation kScaled = Accumulation::kFp16RangeScaled;
  constexpr Accumulation kPerBlock = Accumulation::kFp32PerKBlock;
  constexpr Accumulation kFp16 = Accumulation::kFp16Partials;
  switch (k) {
    //                                              name, accumulation, deterministic, batch inv., matrix, cublas
    case KernelChoice::kBaseline: return KernelInfo{"Baseline", kFp16, false, false, false, false};
    case KernelChoice::kOpt4Gptq: return KernelInfo{"Opt4GPTQ", kFp16, false, false, false, false};
    case KernelChoice::kDeterministic: return KernelInfo{"Deterministic", kFp16, true, true, false, false};
    case KernelChoice::kTensorCore: return KernelInfo{"TensorCore", kPerBlock, false, false, true, false};
    case KernelChoice::kTensorCoreDeterministic:
      return KernelInfo{"TensorCoreDeterministic", kFp32, true, true, true, false};
    case KernelChoice::kDeterministicF32: return KernelInfo{"DeterministicF32", kFp32, true, true, false, false};
    // cuBLAS: the same bits on every run for one toolkit version, GPU architecture and SM count (cuBLAS's guarantee,
    // "Results reproducibility"); it chooses its algorithm per M, so it is not batch invariant.
    case KernelChoice::kDequantCublas: return KernelInfo{"DequantCublas", kFp32, true, false, false, true};
    // Batch invariance is not claimed for the three below until a GPU test shows it (their per-row arithmetic does
    // not depend on M, but their 8-row entry points are not yet in the batch-invariance test).
    case KernelChoice::kDecode: return KernelInfo{"Decode", kScaled, true, false, false, false};
    case KernelChoice::kTensorCorePipelined:
      return KernelInfo{"TensorCorePipelined", kPerBlock, false, false, true, false};
    case KernelChoice::kTensorCorePipelinedDeterministic:
      return KernelInfo{"TensorCorePipelinedDeterministic", kFp32, true, false, true, false};
  }
  return KernelInfo{"?", kFp16, false, false, false, false};
}

/// @ingroup host_api
/// The row of kernel_info() for a kernel built for calls of element type `dtype`: today the same row for both. Each
/// bf16 build sums as its fp16 one, with bf16 where fp16 was: Decode's bf16 build converts its activations to
/// range-scaled fp16 and runs Decode's arithmetic (kFp16RangeScaled, as in fp16); the atomic kernels' K blocks meet in
/// C through bf16 atomics (bf16 has fp32's range, so these cannot overflow where the result fits, but each addition
/// rounds to bf16's 8 bits: the level still marks them).
constexpr KernelInfo kernel_info(KernelChoice k, ElementType dtype) {
  (void)dtype;
  return kernel_info(k);
}

/// @ingroup host_api
/// The kernel's name, as the benchmark's CSV and logs spell it.
constexpr const char* kernel_name(KernelChoice k) { return kernel_info(k).name; }

/// @ingroup host_api
/// A set of KernelChoice values (one bit each).
class KernelSet {
 public:
  constexpr KernelSet() = default;
  /// Every kernel.
  static constexpr KernelSet all() { return KernelSet((1u << kKernelChoiceCount) - 1u); }
  constexpr bool contains(KernelChoice k) const { return (bits_ >> static_cast<int>(k)) & 1u; }
  constexpr KernelSet with(KernelChoice k) const { return KernelSet(bits_ | (1u << static_cast<int>(k))); }
  constexpr KernelSet without(KernelChoice k) const { return KernelSet(bits_ & ~(1u << static_cast<int>(k))); }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr bool operator==(KernelSet o) const { return bits_ == o.bits_; }

 private:
  constexpr explicit KernelSet(std::uint32_t bits) : bits_(bits) {}
  std::uint32_t bits_ = 0;
};

/// @ingroup host_api
/// Calls of any M: a rule's `m_max` that covers every call.
inline constexpr int kAnyM = 0x7fffffff;

/// @ingroup host_api
/// One rule: calls of at most `m_max` rows on layers of at most `weight_bytes_max` bytes (int4 weights, scales and
/// zeros) with the given act-order run `kernel`. Rules are tried in order; the first that matches decides.
struct DispatchRule {
  int m_max;
  std::int64_t weight_bytes_max;  ///< -1: any size
  int act_order;                  ///< 0: without, 1: with, -1: either
  KernelChoice kernel;
};

/// @ingroup host_api
/// A table for one architecture, and where it was measured.
struct DispatchTable {
  const char* measured_on;  ///< device, date and results folder of the measurement (or "not measured: ...")
  int arch_major;           ///< the compute capability major (NVIDIA) or gfx major the table is for
  const DispatchRule* rules;
  int rule_count;
  KernelChoice fallback;  ///< when no rule matches (M above every rule's m_max)
  /// The kernel that meets every DispatchOptions on this architecture (fp32 accumulation, deterministic, batch
  /// invariant with a fixed K split): every M of a batch-invariant Dispatcher runs it, and it runs when no rule's
  /// kernel is allowed.
  KernelChoice invariant;
};

/// @ingroup host_api
/// Whether `rule` covers a call of `m` rows on a layer of `weight_bytes` bytes.
constexpr bool rule_matches(const DispatchRule& r, int m, std::int64_t weight_bytes, bool act_order) {
  return m <= r.m_max && (r.weight_bytes_max < 0 || weight_bytes <= r.weight_bytes_max) &&
         (r.act_order < 0 || r.act_order == (act_order ? 1 : 0));
}

/// @ingroup host_api
/// The kernel `table` chooses for a call of `m` rows on a layer of `weight_bytes` bytes: the first rule that matches.
constexpr KernelChoice choose_kernel(const DispatchTable& table, int m, std::int64_t weight_bytes, bool act_order) {
  for (int i = 0; i < table.rule_count; ++i)
    if (rule_matches(table.rules[i], m, weight_bytes, act_order)) return table.rules[i].kernel;
  return table.fallback;
}

/// @ingroup host_api
/// The kernel `table` chooses among `allowed` (what this program has built, the device runs and the caller's options
/// accept): the first rule that matches and names an allowed kernel, else the fallback, else the table's invariant
/// kernel, else DeterministicF32 (which runs everywhere and meets every option). A rule whose kernel is not allowed is
/// skipped, not a dead end: a table lists, for the same calls, the measured choice first and what serves without it
/// after (e.g. the prefill rule for DequantCublas, then the library's own kernel for builds without cuBLAS).
constexpr KernelChoice choose_kernel(const DispatchTable& table, int m, std::int64_t weight_bytes, bool act_order,
                                     KernelSet allowed) {
  for (int i = 0; i < table.rule_count; ++i) {
    const DispatchRule& r = table.rules[i];
    if (allowed.contains(r.kernel) && rule_matches(r, m, weight_bytes, act_order)) return r.kernel;
  }
  if (allowed.contains(table.fallback)) return table.fallback;
  if (allowed.contains(table.invariant)) return table.invariant;
  return KernelChoice::kDeterministicF32;
}

/// @ingroup host_api
/// The bytes a layer streams per call, as the tables count them: int4 weights, fp16 scales and 4-bit zeros.
constexpr std::int64_t layer_weight_bytes(int k, int n, int num_groups) {
  return static_cast<std::int64_t>(k) / 8 * n * 4 + static_cast<std::int64_t>(num_groups) * n * 2 +
         static_cast<std::int64_t>(num_groups) * (n / 8) * 4;
}

OPT4GPTQ_NAMESPACE_END
