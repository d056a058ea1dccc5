#pragma once
/// @file
/// Host reference for tests, examples and benchmarks (plain C++17, no GPU headers):
/// - `quantize_rtn`: a round-to-nearest GPTQ quantizer that produces the exact tensors AutoGPTQ / GPTQModel save
///   (qweight, qzeros in the v1 or v2 convention, fp16 scales, g_idx), symmetric or asymmetric, any group size,
///   with an act-order permutation;
/// - `row_shard` / `column_shard`: the slices an engine gives each tensor-parallel rank;
/// - `dequantize` and `gemm`: the meaning of those tensors, in fp64.
/// RTN skips GPTQ's error compensation, which changes the values but not the format; the kernel only sees the format.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "../format.hpp"
#include "bf16.hpp"
#include "fp16.hpp"

OPT4GPTQ_NAMESPACE_BEGIN
namespace reference {

/// One layer exactly as a GPTQ checkpoint stores it (host copies).
struct QuantizedLayer {
  int k = 0;           ///< input features (rows of W)
  int n = 0;           ///< output features (columns of W)
  int group_size = 0;  ///< rows per group, -1 for one group
  int num_groups = 0;  ///< rows of scales / qzeros
  ZeroPointFormat format = ZeroPointFormat::kGptqV1;
  bool symmetric = true;
  std::vector<std::int32_t> qweight;  ///< [k / 8][n]
  std::vector<std::int32_t> qzeros;   ///< [num_groups][n / 8]
  std::vector<std::uint16_t> scales;  ///< [num_groups][n], fp16 bits
  std::vector<std::int32_t> g_idx;    ///< [k]

