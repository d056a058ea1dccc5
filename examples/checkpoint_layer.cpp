// One layer of a GPTQ checkpoint, read as saved and run: safetensors tensors `<prefix>.qweight` (I32 [K/8, N]),
// `<prefix>.qzeros` (I32 [G, N/8]), `<prefix>.scales` (F16 [G, N]), `<prefix>.g_idx` (I32 [K]) and the model's
// quantize_config.json (bits, group_size, desc_act, sym, checkpoint_format).
//
//   checkpoint_layer                       writes a desc_act=True, v1 ("gptq") checkpoint of one random layer to
//                                          ./checkpoint_example/, then reads it back and runs it
//   checkpoint_layer DIR [--prefix P]      runs layer P (default model.layers.0.mlp.down_proj) of the checkpoint in
//                                          DIR (model.safetensors + quantize_config.json), e.g. a real GPTQ model
//
// The layer goes through what an engine does at load time (host g_idx check, upload, prepare_act_order for act-order
// layers, one QuantizedWeights checked once) and is then run with random activations, through a GemmProblem that
// refers to it, and compared with the fp64 reference of the tensors read.
// Exit status: 0 match, 1 mismatch or bad checkpoint, 77 no GPU.

#include <opt4gptq/opt4gptq.hpp>
#include <opt4gptq/reference/gptq_reference.hpp>

#include <sys/stat.h>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace ref = opt4gptq::reference;
namespace platform = opt4gptq::platform;

namespace {

// ---- a minimal JSON reader (objects, arrays, strings, numbers, literals): enough for safetensors headers and
//      quantize_config.json ------------------------------------------------------------------------------------------
struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;
  const Json* get(const std::string& key) const {
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &it->second;
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}
  bool parse(Json& out) {
    if (!value(out)) return false;
    skip();
    return i_ == s_.size();
  }

 private:
  void skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool value(Json& v) {
    skip();
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '{') {
      v.kind = Json::kObject;
      ++i_;
      skip();
      if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
      while (true) {
        Json key;
        skip();
        if (!string(key)) return false;
        skip();
        if (i_ >= s_.size() || s_[i_++] != ':') return false;
        if (!value(v.object[key.string])) return false;
        skip();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        return i_ < s_.size() && s_[i_++] == '}';
      }
    }
    if (c == '[') {
      v.kind = Json::kArray;
      ++i_;
      skip();
      if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
      while (true) {
        v.array.emplace_back();
        if (!value(v.array.back())) return false;
        skip();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        return i_ < s_.size() && s_[i_++] == ']';
      }
    }
    if (c == '"') return string(v);
    for (const char* lit : {"true", "false", "null"})
      if (s_.compare(i_, std::strlen(lit), lit) == 0) {
        v.kind = lit[0] == 'n' ? Json::kNull : Json::kBool;
        v.boolean = lit[0] == 't';
        i_ += std::strlen(lit);
        return true;
      }
    char* end = nullptr;
    v.number = std::strtod(s_.c_str() + i_, &end);
    if (end == s_.c_str() + i_) return false;
    v.kind = Json::kNumber;
    i_ = static_cast<std::size_t>(end - s_.c_str());
    return true;
  }
  bool string(Json& v) {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    v.kind = Json::kString;
    for (++i_; i_ < s_.size(); ++i_) {
      if (s_[i_] == '"') return ++i_, true;
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;  // escapes: keep the escaped character
      v.string += s_[i_];
    }
    return false;
  }
  const std::string& s_;
  std::size_t i_ = 0;
};

// ---- safetensors -----------------------------------------------------------------------------------------------
struct Tensor {
  std::string dtype;
  std::vector<long long> shape;
  std::vector<char> data;
};

