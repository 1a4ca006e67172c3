// The weight quantization a safetensors checkpoint declares in config.json's `quantization_config`
// and the part of it the forward pass computes with: block-scaled FP8 as DeepSeek-V3, Kimi K2,
// GLM-4.5-FP8 and MiniMax-M2 ship it ({"quant_method": "fp8", "weight_block_size": [128, 128]}):
// each quantized Linear weight is F8_E4M3 [out, in] beside `<name>_scale_inv`, F32
// [ceil(out / 128), ceil(in / 128)], and weight = e4m3 value x the scale of its block
// (transformers' integrations/finegrained_fp8.py, DeepSeek's inference/kernel.py weight_dequant).
// Which tensors are quantized is read from their dtypes, not from `modules_to_not_convert`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace moeslice {

// The block shape of an FP8 checkpoint's scales: one scale per block_rows x block_cols weights.
struct Fp8BlockScaling {
  int64_t block_rows = 128;
  int64_t block_cols = 128;
};

// The companion that holds a weight's block scales: "x.weight" -> "x.weight_scale_inv".
inline constexpr std::string_view kScaleInvSuffix = "_scale_inv";
std::string scale_inv_name(std::string_view weight_name);

// The block shape of a config whose quantization_config is quant_method "fp8" with a
// weight_block_size of two positive integers; nullopt otherwise. Never throws.
std::optional<Fp8BlockScaling> fp8_block_scaling(const nlohmann::json& config);

// Why the forward pass cannot compute a config's quantization_config ("'quantization_config.
// quant_method' is \"awq\"; ..."), or nullopt when it has none (or null) or one it computes:
// block-scaled "fp8", and gpt-oss's "mxfp4" (whose expert tensors say how they are stored).
std::optional<std::string> quantization_refusal(const nlohmann::json& config);

// The quantization_config written for block-scaled FP8 weights (make-random --dtype fp8), as
// DeepSeek-V3's config.json has it.
nlohmann::json fp8_quantization_config(const Fp8BlockScaling& blocks);

}  // namespace moeslice
