#pragma once
/// @file
/// Act-order (desc_act) layers: their g_idx scatters the rows of one group over K. `prepare_act_order` sorts the rows
/// by group once, at load time and on the device, so that each group is one contiguous run again:
///  - a one-block kernel counts the rows of each group, lays the groups out in order (each padded to a multiple of 8
///    rows, so that no packed word straddles two groups), and places the rows of each group in their original order
///    (a stable sort: rocPRIM / CUB block radix sort, chunk by chunk), writing the permutation and the group of
///    every 8-row word;
///  - a second kernel repacks qweight into that order.
/// Two launches on the caller's stream, no host round trip, no synchronization. At run time the GEMM gathers the
/// activation columns through the permutation while staging them.
///
/// Row shards of act-order layers (a slice of K with its slice of g_idx, and scales/qzeros of all groups) are
/// prepared the same way: groups may then have any number of rows, which the padding absorbs.
/// g_idx contents are checked on the device: an entry outside [0, num_groups) marks the layout invalid, every GEMM
/// with it produces NaN, and `check_act_order` (which synchronizes) returns the reason.
/// @ingroup host_api

#include <cstddef>
#include <cstdint>

#include "../codec/int4.hpp"
#include "../detail/block_primitives.hpp"
#include "../detail/checks.hpp"
#include "../platform.hpp"
#include "../status.hpp"
#include "../weights.hpp"
#include "device_info.hpp"

OPT4GPTQ_NAMESPACE_BEGIN

