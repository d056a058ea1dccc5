#pragma once
// A safetensors reader for a loader: the header is parsed with nlohmann::json and every entry is checked against the
// file before anything is read (known dtype, shape and byte count agree, offsets inside the data, no two tensors
// overlapping), and only the tensors asked for are mapped (mmap of their page-aligned byte range), so a 10 GB shard
// costs the pages of the layers read. Every fault is a message naming the file and the entry; nothing is read
// outside the file. Plain C++17 and POSIX: no GPU header (tests/host/test_checkpoint_reader.cpp runs it under
// AddressSanitizer on a corpus of broken files and random mutations).
//
// Format: 8 bytes little-endian header size H, H bytes of JSON {name: {"dtype", "shape", "data_offsets": [b, e]},
// "__metadata__": {...}}, then the data; offsets are relative to the start of the data.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace checkpoint {

/// One tensor as the header describes it (offsets relative to the start of the data).
struct TensorInfo {
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::uint64_t bytes() const { return end - begin; }
};

/// Bytes per element of a safetensors dtype; 0 for a dtype this reader does not know.
inline std::size_t dtype_bytes(const std::string& dtype) {
  static const std::map<std::string, std::size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I64", 8}, {"I32", 4},
      {"I16", 2}, {"I8", 1},  {"U64", 8}, {"U32", 4},  {"U16", 2},     {"U8", 1},      {"BOOL", 1}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

/// A read-only mapping of one tensor's bytes; unmapped when destroyed.
class MappedTensor {
 public:
  MappedTensor() = default;
  MappedTensor(const MappedTensor&) = delete;
  MappedTensor& operator=(const MappedTensor&) = delete;
  MappedTensor(MappedTensor&& other) noexcept { *this = std::move(other); }
  MappedTensor& operator=(MappedTensor&& other) noexcept {
    std::swap(map_, other.map_);
    std::swap(map_bytes_, other.map_bytes_);
    std::swap(data_, other.data_);
    std::swap(bytes_, other.bytes_);
    return *this;
  }
  ~MappedTensor() {
    if (map_ != nullptr) munmap(map_, map_bytes_);
  }
  const char* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  friend class SafetensorsFile;
  void* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  const char* data_ = nullptr;
  std::size_t bytes_ = 0;
};

class SafetensorsFile {
 public:
  /// Headers above this size are refused (real ones are kilobytes to a few megabytes).
  static constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;

  SafetensorsFile() = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  /// Opens `path` and checks its whole header. False, with `error` naming the file and the entry, on any fault.
  bool open(const std::string& path, std::string& error) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return fail(error, "cannot open the file");
    struct stat st {};
    if (fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) return fail(error, "not a regular file");
    file_size_ = static_cast<std::uint64_t>(st.st_size);
    unsigned char size_bytes[8];
    if (file_size_ < 8 || !read_at(0, size_bytes, 8))
      return fail(error, "truncated: " + std::to_string(file_size_) + " bytes, the 8-byte header size is missing");
    std::uint64_t header_bytes = 0;
    for (int b = 7; b >= 0; --b) header_bytes = header_bytes << 8 | size_bytes[b];
    if (header_bytes > kMaxHeaderBytes)
      return fail(error, "header size " + std::to_string(header_bytes) + " is implausible (more than 100 MiB)");
    if (header_bytes > file_size_ - 8)
      return fail(error, "truncated: the header says " + std::to_string(header_bytes) + " bytes, the file has " +
                             std::to_string(file_size_ - 8) + " after the size");
    std::string text(static_cast<std::size_t>(header_bytes), '\0');
    if (header_bytes > 0 && !read_at(8, &text[0], text.size())) return fail(error, "cannot read the header");
    data_start_ = 8 + header_bytes;
    const std::uint64_t data_bytes = file_size_ - data_start_;

    const nlohmann::json root = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (root.is_discarded()) return fail(error, "the header is not valid JSON");
    if (!root.is_object()) return fail(error, "the header is not a JSON object");
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (const auto& [name, entry] : root.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object()) return fail(error, "__metadata__ is not an object");
        continue;
      }
      TensorInfo t;
      const std::string where = "tensor '" + name + "': ";
      if (!entry.is_object()) return fail(error, where + "not an object");
      const auto dtype = entry.find("dtype");
      const auto shape = entry.find("shape");
      const auto offsets = entry.find("data_offsets");
      if (dtype == entry.end() || !dtype->is_string()) return fail(error, where + "no dtype string");
      t.dtype = dtype->get<std::string>();
      const std::size_t element = dtype_bytes(t.dtype);
      if (element == 0) return fail(error, where + "unknown dtype " + t.dtype);
      if (shape == entry.end() || !shape->is_array()) return fail(error, where + "no shape array");
      std::uint64_t elements = 1;
      for (const auto& d : *shape) {
        if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<std::int64_t>() >= 0))
          return fail(error, where + "shape entries must be non-negative integers");
        const std::uint64_t extent = d.get<std::uint64_t>();
        if (extent != 0 && elements > std::numeric_limits<std::uint64_t>::max() / element / extent)
          return fail(error, where + "shape too large (its byte count overflows)");
        elements *= extent;
        t.shape.push_back(static_cast<std::int64_t>(extent));
      }
      if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
          !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
        return fail(error, where + "data_offsets must be two non-negative integers");
      t.begin = (*offsets)[0].get<std::uint64_t>();
      t.end = (*offsets)[1].get<std::uint64_t>();
      if (t.begin > t.end) return fail(error, where + "data_offsets begin after they end");
      if (t.end > data_bytes)
        return fail(error, where + "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                               ") reach past the data (" + std::to_string(data_bytes) + " bytes)");
      if (t.bytes() != elements * element)
        return fail(error, where + std::to_string(t.bytes()) + " bytes for a shape of " + std::to_string(elements) +
                               " " + t.dtype + " elements");
      if (t.bytes() > 0) ranges.emplace_back(t.begin, t.end);
      tensors_.emplace(name, std::move(t));
    }
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i)
      if (ranges[i].first < ranges[i - 1].second)
        return fail(error, "two tensors overlap at data offset " + std::to_string(ranges[i].first));
    return true;
  }

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }

  /// The tensor called `name`, or null.
  const TensorInfo* find(const std::string& name) const {
    const auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
  }

  /// Maps the bytes of tensor `name` (checked by open()).
  bool map(const std::string& name, MappedTensor& out, std::string& error) const {
    const TensorInfo* t = find(name);
    if (t == nullptr) return fail_const(error, "no tensor '" + name + "'");
    out = MappedTensor();
    if (t->bytes() == 0) return true;
    const std::uint64_t page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
    const std::uint64_t offset = data_start_ + t->begin;
    const std::uint64_t aligned = offset / page * page;
    const std::size_t length = static_cast<std::size_t>(offset - aligned + t->bytes());
    void* p = mmap(nullptr, length, PROT_READ, MAP_PRIVATE, fd_, static_cast<off_t>(aligned));
    if (p == MAP_FAILED) return fail_const(error, "tensor '" + name + "': cannot map its bytes");
    out.map_ = p;
    out.map_bytes_ = length;
    out.data_ = static_cast<const char*>(p) + (offset - aligned);
    out.bytes_ = static_cast<std::size_t>(t->bytes());
    return true;
  }

 private:
  bool read_at(std::uint64_t offset, void* dst, std::size_t bytes) const {
    char* p = static_cast<char*>(dst);
    while (bytes > 0) {
      const ssize_t got = pread(fd_, p, bytes, static_cast<off_t>(offset));
      if (got <= 0) return false;
      p += got;
      offset += static_cast<std::uint64_t>(got);
      bytes -= static_cast<std::size_t>(got);
    }
    return true;
  }
  bool fail(std::string& error, const std::string& what) {
    tensors_.clear();
    return fail_const(error, what);
  }
  bool fail_const(std::string& error, const std::string& what) const {
    error = path_ + ": " + what;
    return false;
  }

  std::string path_;
  int fd_ = -1;
  std::uint64_t file_size_ = 0;
  std::uint64_t data_start_ = 0;
  std::map<std::string, TensorInfo> tensors_;
};

/// A tensor to write: its bytes, dtype and shape.
struct TensorData {
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::vector<char> bytes;
};

/// Writes `tensors` as a safetensors file (header padded to 8 bytes, data in name order). False if the file cannot
/// be written.
inline bool write_safetensors(const std::string& path, const std::map<std::string, TensorData>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h += ' ';
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::string out(8, '\0');
  for (int b = 0; b < 8; ++b) out[b] = static_cast<char>((static_cast<std::uint64_t>(h.size()) >> (8 * b)) & 0xFF);
  out += h;
  for (const auto& [name, t] : tensors) out.append(t.bytes.data(), t.bytes.size());
  const bool ok = ::write(fd, out.data(), out.size()) == static_cast<ssize_t>(out.size());
  return ::close(fd) == 0 && ok;
}

}  // namespace checkpoint
