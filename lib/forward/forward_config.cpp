// Forward-pass numbers and refusals, following tests/reference/README.md ("Refusals").
#include "forward/forward_config.h"

#include <algorithm>
#include <string>

#include <fmt/core.h>

#include "common/error.h"

namespace moeslice {
namespace {

using nlohmann::json;

bool present(const json& config, const char* key) {
  return config.contains(key) && !config[key].is_null();
}

// Python truthiness of a JSON value, as the reference's `if c.get(key)` tests it.
bool truthy(const json& value) {
  if (value.is_null()) return false;
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_number()) return value.get<double>() != 0;
  if (value.is_string() || value.is_array() || value.is_object()) return !value.empty();
  return true;
}

[[noreturn]] void refuse(const ModelSpec& spec, const std::string& key, const std::string& why) {
  throw UnsupportedError(fmt::format("{}: '{}' {} (the {} forward pass does not implement it)",
                                     spec.config_path.string(), key, why, spec.family->family));
}

// EMO's per-layer shared-expert counts are accepted only when they repeat the global one (per-layer
// expert counts are part of ModelSpec).
void check_emo_extras(const ModelSpec& spec, const json& config) {
  for (const char* key : {"always_active_experts", "always_active_experts_per_layer"})
    if (present(config, key) && truthy(config[key])) refuse(spec, key, "is set");
  if (present(config, "ghost_extend_eval")) {
    const json& ghost = config["ghost_extend_eval"];
    if (!(ghost == false || ghost == "false")) refuse(spec, "ghost_extend_eval", "is set");
  }
  if (present(config, "dense_mlp_bias") && truthy(config["dense_mlp_bias"]))
    refuse(spec, "dense_mlp_bias", "is set");
  auto uniform = [](const json& list, int64_t expected) {
    if (!list.is_array()) return false;
    for (const auto& entry : list)
      if (!entry.is_number_integer() || entry.get<int64_t>() != expected) return false;
    return true;
  };
  if (present(config, "num_shared_experts_per_layer") &&
      !uniform(config["num_shared_experts_per_layer"], spec.shared_experts))
    refuse(spec, "num_shared_experts_per_layer", "varies between layers");
  if (spec.shared_experts > 0 && spec.flag("norm_topk_prob"))
    refuse(spec, "norm_topk_prob",
           "is true together with shared experts (EMO does not define renormalisation then)");
}

}  // namespace

ForwardConfig resolve_forward_config(const ModelSpec& spec) {
  const FamilyProfile& family = *spec.family;
  if (!family.forward_supported)
    throw UnsupportedError(
        fmt::format("{}: the {} family is not supported by the forward pass (logits, profiling and "
                    "evaluation support emo, flex_olmo, mixtral, olmoe, qwen2_moe and qwen3_moe)",
                    spec.config_path.string(), family.family));
  const json& config = spec.text_config();
  ForwardConfig result;

  if (present(config, "hidden_act") && config["hidden_act"] != "silu")
    refuse(spec, "hidden_act",
           fmt::format("is {}, only \"silu\" is supported", config["hidden_act"].dump()));
  if (present(config, "rope_scaling"))
    refuse(spec, "rope_scaling",
           fmt::format("is {}, only null is supported", config["rope_scaling"].dump()));
  result.rope_theta = spec.number("rope_theta").value_or(10000.0);
  if (present(config, "rope_parameters")) {
    // transformers v5 keeps the RoPE settings in one object.
    const json& rope = config["rope_parameters"];
    if (!rope.is_object()) refuse(spec, "rope_parameters", "is not an object");
    const json type = rope.value("rope_type", json("default"));
    if (type != "default")
      refuse(spec, "rope_parameters.rope_type",
             fmt::format("is {}, only \"default\" is supported", type.dump()));
    if (rope.contains("rope_theta") && rope["rope_theta"].is_number())
      result.rope_theta = rope["rope_theta"].get<double>();
  }
  if (spec.head_dim % 2 != 0)
    refuse(spec, "head_dim",
           fmt::format("is {}; rotate-half RoPE needs an even head size", spec.head_dim));
  if (family.family == "olmoe" && spec.head_dim * spec.heads != spec.hidden)
    // OlmoeAttention sizes its q/k norms by hidden_size, so a different head_dim is not a model
    // transformers can run.
    refuse(spec, "head_dim",
           fmt::format("is {}, olmoe requires hidden_size / "
                       "num_attention_heads = {}",
                       spec.head_dim, spec.hidden / spec.heads));

  result.rms_norm_eps = static_cast<float>(spec.number("rms_norm_eps").value_or(1e-6));
  if (present(config, "clip_qkv")) {
    if (family.family != "olmoe")
      refuse(spec, "clip_qkv",
             fmt::format("is {}; only olmoe applies clip_qkv", config["clip_qkv"].dump()));
    if (!config["clip_qkv"].is_number()) refuse(spec, "clip_qkv", "is not a number");
    result.clip_qkv = config["clip_qkv"].get<float>();
  }
  if (family.family == "mixtral" && present(config, "attention_bias") &&
      truthy(config["attention_bias"]))
    refuse(spec, "attention_bias", "is true; mixtral has no attention biases");
  if (family.family == "emo") check_emo_extras(spec, config);

  if (present(config, "max_position_embeddings") &&
      config["max_position_embeddings"].is_number_integer() &&
      config["max_position_embeddings"].get<int64_t>() > 0)
    result.max_positions = config["max_position_embeddings"].get<int64_t>();

  // Qwen families switch the window on with use_sliding_window; the others apply any non-null
  // sliding_window.
  const bool qwen_style =
      spec.family->flags.end() !=
      std::find_if(spec.family->flags.begin(), spec.family->flags.end(),
                   [](const auto& f) { return f.first == "use_sliding_window"; });
  if (present(config, "sliding_window") && config["sliding_window"].is_number_integer() &&
      (!qwen_style || spec.flag("use_sliding_window")))
    result.sliding_window = config["sliding_window"].get<int64_t>();
  return result;
}

std::string_view compute_mode_name(ComputeMode mode) {
  return mode == ComputeMode::kBf16 ? "bf16" : "fp32";
}

void check_sequence_length(const ModelSpec& spec, const ForwardConfig& config, int64_t length) {
  if (config.sliding_window && *config.sliding_window < length)
    throw UnsupportedError(
        fmt::format("{}: '{}' is {} but a sequence has {} tokens; sliding-window attention is not "
                    "implemented (pass --max-seq {} to cut documents into windows that fit)",
                    spec.config_path.string(), "sliding_window", *config.sliding_window, length,
                    *config.sliding_window));
}

}  // namespace moeslice