bool read_safetensors(const std::string& path, std::map<std::string, Tensor>& tensors, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error = "cannot open " + path, false;
  unsigned char size_bytes[8];
  if (!in.read(reinterpret_cast<char*>(size_bytes), 8)) return error = path + ": truncated", false;
  std::uint64_t header_size = 0;
  for (int b = 7; b >= 0; --b) header_size = header_size << 8 | size_bytes[b];
  if (header_size > (1u << 28)) return error = path + ": implausible header size", false;
  std::string header(header_size, '\0');
  if (!in.read(&header[0], static_cast<std::streamsize>(header_size)))
    return error = path + ": truncated header", false;
  Json root;
  if (!JsonParser(header).parse(root) || root.kind != Json::kObject) return error = path + ": bad JSON header", false;
  const std::streamoff data_start = 8 + static_cast<std::streamoff>(header_size);
  for (const auto& [name, info] : root.object) {
    if (name == "__metadata__") continue;
    const Json* dtype = info.get("dtype");
    const Json* shape = info.get("shape");
    const Json* offsets = info.get("data_offsets");
    if (!dtype || !shape || !offsets || offsets->array.size() != 2) return error = path + ": bad entry " + name, false;
    Tensor t;
    t.dtype = dtype->string;
    for (const Json& d : shape->array) t.shape.push_back(static_cast<long long>(d.number));
    const auto begin = static_cast<std::streamoff>(offsets->array[0].number);
    const auto end = static_cast<std::streamoff>(offsets->array[1].number);
    t.data.resize(static_cast<std::size_t>(end - begin));
    in.seekg(data_start + begin);
    if (!in.read(t.data.data(), end - begin)) return error = path + ": truncated data of " + name, false;
    tensors[name] = std::move(t);
  }
  return true;
}

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors) {
  std::ostringstream header;
  header << "{\"__metadata__\":{\"format\":\"pt\"}";
  std::size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    header << ",\"" << name << "\":{\"dtype\":\"" << t.dtype << "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) header << (i ? "," : "") << t.shape[i];
    header << "],\"data_offsets\":[" << offset << "," << offset + t.data.size() << "]}";
    offset += t.data.size();
  }
  header << "}";
  std::string h = header.str();
  while (h.size() % 8) h += ' ';
  std::ofstream out(path, std::ios::binary);
  std::uint64_t size = h.size();
  for (int b = 0; b < 8; ++b) out.put(static_cast<char>((size >> (8 * b)) & 0xFF));
  out << h;
  for (const auto& [name, t] : tensors) out.write(t.data.data(), static_cast<std::streamsize>(t.data.size()));
}

