// The checkpoint loader's readers (examples/checkpoint/): a valid safetensors file reads back exactly, with only the
// tensors asked for mapped; a corpus of broken files (truncated, overlapping offsets, huge sizes, bad JSON, ...) and
// thousands of random mutations of a valid one give a clear error or a consistent file, never a crash or a read
// outside the file. Built with AddressSanitizer and UBSan (tests/CMakeLists.txt), so an out-of-bounds read fails the
// test. quantize_config.json: real configs parse, every broken field is named.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "../../examples/checkpoint/quantize_config.hpp"
#include "../../examples/checkpoint/safetensors.hpp"

namespace {

/// A scratch folder, removed at the end.
struct TempDir {
  std::string path;
  TempDir() {
    char name[] = "/tmp/opt4gptq_checkpoint_XXXXXX";
    const char* made = mkdtemp(name);
    REQUIRE(made != nullptr);
    path = made;
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <class T>
checkpoint::TensorData tensor(const char* dtype, std::vector<std::int64_t> shape, const std::vector<T>& values) {
  checkpoint::TensorData t{dtype, std::move(shape), std::vector<char>(values.size() * sizeof(T))};
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

/// A small layer: qweight I32 [4, 16], scales F16 [2, 16], g_idx I32 [32].
std::map<std::string, checkpoint::TensorData> small_layer() {
  std::vector<std::int32_t> qweight(4 * 16), g_idx(32);
  std::vector<std::uint16_t> scales(2 * 16);
  for (std::size_t i = 0; i < qweight.size(); ++i) qweight[i] = static_cast<std::int32_t>(0x9E3779B9u * (i + 1));
  for (std::size_t i = 0; i < scales.size(); ++i) scales[i] = static_cast<std::uint16_t>(0x1400 + i);
  for (std::size_t i = 0; i < g_idx.size(); ++i) g_idx[i] = static_cast<std::int32_t>(i / 16);
  return {{"layer.qweight", tensor("I32", {4, 16}, qweight)},
          {"layer.scales", tensor("F16", {2, 16}, scales)},
          {"layer.g_idx", tensor("I32", {32}, g_idx)}};
}

/// The file's header as text, and the bytes after it.
struct Split {
  std::string header, data;
};
Split split(const std::string& file) {
  std::uint64_t size = 0;
  for (int b = 7; b >= 0; --b) size = size << 8 | static_cast<unsigned char>(file[b]);
  return Split{file.substr(8, size), file.substr(8 + size)};
}
std::string join(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int b = 0; b < 8; ++b) out[b] = static_cast<char>((static_cast<std::uint64_t>(header.size()) >> (8 * b)) & 0xFF);
  return out + header + data;
}

/// Opens `bytes` written to a file; returns the error ("" when it opened).
std::string open_error(const TempDir& dir, const std::string& bytes) {
  const std::string path = dir.file("case.safetensors");
  write_all(path, bytes);
  checkpoint::SafetensorsFile f;
  std::string error;
  return f.open(path, error) ? std::string() : error;
}

}  // namespace

TEST_CASE("safetensors: a written file reads back exactly, tensor by tensor", "[host][checkpoint]") {
  TempDir dir;
  const auto tensors = small_layer();
  const std::string path = dir.file("model.safetensors");
  REQUIRE(checkpoint::write_safetensors(path, tensors));
  checkpoint::SafetensorsFile f;
  std::string error;
  REQUIRE(f.open(path, error));
  CHECK(f.tensors().size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO(name);
    const checkpoint::TensorInfo* info = f.find(name);
    REQUIRE(info != nullptr);
    CHECK(info->dtype == t.dtype);
    CHECK(info->shape == t.shape);
    checkpoint::MappedTensor mapped;
    REQUIRE(f.map(name, mapped, error));
    REQUIRE(mapped.bytes() == t.bytes.size());
    CHECK(std::memcmp(mapped.data(), t.bytes.data(), t.bytes.size()) == 0);
  }
  checkpoint::MappedTensor none;
  CHECK_FALSE(f.map("layer.qzeros", none, error));
  CHECK(error.find("no tensor 'layer.qzeros'") != std::string::npos);
}

TEST_CASE("safetensors: broken files give a clear error naming the fault", "[host][checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("valid.safetensors");
  REQUIRE(checkpoint::write_safetensors(path, small_layer()));
  const std::string valid = read_all(path);
  const Split parts = split(valid);
  auto with_header = [&](const std::string& header) { return join(header, parts.data); };
  const std::string entry =
      R"("layer.qweight":{"dtype":"I32","shape":[4,16],"data_offsets":[0,256]})";  // as written: name order

  struct Case {
    const char* what;
    std::string bytes;
    const char* expected;  // a piece of the message
  };
  std::vector<Case> cases = {
      {"empty file", "", "truncated: 0 bytes"},
      {"size cut", valid.substr(0, 5), "the 8-byte header size is missing"},
      {"header cut", valid.substr(0, 8 + parts.header.size() / 2), "truncated: the header says"},
      {"data cut", valid.substr(0, valid.size() - 7), "reach past the data"},
      {"huge header size",
       join(std::string(16, ' '), "").replace(0, 8, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8)), "implausible"},
      {"bad JSON", with_header("{\"layer.qweight\": {\"dtype\": "), "not valid JSON"},
      {"not an object", with_header("[1, 2, 3]"), "not a JSON object"},
      {"entry not an object", with_header(R"({"t": 3})"), "tensor 't': not an object"},
      {"no dtype", with_header(R"({"t":{"shape":[1],"data_offsets":[0,4]}})"), "no dtype string"},
      {"unknown dtype", with_header(R"({"t":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})"), "unknown dtype Q4"},
      {"negative shape", with_header(R"({"t":{"dtype":"I32","shape":[-1],"data_offsets":[0,4]}})"),
       "non-negative integers"},
      {"fractional shape", with_header(R"({"t":{"dtype":"I32","shape":[1.5],"data_offsets":[0,4]}})"),
       "non-negative integers"},
      {"shape overflow", with_header(R"({"t":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})"),
       "overflows"},
      {"offsets missing", with_header(R"({"t":{"dtype":"I32","shape":[1]}})"), "data_offsets must be"},
      {"negative offset", with_header(R"({"t":{"dtype":"I32","shape":[1],"data_offsets":[-4,0]}})"),
       "data_offsets must be"},
      {"offsets reversed", with_header(R"({"t":{"dtype":"I32","shape":[0],"data_offsets":[8,4]}})"),
       "begin after they end"},
      {"huge offsets",
       with_header(R"({"t":{"dtype":"U8","shape":[16],"data_offsets":[18446744073709551600,18446744073709551615]}})"),
       "reach past the data"},
      {"bytes do not match shape", with_header(R"({"t":{"dtype":"I32","shape":[2],"data_offsets":[0,4]}})"),
       "4 bytes for a shape of 2 I32 elements"},
      {"overlapping tensors",
       with_header(
           R"({"a":{"dtype":"I32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"I32","shape":[4],"data_offsets":[8,24]}})"),
       "overlap at data offset 8"},
      {"metadata not an object", with_header(R"({"__metadata__":5,)" + entry + "}"), "__metadata__ is not an object"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const std::string error = open_error(dir, c.bytes);
    CHECK(error.find(c.expected) != std::string::npos);
    CHECK(error.find(dir.file("case.safetensors")) == 0);  // names the file
  }
  // The control: the valid file and a valid file with a zero-size tensor open.
  CHECK(open_error(dir, valid).empty());
  CHECK(open_error(dir, with_header(R"({"e":{"dtype":"F16","shape":[0,3],"data_offsets":[0,0]}})")).empty());
}

