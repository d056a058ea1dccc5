#pragma once
// quantize_config.json of a GPTQ checkpoint (AutoGPTQ / GPTQModel / optimum), parsed with nlohmann::json: the fields
// a kernel needs, each checked, with a message naming the field. Plain C++17.

#include <string>

#include <nlohmann/json.hpp>

namespace checkpoint {

struct QuantizeConfig {
  int bits = 0;
  int group_size = 0;  ///< -1: one group over all of K
  bool desc_act = false;
  bool sym = true;
  std::string checkpoint_format = "gptq";  ///< "gptq" (v1 zero points) or "gptq_v2"
};

/// Parses the text of quantize_config.json. False, with `error` naming the field, when a field is missing, of the
/// wrong type or out of range.
inline bool parse_quantize_config(const std::string& text, QuantizeConfig& out, std::string& error) {
  const nlohmann::json root = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return error = "quantize_config.json: not valid JSON", false;
  if (!root.is_object()) return error = "quantize_config.json: not a JSON object", false;
  QuantizeConfig c;
  const auto integer = [&](const char* key, int& value) {
    const auto it = root.find(key);
    if (it == root.end()) return error = std::string("quantize_config.json: no ") + key, false;
    if (!it->is_number_integer() || it->get<std::int64_t>() < -1 || it->get<std::int64_t>() > (1 << 30))
      return error = std::string("quantize_config.json: ") + key + " must be an integer", false;
    value = it->get<int>();
    return true;
  };
  const auto boolean = [&](const char* key, bool& value) {
    const auto it = root.find(key);
    if (it == root.end() || it->is_null()) return true;  // optional: the default stands
    if (!it->is_boolean()) return error = std::string("quantize_config.json: ") + key + " must be true or false", false;
    value = it->get<bool>();
    return true;
  };
  if (!integer("bits", c.bits) || !integer("group_size", c.group_size)) return false;
  if (c.bits < 1 || c.bits > 8) return error = "quantize_config.json: bits must be 1 .. 8", false;
  if (c.group_size == 0 || c.group_size < -1)
    return error = "quantize_config.json: group_size must be -1 or a positive number of rows", false;
  if (!boolean("desc_act", c.desc_act) || !boolean("sym", c.sym)) return false;
  if (const auto it = root.find("quant_method"); it != root.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "gptq")
      return error = "quantize_config.json: quant_method must be \"gptq\"", false;
  }
  if (const auto it = root.find("checkpoint_format"); it != root.end() && !it->is_null()) {
    if (!it->is_string()) return error = "quantize_config.json: checkpoint_format must be a string", false;
    c.checkpoint_format = it->get<std::string>();
    if (c.checkpoint_format != "gptq" && c.checkpoint_format != "gptq_v2")
      return error = "quantize_config.json: checkpoint_format must be \"gptq\" or \"gptq_v2\" (got \"" +
                     c.checkpoint_format + "\")",
             false;
  }
  out = c;
  return true;
}

}  // namespace checkpoint