namespace detail {

constexpr int kSortThreads = 1024;
constexpr std::size_t kBufferAlign = 256;
constexpr std::size_t align_up(std::size_t v) { return (v + kBufferAlign - 1) / kBufferAlign * kBufferAlign; }

/// The buffer: a header at offset 0 (so that it is found whatever (k, n, num_groups) a view assumes), then the arrays.
struct ActOrderBufferLayout {
  std::size_t info, qweight, perm, word_group, cursor, total;
};
constexpr ActOrderBufferLayout act_order_buffer_layout(int k, int n, int num_groups) {
  const std::int64_t rows = PreparedActOrder::rows_max(k, num_groups);
  ActOrderBufferLayout l{};
  l.info = 0;
  l.qweight = l.info + align_up(ActOrderInfo::kWords * sizeof(std::int32_t));
  l.perm = l.qweight + align_up(static_cast<std::size_t>(rows / 8) * n * sizeof(std::int32_t));
  l.word_group = l.perm + align_up(static_cast<std::size_t>(rows) * sizeof(std::int32_t));
  l.cursor = l.word_group + align_up(static_cast<std::size_t>(rows / 8) * sizeof(std::int32_t));
  l.total = l.cursor + align_up(static_cast<std::size_t>(num_groups) * sizeof(std::int32_t));
  return l;
}

OPT4GPTQ_HOST_DEVICE constexpr int bits_for(int value) {
  int bits = 1;
  while ((1ll << bits) <= value) ++bits;
  return bits;
}

/// One block. `cursor` is scratch of num_groups ints (in the caller's buffer).
__global__ static void __launch_bounds__(kSortThreads)
    act_order_sort_kernel(const std::int32_t* g_idx, int k, int n, int num_groups, int rows_max, std::int32_t* perm,
                          std::int32_t* word_group, std::int32_t* info, std::int32_t* cursor) {
  using Sort = BlockSortPairs<kSortThreads>;
  using Scan = BlockScanInt<kSortThreads>;
  __shared__ typename Sort::TempStorage sort_storage;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ int sorted_keys[kSortThreads];
  __shared__ int invalid;
  const int t = threadIdx.x;

  // 1. Clear the outputs: padding rows gather nothing (-1). The header records what the layout was made for.
  if (t == 0) {
    invalid = 0;
    info[ActOrderInfo::kK] = k;
    info[ActOrderInfo::kN] = n;
    info[ActOrderInfo::kGroups] = num_groups;
    info[ActOrderInfo::kRowsMax] = rows_max;
  }
  for (int i = t; i < rows_max; i += kSortThreads) perm[i] = -1;
  for (int i = t; i < rows_max / 8; i += kSortThreads) word_group[i] = 0;
  for (int g = t; g < num_groups; g += kSortThreads) cursor[g] = 0;
  __syncthreads();

  // 2. Rows per group, and the range check.
  for (int i = t; i < k; i += kSortThreads) {
    const int g = g_idx[i];
    if (g < 0 || g >= num_groups)
      invalid = 1;
    else
      atomicAdd(&cursor[g], 1);
  }
  __syncthreads();
  if (invalid) {
    if (t == 0) {
      info[ActOrderInfo::kRowsUsed] = 0;
      info[ActOrderInfo::kInvalid] = 1;
    }
    return;  // the whole block: `invalid` is uniform after the barrier
  }

  // 3. Group starts (each group padded to 8 rows), and the group of every word. Thread t owns a contiguous run of
  //    groups so that the scan sees them in order.
  const int per_thread = (num_groups + kSortThreads - 1) / kSortThreads;
  const int g_begin = t * per_thread < num_groups ? t * per_thread : num_groups;
  const int g_end = g_begin + per_thread < num_groups ? g_begin + per_thread : num_groups;
  int padded = 0;
  for (int g = g_begin; g < g_end; ++g) padded += (cursor[g] + 7) / 8 * 8;
  int total = 0;
  int start = Scan::exclusive_sum(padded, total, scan_storage);
  for (int g = g_begin; g < g_end; ++g) {
    const int rows = (cursor[g] + 7) / 8 * 8;
    for (int w = start / 8; w < (start + rows) / 8; ++w) word_group[w] = g;
    cursor[g] = start;
    start += rows;
  }
  if (t == 0) {
    info[ActOrderInfo::kRowsUsed] = total;
    info[ActOrderInfo::kInvalid] = 0;
  }
  __syncthreads();

  // 4. Stable scatter, one chunk of rows at a time: sort (group, row) pairs, then each row's rank among the equal
  //    groups of its chunk plus the group's cursor is its destination.
  const int end_bit = bits_for(num_groups);
  for (int base = 0; base < k; base += kSortThreads) {
    int key = base + t < k ? g_idx[base + t] : num_groups;  // past the end: sorts last, ignored
    int row = base + t;
    Sort::sort(key, row, sort_storage, end_bit);
    sorted_keys[t] = key;
    __syncthreads();
    const bool head = t == 0 || sorted_keys[t - 1] != key;
    const bool tail = t == kSortThreads - 1 || sorted_keys[t + 1] != key;
    const int segment_start = Scan::inclusive_max(head ? t : 0, scan_storage);
    if (key < num_groups) perm[cursor[key] + (t - segment_start)] = row;
    __syncthreads();  // every cursor read happens before any update
    if (tail && key < num_groups) cursor[key] += t - segment_start + 1;
    __syncthreads();
  }
}

/// sorted[w][c] = the rows perm[8w .. 8w+7] of column c, repacked; padding rows are 0. The codec says how rows sit in
/// a word; the sort works on 8-row words, the unit of the 4-bit layout.
template <class Codec = CodecInt4>
__global__ static void act_order_repack_kernel(const std::uint32_t* qweight, std::int64_t ldq, int n,
                                               const std::int32_t* perm, int rows_max, std::uint32_t* sorted) {
  constexpr int kRows = Codec::kRowsPerWord;
  static_assert(kRows == 8, "prepare_act_order pads groups to 8-row words: a codec with another word size needs it");
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= n) return;
  for (int w = blockIdx.y; w < rows_max / kRows; w += gridDim.y) {
    std::uint32_t word = 0;
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      const int src = perm[kRows * w + j];
      if (src >= 0) word |= Codec::place_value(Codec::value_of(qweight[(src / kRows) * ldq + col], src % kRows), j);
    }
    sorted[static_cast<std::int64_t>(w) * n + col] = word;
  }
}

}  // namespace detail