TEST_CASE("safetensors: random mutations never crash and never read outside the file", "[host][checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("valid.safetensors");
  REQUIRE(checkpoint::write_safetensors(path, small_layer()));
  const std::string valid = read_all(path);
  const std::size_t header_end = 8 + split(valid).header.size();
  std::mt19937 rng(2026);
  int opened = 0, refused = 0;
  for (int iteration = 0; iteration < 3000; ++iteration) {
    std::string bytes = valid;
    const int kind = iteration % 4;
    if (kind == 0) {  // flip bytes of the header (JSON structure, numbers, names)
      for (int i = 0; i < 1 + static_cast<int>(rng() % 4); ++i)
        bytes[8 + rng() % (header_end - 8)] = static_cast<char>(rng());
    } else if (kind == 1) {  // flip bytes of the size field
      bytes[rng() % 8] = static_cast<char>(rng());
    } else if (kind == 2) {  // truncate anywhere
      bytes.resize(rng() % bytes.size());
    } else {  // replace a digit of the header by another
      for (int tries = 0; tries < 64; ++tries) {
        const std::size_t at = 8 + rng() % (header_end - 8);
        if (bytes[at] >= '0' && bytes[at] <= '9') {
          bytes[at] = static_cast<char>('0' + rng() % 10);
          break;
        }
      }
    }
    write_all(dir.file("m.safetensors"), bytes);
    checkpoint::SafetensorsFile f;
    std::string error;
    if (!f.open(dir.file("m.safetensors"), error)) {
      ++refused;
      CHECK_FALSE(error.empty());
      continue;
    }
    ++opened;
    // Whatever opened is consistent: every tensor maps and its bytes lie inside the file (ASan checks the reads).
    for (const auto& [name, info] : f.tensors()) {
      checkpoint::MappedTensor m;
      REQUIRE(f.map(name, m, error));
      REQUIRE(m.bytes() == info.bytes());
      std::uint64_t sum = 0;
      for (std::size_t i = 0; i < m.bytes(); ++i) sum += static_cast<unsigned char>(m.data()[i]);
      (void)sum;
    }
  }
  INFO(opened << " mutations opened, " << refused << " refused");
  CHECK(opened > 0);
  CHECK(refused > 0);
}