  bool act_order() const {
    for (int i = 0; i < k; ++i)
      if (g_idx[i] != (group_size > 0 ? i / group_size : 0)) return true;
    return false;
  }
  int q(int row, int col) const {
    return format::unpack(static_cast<std::uint32_t>(qweight[static_cast<std::size_t>(row / 8) * n + col]), row % 8);
  }
  /// The zero point the format means (0..15): nibble col % 8 of the stored word after format::zero_word (v1: the
  /// whole word plus 0x11111111, so a stored borrow reads back right).
  int zero(int group, int col) const {
    const auto stored = static_cast<std::uint32_t>(qzeros[static_cast<std::size_t>(group) * (n / 8) + col / 8]);
    return format::unpack(format::zero_word(stored, format), col % 8);
  }
  float scale(int group, int col) const {
    return half_bits_to_float(scales[static_cast<std::size_t>(group) * n + col]);
  }
};

struct QuantizeOptions {
  int group_size = 128;  ///< -1: one group over all rows
  bool symmetric = true;
  ZeroPointFormat format = ZeroPointFormat::kGptqV1;
  /// desc_act: order[p] = the row quantized p-th (GPTQ sorts rows by decreasing Hessian diagonal). Groups are runs
  /// of group_size positions of this order, so g_idx[order[p]] = p / group_size. Empty: rows in order.
  std::vector<int> order;
};

/// Quantizes w [k][n] (row-major, k = input features) as GPTQ's quantizer does, with round to nearest:
/// per group and column, the range [min(w, 0), max(w, 0)] (symmetric: [-max|w|, max|w|]) is split into 15 steps;
/// the zero point is 8 (symmetric) or round(-min / scale); q = clamp(round(w / scale) + zero, 0, 15). The scale is
/// rounded to fp16 before quantizing, so that the stored scale is the one used.
inline QuantizedLayer quantize_rtn(const std::vector<float>& w, int k, int n, const QuantizeOptions& options) {
  if (k <= 0 || n <= 0 || k % 8 != 0 || n % 8 != 0) throw std::invalid_argument("quantize_rtn: k, n multiples of 8");
  if (w.size() != static_cast<std::size_t>(k) * n) throw std::invalid_argument("quantize_rtn: w must be [k][n]");
  const int gs = options.group_size;
  if (gs != -1 && gs <= 0) throw std::invalid_argument("quantize_rtn: group_size must be -1 or positive");
  std::vector<int> order = options.order;
  if (order.empty()) {
    order.resize(k);
    for (int i = 0; i < k; ++i) order[i] = i;
  }
  if (static_cast<int>(order.size()) != k) throw std::invalid_argument("quantize_rtn: order must have k entries");

  QuantizedLayer layer;
  layer.k = k;
  layer.n = n;
  layer.group_size = gs;
  layer.num_groups = format::num_groups(k, gs);
  layer.format = options.format;
  layer.symmetric = options.symmetric;
  layer.g_idx.assign(k, 0);
  for (int p = 0; p < k; ++p) layer.g_idx[order[p]] = gs > 0 ? p / gs : 0;
  layer.qweight.assign(static_cast<std::size_t>(k / 8) * n, 0);
  layer.qzeros.assign(static_cast<std::size_t>(layer.num_groups) * (n / 8), 0);
  layer.scales.assign(static_cast<std::size_t>(layer.num_groups) * n, 0);

  const int G = layer.num_groups;
  std::vector<std::vector<int>> rows_of_group(G);
  for (int p = 0; p < k; ++p) rows_of_group[gs > 0 ? p / gs : 0].push_back(order[p]);

  for (int g = 0; g < G; ++g) {
    for (int col = 0; col < n; ++col) {
      float lo = 0.0f, hi = 0.0f;
      for (int row : rows_of_group[g]) {
        lo = std::min(lo, w[static_cast<std::size_t>(row) * n + col]);
        hi = std::max(hi, w[static_cast<std::size_t>(row) * n + col]);
      }
      if (options.symmetric) {
        hi = std::max(-lo, hi);
        if (lo < 0) lo = -hi;
      }
      if (lo == 0.0f && hi == 0.0f) {
        lo = -1.0f;
        hi = 1.0f;
      }
      const std::uint16_t scale_bits = float_to_half_bits((hi - lo) / format::kMaxQ);
      const float scale = half_bits_to_float(scale_bits);
      const int zero = options.symmetric ? (format::kMaxQ + 1) / 2
                                         : std::clamp(static_cast<int>(std::nearbyint(-lo / scale)), 0, format::kMaxQ);
      layer.scales[static_cast<std::size_t>(g) * n + col] = scale_bits;
      std::uint32_t& zword =
          reinterpret_cast<std::uint32_t&>(layer.qzeros[static_cast<std::size_t>(g) * (n / 8) + col / 8]);
      zword = format::pack(zword, col % 8, zero);  // the word of true zero points; v1's offset is applied below
      for (int row : rows_of_group[g]) {
        const float x = w[static_cast<std::size_t>(row) * n + col];
        const int q = std::clamp(static_cast<int>(std::nearbyint(x / scale)) + zero, 0, format::kMaxQ);
        std::uint32_t& word =
            reinterpret_cast<std::uint32_t&>(layer.qweight[static_cast<std::size_t>(row / 8) * n + col]);
        word = format::pack(word, row % 8, q);
      }
    }
  }
  // v1 as the toolkits write it: the packed word of true zero points minus 0x11111111, a 32-bit subtraction (a zero
  // point of 0 borrows from the next nibble).
  for (std::int32_t& word : layer.qzeros)
    word = static_cast<std::int32_t>(format::stored_zero_word(static_cast<std::uint32_t>(word), options.format));
  return layer;
}

/// dequant(W) [k][n] in fp64: scale[g][n] * (q - z) with g = g_idx[k], exactly as the format defines it.
inline std::vector<double> dequantize(const QuantizedLayer& layer) {
  std::vector<double> w(static_cast<std::size_t>(layer.k) * layer.n);
  for (int row = 0; row < layer.k; ++row) {
    const int g = layer.g_idx[row];
    if (g < 0 || g >= layer.num_groups) throw std::out_of_range("dequantize: g_idx entry out of range");
    for (int col = 0; col < layer.n; ++col)
      w[static_cast<std::size_t>(row) * layer.n + col] =
          static_cast<double>(layer.scale(g, col)) * (layer.q(row, col) - layer.zero(g, col));
  }
  return w;
}

/// How a 16-bit element's bits read as a value: half_bits_to_float (fp16, the default) or bf16_bits_to_float.
using ElementDecoder = float (*)(std::uint16_t);

/// C [m][n] = A [m][k] · W [k][n] in fp64; A as 16-bit elements (fp16 bits unless `decode` says otherwise) with row
/// stride lda (0 = k).
inline std::vector<double> gemm(int m, int n, int k, const std::uint16_t* a, std::int64_t lda,
                                const std::vector<double>& w, ElementDecoder decode = half_bits_to_float) {
  if (lda == 0) lda = k;
  std::vector<double> c(static_cast<std::size_t>(m) * n, 0.0);
  std::vector<double> row(k);
  for (int i = 0; i < m; ++i) {
    for (int kk = 0; kk < k; ++kk) row[kk] = decode(a[i * lda + kk]);
    double* out = &c[static_cast<std::size_t>(i) * n];
    for (int kk = 0; kk < k; ++kk) {
      const double av = row[kk];
      const double* wr = &w[static_cast<std::size_t>(kk) * n];
      for (int j = 0; j < n; ++j) out[j] += av * wr[j];
    }
  }
  return c;
}

/// The rows [k0, k1) of a layer, as a tensor-parallel row shard holds them: qweight rows k0/8 to k1/8 and g_idx[k0:k1].
/// Without act-order the shard also takes its own groups (k0 and k1 multiples of group_size) and g_idx is renumbered
/// from 0; with act-order (or when `keep_all_groups`), scales and qzeros stay whole and g_idx keeps its values, since
/// any row may belong to any group.
inline QuantizedLayer row_shard(const QuantizedLayer& layer, int k0, int k1, bool keep_all_groups) {
  if (k0 < 0 || k1 > layer.k || k0 >= k1 || k0 % 8 != 0 || k1 % 8 != 0)
    throw std::invalid_argument("row_shard: rows must be a non-empty range of multiples of 8");
  QuantizedLayer s = layer;
  s.k = k1 - k0;
  s.qweight.assign(layer.qweight.begin() + static_cast<std::size_t>(k0 / 8) * layer.n,
                   layer.qweight.begin() + static_cast<std::size_t>(k1 / 8) * layer.n);
  s.g_idx.assign(layer.g_idx.begin() + k0, layer.g_idx.begin() + k1);
  if (!keep_all_groups) {
    const int gs = layer.group_size;
    if (gs <= 0 || k0 % gs != 0 || k1 % gs != 0)
      throw std::invalid_argument("row_shard: without keep_all_groups, k0 and k1 must be multiples of group_size");
    const int g0 = k0 / gs, g1 = k1 / gs;
    s.num_groups = g1 - g0;
    s.qzeros.assign(layer.qzeros.begin() + static_cast<std::size_t>(g0) * (layer.n / 8),
                    layer.qzeros.begin() + static_cast<std::size_t>(g1) * (layer.n / 8));
    s.scales.assign(layer.scales.begin() + static_cast<std::size_t>(g0) * layer.n,
                    layer.scales.begin() + static_cast<std::size_t>(g1) * layer.n);
    for (int& g : s.g_idx) g -= g0;
  }
  return s;
}

/// The columns [n0, n1) of a layer (a column-parallel shard); n0 and n1 multiples of 8.
inline QuantizedLayer column_shard(const QuantizedLayer& layer, int n0, int n1) {
  if (n0 < 0 || n1 > layer.n || n0 >= n1 || n0 % 8 != 0 || n1 % 8 != 0)
    throw std::invalid_argument("column_shard: columns must be a non-empty range of multiples of 8");
  QuantizedLayer s = layer;
  const int n = n1 - n0;
  s.n = n;
  s.qweight.resize(static_cast<std::size_t>(layer.k / 8) * n);
  for (int r = 0; r < layer.k / 8; ++r)
    for (int c = 0; c < n; ++c)
      s.qweight[static_cast<std::size_t>(r) * n + c] = layer.qweight[static_cast<std::size_t>(r) * layer.n + n0 + c];
  s.qzeros.resize(static_cast<std::size_t>(layer.num_groups) * (n / 8));
  s.scales.resize(static_cast<std::size_t>(layer.num_groups) * n);
  for (int g = 0; g < layer.num_groups; ++g) {
    for (int c = 0; c < n / 8; ++c)
      s.qzeros[static_cast<std::size_t>(g) * (n / 8) + c] =
          layer.qzeros[static_cast<std::size_t>(g) * (layer.n / 8) + n0 / 8 + c];
    for (int c = 0; c < n; ++c)
      s.scales[static_cast<std::size_t>(g) * n + c] = layer.scales[static_cast<std::size_t>(g) * layer.n + n0 + c];
  }
  return s;
}

/// How far a result is from the reference.
struct ErrorReport {
  double relative = 0.0;     ///< ||c - ref||_2 / ||ref||_2
  double max_abs = 0.0;      ///< max |c - ref|
  double ref_rms = 0.0;      ///< sqrt(mean(ref^2)): the scale max_abs should be read against
  double ref_max = 0.0;      ///< max |ref|
  long long non_finite = 0;  ///< NaN or infinite outputs (a poisoned, never-written output counts here)
};

/// Compares outputs c [m][n] (row stride ldc, 0 = n; fp16 bits unless `decode` says otherwise) with a reference
/// [m][n].
inline ErrorReport compare(const std::uint16_t* c, int m, int n, std::int64_t ldc, const std::vector<double>& ref,
                           ElementDecoder decode = half_bits_to_float) {
  if (ldc == 0) ldc = n;
  ErrorReport r;
  double diff2 = 0.0, ref2 = 0.0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      const double x = decode(c[i * ldc + j]);
      const double y = ref[static_cast<std::size_t>(i) * n + j];
      r.ref_max = std::max(r.ref_max, std::abs(y));
      if (!std::isfinite(x)) {
        ++r.non_finite;
        continue;
      }
      diff2 += (x - y) * (x - y);
      ref2 += y * y;
      r.max_abs = std::max(r.max_abs, std::abs(x - y));
    }
  r.relative = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  r.ref_rms = std::sqrt(ref2 / (static_cast<double>(m) * n));
  return r;
}

}  // namespace reference
OPT4GPTQ_NAMESPACE_END