/// Bytes of the device buffer `prepare_act_order` needs for a layer of k rows, n columns and num_groups groups.
/// @ingroup host_api
inline std::size_t act_order_buffer_bytes(int k, int n, int num_groups) {
  if (k < 1 || n < 1 || num_groups < 1) return 0;
  return detail::act_order_buffer_layout(k, n, num_groups).total;
}

/// The description of a layout that prepare_act_order() wrote into `buffer` for a layer of (k, n, num_groups): the
/// buffer alone is enough to keep (an engine stores it with the layer and rebuilds this view when it needs it).
/// @ingroup host_api
inline PreparedActOrder act_order_view(const void* buffer, int k, int n, int num_groups) {
  const detail::ActOrderBufferLayout l = detail::act_order_buffer_layout(k, n, num_groups);
  const char* base = static_cast<const char*>(buffer);
  return PreparedActOrder{reinterpret_cast<const std::int32_t*>(base + l.qweight),
                          reinterpret_cast<const std::int32_t*>(base + l.perm),
                          reinterpret_cast<const std::int32_t*>(base + l.word_group),
                          reinterpret_cast<const std::int32_t*>(base + l.info),
                          k,
                          n,
                          num_groups,
                          static_cast<int>(PreparedActOrder::rows_max(k, num_groups))};
}

/// Sorts an act-order layer's rows by group into `buffer` (device memory of at least act_order_buffer_bytes()) and
/// describes the result in `*prepared`. Asynchronous on `stream`; the original qweight may be freed once the stream
/// has passed this point. Takes the checkpoint tensors as saved: `qweight` [k/8, n] (row stride ldq words, 0 = n) and
/// `g_idx` [k] (for a row shard: the shard's slice, with num_groups = rows of the scales it refers to).
/// @ingroup host_api
inline Status prepare_act_order(const std::int32_t* qweight, std::int64_t ldq, const std::int32_t* g_idx, int k, int n,
                                int num_groups, void* buffer, std::size_t buffer_bytes, platform::stream_t stream,
                                PreparedActOrder* prepared) {
  using detail::invalid;
  if (prepared == nullptr) return detail::null("prepared: null (the description of the prepared layout goes there)");
  if (k < 8 || k % 8 != 0) return invalid("k: must be a positive multiple of 8 (qweight packs 8 rows per int32)");
  if (n < 8 || n % 8 != 0) return invalid("n: must be a positive multiple of 8 (qzeros packs 8 columns per int32)");
  if (num_groups < 1) return invalid("num_groups: must be >= 1 (rows of scales and qzeros)");
  if (ldq == 0) ldq = n;
  if (ldq < n) return invalid("ldq: must be >= n (or 0 for dense rows)");
  if (qweight == nullptr) return detail::null("qweight: null");
  if (!detail::aligned_to(qweight, 4)) return detail::misaligned("qweight: must be 4-byte aligned (int32 words)");
  if (g_idx == nullptr) return detail::null("g_idx: null");
  if (!detail::aligned_to(g_idx, 4)) return detail::misaligned("g_idx: must be 4-byte aligned (int32 entries)");
  if (buffer == nullptr) return detail::null("buffer: null");
  if (!detail::aligned_to(buffer, detail::kBufferAlign)) return detail::misaligned("buffer: must be 256-byte aligned");
  if (buffer_bytes < act_order_buffer_bytes(k, n, num_groups))
    return Status::error(StatusCode::kWorkspaceTooSmall,
                         "buffer_bytes: smaller than act_order_buffer_bytes(k, n, num_groups)");
  const std::int64_t rows_max = PreparedActOrder::rows_max(k, num_groups);
  if (rows_max > (1ll << 30)) return invalid("k: too large");

  const detail::ActOrderBufferLayout l = detail::act_order_buffer_layout(k, n, num_groups);
  char* base = static_cast<char*>(buffer);
  auto* sorted = reinterpret_cast<std::int32_t*>(base + l.qweight);
  auto* perm = reinterpret_cast<std::int32_t*>(base + l.perm);
  auto* word_group = reinterpret_cast<std::int32_t*>(base + l.word_group);
  auto* info = reinterpret_cast<std::int32_t*>(base + l.info);
  auto* cursor = reinterpret_cast<std::int32_t*>(base + l.cursor);

  detail::act_order_sort_kernel<<<1, detail::kSortThreads, 0, stream>>>(
      g_idx, k, n, num_groups, static_cast<int>(rows_max), perm, word_group, info, cursor);
  platform::native_error_t e = platform::last_error();
  if (e != platform::kNativeSuccess) return detail::launch_failed(e);
  constexpr int kRepackThreads = 256;
  const int words = static_cast<int>(rows_max / 8);
  const dim3 grid((n + kRepackThreads - 1) / kRepackThreads, words < 65535 ? words : 65535);
  detail::act_order_repack_kernel<CodecInt4>
      <<<grid, kRepackThreads, 0, stream>>>(reinterpret_cast<const std::uint32_t*>(qweight), ldq, n, perm,
                                            static_cast<int>(rows_max), reinterpret_cast<std::uint32_t*>(sorted));
  e = platform::last_error();
  if (e != platform::kNativeSuccess) return detail::launch_failed(e);

  *prepared = act_order_view(buffer, k, n, num_groups);
  return Status::success();
}

