// Reading config.json's quantization_config.
#include "model/weight_quantization.h"

#include <fmt/core.h>

#include "common/json_parse.h"

namespace moeslice {
namespace {

using nlohmann::json;

const json* quantization_config(const json& config) {
  if (!config.is_object() || !config.contains("quantization_config")) return nullptr;
  const json& value = config["quantization_config"];
  return value.is_null() ? nullptr : &value;
}

bool positive_integer(const json& value) {
  return value.is_number_integer() && value.get<int64_t>() > 0 && value.get<int64_t>() <= INT32_MAX;
}

}  // namespace

std::string scale_inv_name(std::string_view weight_name) {
  return std::string(weight_name) + std::string(kScaleInvSuffix);
}

std::optional<Fp8BlockScaling> fp8_block_scaling(const json& config) {
  if (quantization_refusal(config)) return std::nullopt;
  const json* quantization = quantization_config(config);
  if (quantization == nullptr || quantization->value("quant_method", json()) != "fp8")
    return std::nullopt;  // none, or gpt-oss's mxfp4
  const json& size = quantization->at("weight_block_size");
  return Fp8BlockScaling{size[0].get<int64_t>(), size[1].get<int64_t>()};
}

std::optional<std::string> quantization_refusal(const json& config) {
  const json* quantization = quantization_config(config);
  if (quantization == nullptr) return std::nullopt;
  if (!quantization->is_object())
    return fmt::format("'quantization_config' is {}, not an object", json_excerpt(*quantization));
  const std::string computed =
      "the forward pass computes unquantized weights, block-scaled FP8 (quant_method \"fp8\" "
      "with weight_block_size) and gpt-oss's MXFP4 experts (\"mxfp4\") only";
  // gpt-oss's MXFP4 experts are their own tensors (*_blocks / *_scales), read by their names.
  if (quantization->contains("quant_method") && (*quantization)["quant_method"] == "mxfp4")
    return std::nullopt;
  if (!quantization->contains("quant_method") || (*quantization)["quant_method"] != "fp8")
    return fmt::format("'quantization_config.quant_method' is {}; {}",
                       quantization->contains("quant_method")
                           ? json_excerpt((*quantization)["quant_method"])
                           : std::string("missing"),
                       computed);
  if (quantization->contains("fmt") && (*quantization)["fmt"] != "e4m3")
    return fmt::format("'quantization_config.fmt' is {}; FP8 weights are computed as E4M3 only",
                       json_excerpt((*quantization)["fmt"]));
  const json* size =
      quantization->contains("weight_block_size") ? &(*quantization)["weight_block_size"] : nullptr;
  if (size == nullptr || !size->is_array() || size->size() != 2 || !positive_integer((*size)[0]) ||
      !positive_integer((*size)[1]))
    return fmt::format(
        "'quantization_config.weight_block_size' is {}; FP8 weights are computed with block "
        "scales only, given as two positive integers (e.g. [128, 128])",
        size == nullptr ? std::string("missing") : json_excerpt(*size));
  return std::nullopt;
}

json fp8_quantization_config(const Fp8BlockScaling& blocks) {
  return {{"activation_scheme", "dynamic"},
          {"fmt", "e4m3"},
          {"quant_method", "fp8"},
          {"weight_block_size", {blocks.block_rows, blocks.block_cols}}};
}

}  // namespace moeslice
