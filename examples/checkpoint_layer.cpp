// One layer of a GPTQ checkpoint, read as saved and run: safetensors tensors `<prefix>.qweight` (I32 [K/8, N]),
// `<prefix>.qzeros` (I32 [G, N/8]), `<prefix>.scales` (F16 [G, N]), `<prefix>.g_idx` (I32 [K]) and the model's
// quantize_config.json (bits, group_size, desc_act, sym, checkpoint_format).
//
//   checkpoint_layer                       writes a desc_act=True, v1 ("gptq") checkpoint of one random layer to
//                                          ./checkpoint_example/, then reads it back and runs it
//   checkpoint_layer DIR [--prefix P] [--file F] [--m M]
//                                          runs layer P (default model.layers.0.mlp.down_proj) of the checkpoint in
//                                          DIR (F, default model.safetensors, + quantize_config.json), e.g. a real GPTQ
//                                          model, with M rows of random activations (default 4)
//
// The safetensors reader (checkpoint/safetensors.hpp) checks the whole header against the file and maps only the
// four tensors of the layer; quantize_config.json is read with nlohmann::json (checkpoint/quantize_config.hpp), the
// command line with CLI11.
// The layer goes through what an engine does at load time (host g_idx check, upload, prepare_act_order for act-order
// layers, one QuantizedWeights checked once) and is then run with random activations, through a GemmProblem that
// refers to it, and compared with the fp64 reference of the tensors read.
// Exit status: 0 match, 1 mismatch or bad checkpoint, 77 no GPU.

#include <opt4gptq/opt4gptq.hpp>
#include <opt4gptq/reference/gptq_reference.hpp>

#include <CLI/CLI.hpp>

#include "checkpoint/quantize_config.hpp"
#include "checkpoint/safetensors.hpp"

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

template <class T>
checkpoint::TensorData make_tensor(const char* dtype, std::vector<std::int64_t> shape, const std::vector<T>& values) {
  checkpoint::TensorData t{dtype, std::move(shape), std::vector<char>(values.size() * sizeof(T))};
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

template <class T>
std::vector<T> values_of(const checkpoint::MappedTensor& t) {
  std::vector<T> v(t.bytes() / sizeof(T));
  std::memcpy(v.data(), t.data(), v.size() * sizeof(T));
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
  std::map<std::string, checkpoint::TensorData> tensors;
  tensors[prefix + ".qweight"] = make_tensor("I32", {k / 8, n}, written.qweight);
  tensors[prefix + ".qzeros"] = make_tensor("I32", {written.num_groups, n / 8}, written.qzeros);
  tensors[prefix + ".scales"] = make_tensor("F16", {written.num_groups, n}, written.scales);
  tensors[prefix + ".g_idx"] = make_tensor("I32", {k}, written.g_idx);
  if (!checkpoint::write_safetensors(dir + "/model.safetensors", tensors)) {
    std::fprintf(stderr, "checkpoint_layer: cannot write %s/model.safetensors\n", dir.c_str());
    std::exit(1);
  }
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
  CLI::App app{"Runs one layer of a GPTQ checkpoint (safetensors + quantize_config.json) against the fp64 reference"};
  std::string dir, file = "model.safetensors", prefix = "model.layers.0.mlp.down_proj";
  int m = 4;
  app.add_option("dir", dir, "checkpoint folder (default: write an example checkpoint and read it back)");
  app.add_option("--prefix", prefix, "tensor name prefix of the layer")->capture_default_str();
  app.add_option("--file", file, "safetensors file in the folder")->capture_default_str();
  app.add_option("--m", m, "rows of random activations")->capture_default_str()->check(CLI::Range(1, 4096));
  CLI11_PARSE(app, argc, argv);
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
    file = "model.safetensors";
    write_example(dir, prefix, written);
  }

  // ---- load time: read, check, upload, prepare, describe ----------------------------------------------------------
  std::string error;
  std::ifstream config_file(dir + "/quantize_config.json");
  if (!config_file) return fail("no quantize_config.json in " + dir);
  std::stringstream config_text;
  config_text << config_file.rdbuf();
  checkpoint::QuantizeConfig config;
  if (!checkpoint::parse_quantize_config(config_text.str(), config, error)) return fail(error);
  if (config.bits != 4)
    return fail("quantize_config.json: bits is " + std::to_string(config.bits) + "; this kernel reads 4");
  checkpoint::SafetensorsFile st;
  if (!st.open(dir + "/" + file, error)) return fail(error);
  const auto find = [&](const char* suffix, const char* dtype, std::size_t dims) -> const checkpoint::TensorInfo* {
    const checkpoint::TensorInfo* t = st.find(prefix + suffix);
    if (t == nullptr || t->dtype != dtype || t->shape.size() != dims) return nullptr;
    return t;
  };
  const checkpoint::TensorInfo* qweight = find(".qweight", "I32", 2);
  const checkpoint::TensorInfo* qzeros = find(".qzeros", "I32", 2);
  const checkpoint::TensorInfo* scales = find(".scales", "F16", 2);
  const checkpoint::TensorInfo* g_idx = find(".g_idx", "I32", 1);
  if (!qweight || !qzeros || !scales) return fail("missing or mistyped tensors for " + prefix);
  if (scales->shape[1] != qweight->shape[1] || qzeros->shape[0] != scales->shape[0] ||
      qzeros->shape[1] * 8 != qweight->shape[1] || (g_idx && g_idx->shape[0] != qweight->shape[0] * 8) ||
      qweight->shape[0] * 8 > (1 << 30) || qweight->shape[1] > (1 << 30))
    return fail("tensor shapes do not fit together (qweight [K/8, N], qzeros [G, N/8], scales [G, N], g_idx [K])");
  // Only the layer's tensors are mapped (a shard holds many layers).
  checkpoint::MappedTensor qweight_bytes, qzeros_bytes, scales_bytes, g_idx_bytes;
  if (!st.map(prefix + ".qweight", qweight_bytes, error) || !st.map(prefix + ".qzeros", qzeros_bytes, error) ||
      !st.map(prefix + ".scales", scales_bytes, error) || (g_idx && !st.map(prefix + ".g_idx", g_idx_bytes, error)))
    return fail(error);
  const std::string fmt = config.checkpoint_format;

  ref::QuantizedLayer layer;
  layer.k = static_cast<int>(qweight->shape[0] * 8);
  layer.n = static_cast<int>(qweight->shape[1]);
  layer.group_size = config.group_size;
  layer.num_groups = static_cast<int>(scales->shape[0]);
  layer.format = fmt == "gptq" ? opt4gptq::ZeroPointFormat::kGptqV1 : opt4gptq::ZeroPointFormat::kGptqV2;
  layer.qweight = values_of<std::int32_t>(qweight_bytes);
  layer.qzeros = values_of<std::int32_t>(qzeros_bytes);
  layer.scales = values_of<std::uint16_t>(scales_bytes);
  if (g_idx) {
    layer.g_idx = values_of<std::int32_t>(g_idx_bytes);
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
              layer.n, layer.num_groups, layer.group_size, fmt.c_str(), config.desc_act ? "true" : "false",
              act_order ? "yes" : "no");

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