/// Waits for `stream` and reports whether the g_idx that `prepared` was made from was valid. Call it once at load
/// time if you want the reason on the host; the GEMM does not need it (an invalid layout yields NaN outputs).
/// @ingroup host_api
inline Status check_act_order(const PreparedActOrder& prepared, platform::stream_t stream) {
  if (prepared.info == nullptr) return detail::null("prepared.info: null (not made by prepare_act_order)");
  std::int32_t info[ActOrderInfo::kWords] = {};
  platform::native_error_t e = platform::copy_to_host_async(info, prepared.info, sizeof(info), stream);
  if (e == platform::kNativeSuccess) e = platform::stream_synchronize(stream);
  if (e != platform::kNativeSuccess) return detail::runtime_error(e);
  if (info[ActOrderInfo::kK] != prepared.k || info[ActOrderInfo::kN] != prepared.n ||
      info[ActOrderInfo::kGroups] != prepared.num_groups || info[ActOrderInfo::kRowsMax] != prepared.k_rows_max)
    return detail::invalid("prepared: the buffer was prepared for another (k, n, num_groups) than this view says");
  if (info[ActOrderInfo::kInvalid] != 0)
    return Status::error(StatusCode::kInvalidData, "g_idx: an entry is outside [0, num_groups)");
  return Status::success();
}

/// Host-side check of a g_idx array (as read from the checkpoint file, say) before it goes to the device.
/// @ingroup host_api
inline Status validate_g_idx(const std::int32_t* g_idx, int k, int num_groups) {
  if (k < 0) return detail::invalid("k: must be >= 0 (entries of g_idx)");
  if (g_idx == nullptr && k > 0) return detail::null("g_idx: null");
  for (int i = 0; i < k; ++i)
    if (g_idx[i] < 0 || g_idx[i] >= num_groups)
      return Status::error(StatusCode::kInvalidData, "g_idx: an entry is outside [0, num_groups)");
  return Status::success();
}

/// True when g_idx[i] == i / group_size for every row: the layer needs no prepare step (desc_act was false, or the
/// permutation happened to be the identity), and the GEMM runs on the checkpoint's qweight directly.
/// @ingroup host_api
inline bool is_sequential_g_idx(const std::int32_t* g_idx, int k, int group_size) {
  if (g_idx == nullptr) return true;
  for (int i = 0; i < k; ++i)
    if (g_idx[i] != (group_size > 0 ? i / group_size : 0)) return false;
  return true;
}

OPT4GPTQ_NAMESPACE_END