template <class T>
Tensor make_tensor(const char* dtype, std::vector<long long> shape, const std::vector<T>& values) {
  Tensor t{dtype, std::move(shape), std::vector<char>(values.size() * sizeof(T))};
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

template <class T>
std::vector<T> values_of(const Tensor& t) {
  std::vector<T> v(t.data.size() / sizeof(T));
  std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

template <class T>
T* to_device(const std::vector<T>& host) {
  void* p = nullptr;
  if (platform::device_malloc(&p, std::max<std::size_t>(host.size(), 1) * sizeof(T)) != platform::kNativeSuccess ||
      platform::copy_to_device(p, host.data(), host.size() * sizeof(T)) != platform::kNativeSuccess) {
    std::fprintf(stderr, "device allocation failed\n");
    std::exit(1);
  }
  return static_cast<T*>(p);
}

/// Writes a desc_act=True, v1 checkpoint of one random layer, as AutoGPTQ saves it.
void write_example(const std::string& dir, const std::string& prefix, ref::QuantizedLayer& written) {
  const int k = 2816, n = 1024, group_size = 128;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(static_cast<std::size_t>(k) * n);
  for (float& x : w) x = normal(rng);
  ref::QuantizeOptions options;
  options.group_size = group_size;
  options.symmetric = true;
  options.format = opt4gptq::ZeroPointFormat::kGptqV1;
  options.order.resize(k);
  for (int i = 0; i < k; ++i) options.order[i] = i;
  std::shuffle(options.order.begin(), options.order.end(), rng);  // desc_act: rows quantized in another order
  written = ref::quantize_rtn(w, k, n, options);
  mkdir(dir.c_str(), 0755);
  std::map<std::string, Tensor> tensors;
  tensors[prefix + ".qweight"] = make_tensor("I32", {k / 8, n}, written.qweight);
  tensors[prefix + ".qzeros"] = make_tensor("I32", {written.num_groups, n / 8}, written.qzeros);
  tensors[prefix + ".scales"] = make_tensor("F16", {written.num_groups, n}, written.scales);
  tensors[prefix + ".g_idx"] = make_tensor("I32", {k}, written.g_idx);
  write_safetensors(dir + "/model.safetensors", tensors);
  std::ofstream(dir + "/quantize_config.json")
      << "{\n  \"bits\": 4,\n  \"group_size\": " << group_size
      << ",\n  \"damp_percent\": 0.01,\n  \"desc_act\": true,\n  \"static_groups\": false,\n  \"sym\": true,\n"
         "  \"true_sequential\": true,\n  \"model_name_or_path\": null,\n  \"model_file_base_name\": \"model\",\n"
         "  \"quant_method\": \"gptq\",\n  \"checkpoint_format\": \"gptq\"\n}\n";
  std::printf("wrote %s/model.safetensors (%s: K=%d N=%d, desc_act, v1 zeros) and quantize_config.json\n", dir.c_str(),
              prefix.c_str(), k, n);
}

int fail(const std::string& message) {
  std::fprintf(stderr, "checkpoint_layer: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, prefix = "model.layers.0.mlp.down_proj";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--prefix") == 0 && i + 1 < argc)
      prefix = argv[++i];
    else
      dir = argv[i];
  }
  int devices = 0;
  if (platform::device_count(&devices) != platform::kNativeSuccess || devices == 0) {
    std::printf("No %s GPU is visible on this machine: checkpoint_layer was built but cannot run here.\n",
                platform::kBackendName);
    return 77;
  }
  ref::QuantizedLayer written;
  const bool generated = dir.empty();
  if (generated) {
    dir = "checkpoint_example";
    write_example(dir, prefix, written);
  }

  // ---- load time: read, check, upload, prepare, describe ----------------------------------------------------------
  std::string error;
  std::ifstream config_file(dir + "/quantize_config.json");
  if (!config_file) return fail("no quantize_config.json in " + dir);
  std::stringstream config_text;
  config_text << config_file.rdbuf();
  Json config;
  if (!JsonParser(config_text.str()).parse(config)) return fail("quantize_config.json: not JSON");
  const Json* bits = config.get("bits");
  const Json* group = config.get("group_size");
  const Json* desc_act = config.get("desc_act");
  const Json* format = config.get("checkpoint_format");
  if (!bits || bits->number != 4) return fail("quantize_config.json: bits must be 4");
  if (!group) return fail("quantize_config.json: no group_size");
  // The zero-point convention is explicit: "gptq" (v1) unless the config says "gptq_v2".
  const std::string fmt = format ? format->string : "gptq";
  if (fmt != "gptq" && fmt != "gptq_v2") return fail("quantize_config.json: unknown checkpoint_format " + fmt);
  std::map<std::string, Tensor> tensors;
  if (!read_safetensors(dir + "/model.safetensors", tensors, error)) return fail(error);
  const auto find = [&](const char* suffix, const char* dtype, std::size_t dims) -> const Tensor* {
    const auto it = tensors.find(prefix + suffix);
    if (it == tensors.end() || it->second.dtype != dtype || it->second.shape.size() != dims) return nullptr;
    return &it->second;
  };
  const Tensor* qweight = find(".qweight", "I32", 2);
  const Tensor* qzeros = find(".qzeros", "I32", 2);
  const Tensor* scales = find(".scales", "F16", 2);
  const Tensor* g_idx = find(".g_idx", "I32", 1);
  if (!qweight || !qzeros || !scales) return fail("missing or mistyped tensors for " + prefix);
  if (scales->shape[1] != qweight->shape[1] || qzeros->shape[0] != scales->shape[0] ||
      qzeros->shape[1] * 8 != qweight->shape[1] || (g_idx && g_idx->shape[0] != qweight->shape[0] * 8))
    return fail("tensor shapes do not fit together (qweight [K/8, N], qzeros [G, N/8], scales [G, N], g_idx [K])");

  ref::QuantizedLayer layer;
  layer.k = static_cast<int>(qweight->shape[0] * 8);
  layer.n = static_cast<int>(qweight->shape[1]);
  layer.group_size = static_cast<int>(group->number);
  layer.num_groups = static_cast<int>(scales->shape[0]);
  layer.format = fmt == "gptq" ? opt4gptq::ZeroPointFormat::kGptqV1 : opt4gptq::ZeroPointFormat::kGptqV2;
  layer.qweight = values_of<std::int32_t>(*qweight);
  layer.qzeros = values_of<std::int32_t>(*qzeros);
  layer.scales = values_of<std::uint16_t>(*scales);
  if (g_idx) {
    layer.g_idx = values_of<std::int32_t>(*g_idx);
  } else {
    layer.g_idx.resize(layer.k);
    for (int i = 0; i < layer.k; ++i) layer.g_idx[i] = layer.group_size > 0 ? i / layer.group_size : 0;
  }
  if (generated && (layer.qweight != written.qweight || layer.qzeros != written.qzeros ||
                    layer.scales != written.scales || layer.g_idx != written.g_idx))
    return fail("the tensors read back differ from the ones written");
  const opt4gptq::Status g_ok = opt4gptq::validate_g_idx(layer.g_idx.data(), layer.k, layer.num_groups);
  if (!g_ok.ok()) return fail(g_ok.message);
  const bool act_order = !opt4gptq::is_sequential_g_idx(layer.g_idx.data(), layer.k, layer.group_size);
  std::printf("%s: K=%d N=%d groups=%d group_size=%d %s, desc_act=%s, act-order g_idx: %s\n", prefix.c_str(), layer.k,
              layer.n, layer.num_groups, layer.group_size, fmt.c_str(),
              desc_act && desc_act->boolean ? "true" : "false", act_order ? "yes" : "no");

  opt4gptq::QuantizedWeights weights;
  weights.k = layer.k;
  weights.n = layer.n;
  weights.qzeros = to_device(layer.qzeros);
  weights.scales = reinterpret_cast<const opt4gptq::half*>(to_device(layer.scales));
  weights.group_size = layer.group_size;
  weights.num_groups = layer.num_groups;
  weights.zero_format = layer.format;
  std::int32_t* qweight_device = to_device(layer.qweight);
  opt4gptq::PreparedActOrder prepared;
  if (act_order) {
    std::int32_t* g_idx_device = to_device(layer.g_idx);
    const std::size_t bytes = opt4gptq::act_order_buffer_bytes(layer.k, layer.n, layer.num_groups);
    void* buffer = nullptr;
    if (platform::device_malloc(&buffer, bytes) != platform::kNativeSuccess) return fail("device allocation failed");
    opt4gptq::Status s = opt4gptq::prepare_act_order(qweight_device, 0, g_idx_device, layer.k, layer.n,
                                                     layer.num_groups, buffer, bytes, nullptr, &prepared);
    if (s.ok()) s = opt4gptq::check_act_order(prepared, nullptr);
    if (!s.ok()) return fail(std::string("prepare_act_order: ") + s.message);
    (void)platform::device_free(qweight_device);  // the prepared buffer holds the sorted weights
    (void)platform::device_free(g_idx_device);
    weights.act_order = &prepared;
  } else {
    weights.qweight = qweight_device;
  }
  // The layer is checked once, at load time; each call below only refers to it.
  const opt4gptq::Status checked = opt4gptq::check_weights(weights);
  if (!checked.ok()) return fail(std::string("check_weights: ") + checked.message);

  // ---- run time ---------------------------------------------------------------------------------------------------
  const int m = 4;
  std::mt19937 rng(5);
  std::normal_distribution<float> unit(0.0f, 1.0f);
  std::vector<std::uint16_t> a(static_cast<std::size_t>(m) * layer.k);
  for (auto& x : a) x = ref::float_to_half_bits(unit(rng));
  opt4gptq::GemmProblem p;
  p.m = m;
  p.a = reinterpret_cast<const opt4gptq::half*>(to_device(a));
  std::vector<std::uint16_t> c(static_cast<std::size_t>(m) * layer.n, 0x7E00);
  p.c = reinterpret_cast<opt4gptq::half*>(to_device(c));
  p.weights = &weights;
  const opt4gptq::Status s = opt4gptq::launch<opt4gptq::presets::Opt4Gptq>(p, nullptr);
  if (!s.ok()) return fail(std::string("launch: ") + s.message);
  if (platform::device_synchronize() != platform::kNativeSuccess ||
      platform::copy_to_host(c.data(), p.c, c.size() * 2) != platform::kNativeSuccess)
    return fail("kernel failed");
  const ref::ErrorReport e =
      ref::compare(c.data(), m, layer.n, 0, ref::gemm(m, layer.n, layer.k, a.data(), 0, ref::dequantize(layer)));
  const bool ok = e.non_finite == 0 && e.relative < 5e-3;
  std::printf("Opt4GPTQ, M=%d: relative error %.2e against the fp64 reference of the checkpoint tensors: %s\n", m,
              e.relative, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