TEST_CASE("quantize_config.json: real configs parse, broken fields are named", "[host][checkpoint]") {
  checkpoint::QuantizeConfig c;
  std::string error;
  // AutoGPTQ's file as saved (desc_act, v1 "gptq" format).
  REQUIRE(checkpoint::parse_quantize_config(R"({"bits": 4, "group_size": 128, "damp_percent": 0.01,
      "desc_act": true, "static_groups": false, "sym": true, "true_sequential": true, "model_name_or_path": null,
      "model_file_base_name": "model", "quant_method": "gptq", "checkpoint_format": "gptq"})",
                                            c, error));
  CHECK(c.bits == 4);
  CHECK(c.group_size == 128);
  CHECK(c.desc_act);
  CHECK(c.sym);
  CHECK(c.checkpoint_format == "gptq");
  REQUIRE(checkpoint::parse_quantize_config(R"({"bits": 4, "group_size": -1, "checkpoint_format": "gptq_v2",
      "sym": false})",
                                            c, error));
  CHECK(c.group_size == -1);
  CHECK_FALSE(c.desc_act);
  CHECK_FALSE(c.sym);
  CHECK(c.checkpoint_format == "gptq_v2");

  const std::pair<const char*, const char*> broken[] = {
      {"{\"bits\": 4", "not valid JSON"},
      {"[4]", "not a JSON object"},
      {R"({"group_size": 128})", "no bits"},
      {R"({"bits": "4", "group_size": 128})", "bits must be an integer"},
      {R"({"bits": 4.5, "group_size": 128})", "bits must be an integer"},
      {R"({"bits": 16, "group_size": 128})", "bits must be 1 .. 8"},
      {R"({"bits": 4})", "no group_size"},
      {R"({"bits": 4, "group_size": 0})", "group_size must be -1 or a positive"},
      {R"({"bits": 4, "group_size": 128, "desc_act": "yes"})", "desc_act must be true or false"},
      {R"({"bits": 4, "group_size": 128, "sym": 1})", "sym must be true or false"},
      {R"({"bits": 4, "group_size": 128, "quant_method": "awq"})", "quant_method must be \"gptq\""},
      {R"({"bits": 4, "group_size": 128, "checkpoint_format": "marlin"})", "checkpoint_format must be"},
  };
  for (const auto& [text, expected] : broken) {
    INFO(text);
    CHECK_FALSE(checkpoint::parse_quantize_config(text, c, error));
    CHECK(error.find(expected) != std::string::npos);
  }
}
