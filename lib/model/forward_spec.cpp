// Forward-pass numbers and refusals, following tests/reference/README.md ("Refusals").
#include "model/forward_spec.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"
#include "model/config_refusal.h"
#include "model/model_spec.h"

namespace moeslice {
namespace {

using nlohmann::json;

bool present(const json& config, const char* key) {
  return config.contains(key) && !config[key].is_null();
}

// The refusals of every family, checked before the family's own (same rule language).
const std::vector<ConfigRefusal>& shared_refusals() {
  static const std::vector<ConfigRefusal> rules = parse_config_refusals(
      parse_json(R"([
        {"key": "hidden_act", "refuse": "not_one_of", "values": ["silu"],
         "why": "is {value}, only \"silu\" is supported"},
        {"key": "rope_scaling", "refuse": "set", "why": "is {value}, only null is supported"},
        {"key": "rope_parameters", "refuse": "not_object", "why": "is not an object"},
        {"key": "rope_parameters.rope_type", "refuse": "not_one_of", "values": ["default"],
         "default": "default", "why": "is {value}, only \"default\" is supported"}
      ])",
                 "the shared forward refusals"),
      [](std::string_view) { return false; }, [](Flag) { return false; });
  return rules;
}

// The shared refusals for a model whose YaRN rope_scaling its family computes: all but the
// rope_scaling one.
const std::vector<ConfigRefusal>& shared_refusals_with_yarn() {
  static const std::vector<ConfigRefusal> rules = [] {
    std::vector<ConfigRefusal> kept;
    for (const ConfigRefusal& rule : shared_refusals())
      if (rule.key != "rope_scaling") kept.push_back(rule);
    return kept;
  }();
  return rules;
}

// "a, b and c"
std::string spoken_list(const std::vector<std::string>& names) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i)
    text += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
  return text;
}

// The families whose profiles say `has`, as a spoken list.
template <typename Predicate>
std::string families_where(Predicate has) {
  std::vector<std::string> names;
  for (const FamilyProfile& family : all_families())
    if (has(family)) names.push_back(family.family);
  return spoken_list(names);
}

[[noreturn]] void refuse(const ModelSpec& spec, const std::string& what) {
  throw UnsupportedError(fmt::format("{}: {} (the {} forward pass does not implement it)",
                                     spec.config_path.string(), what, spec.family->family));
}

// The config key a number is read from, for messages.
std::string number_key(const ModelSpec& spec, Number which, const char* fallback) {
  for (const auto& [number, rule] : spec.family->numbers)
    if (number == which && !rule.key.empty()) return rule.key;
  return fallback;
}

// Values no model computes with: a negative or non-finite norm epsilon, a RoPE base that is not
// a positive finite number (0 makes every inverse frequency infinite), a window of no tokens.
void check_forward_numbers(const ModelSpec& spec) {
  const ForwardSpec& numbers = spec.forward;
  auto invalid = [&spec](const std::string& key, const std::string& value, const char* expected) {
    return ModelError(fmt::format("{}: '{}' is {}, expected {}", spec.config_path.string(), key,
                                  value, expected));
  };
  if (!std::isfinite(numbers.rms_norm_eps) || numbers.rms_norm_eps < 0)
    throw invalid(number_key(spec, Number::kRmsNormEps, "rms_norm_eps"),
                  fmt::format("{}", numbers.rms_norm_eps), "a finite number >= 0");
  if (!std::isfinite(numbers.rope_theta) || numbers.rope_theta <= 0)
    throw invalid("rope_theta", fmt::format("{}", numbers.rope_theta), "a finite number > 0");
  if (numbers.sliding_window && *numbers.sliding_window < 1)
    throw invalid("sliding_window", std::to_string(*numbers.sliding_window),
                  "a window of at least 1 token (or null)");
}

// yarn_get_mscale of the modeling code.
double yarn_mscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

double number_or(const json& object, const char* key, double fallback) {
  return object.contains(key) && object[key].is_number() ? object[key].get<double>() : fallback;
}

// The rope_scaling object when it is a YaRN one ("type" or "rope_type"), else null.
const json* yarn_scaling(const json& config) {
  if (!present(config, "rope_scaling") || !config["rope_scaling"].is_object()) return nullptr;
  const json& scaling = config["rope_scaling"];
  const json& type =
      scaling.contains("rope_type") ? scaling["rope_type"] : scaling.value("type", json());
  return type == "yarn" ? &scaling : nullptr;
}

// transformers' _compute_yarn_parameters: the attention factor from mscale / mscale_all_dim
// unless given, beta_fast/beta_slow defaulting to 32/1 when absent or 0.
YarnSpec resolve_yarn(const json& scaling, const std::optional<int64_t>& max_positions) {
  YarnSpec yarn;
  yarn.factor = number_or(scaling, "factor", 1.0);
  yarn.original_max_positions = number_or(scaling, "original_max_position_embeddings",
                                          static_cast<double>(max_positions.value_or(0)));
  const double beta_fast = number_or(scaling, "beta_fast", 0);
  const double beta_slow = number_or(scaling, "beta_slow", 0);
  yarn.beta_fast = beta_fast != 0 ? beta_fast : 32.0;
  yarn.beta_slow = beta_slow != 0 ? beta_slow : 1.0;
  yarn.truncate = !(scaling.contains("truncate") && scaling["truncate"] == false);
  const double mscale = number_or(scaling, "mscale", 0);
  const double mscale_all_dim = number_or(scaling, "mscale_all_dim", 0);
  if (scaling.contains("attention_factor") && scaling["attention_factor"].is_number())
    yarn.attention_factor = scaling["attention_factor"].get<double>();
  else if (mscale != 0 && mscale_all_dim != 0)
    yarn.attention_factor =
        yarn_mscale(yarn.factor, mscale) / yarn_mscale(yarn.factor, mscale_all_dim);
  else
    yarn.attention_factor = yarn_mscale(yarn.factor, 1.0);
  return yarn;
}

// gpt-oss's configuration: layer_types defaults to sliding attention on even layers.
bool default_sliding(int64_t layer) { return layer % 2 == 0; }

// The per-layer windows of the layer_types rule; a layer_types or sliding_window the forward pass
// cannot use gives full attention here and is refused by check_layer_types.
std::vector<int64_t> layer_windows(const ModelSpec& spec) {
  const json& config = spec.text_config();
  int64_t window = 0;
  if (present(config, "sliding_window") && config["sliding_window"].is_number_integer())
    window = std::max<int64_t>(config["sliding_window"].get<int64_t>(), 0);
  const bool listed = present(config, "layer_types") && config["layer_types"].is_array();
  std::vector<int64_t> windows(static_cast<size_t>(spec.num_layers), 0);
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    const auto i = static_cast<size_t>(l);
    const bool sliding =
        listed ? i < config["layer_types"].size() && config["layer_types"][i] == "sliding_attention"
               : default_sliding(l);
    if (sliding) windows[i] = window;
  }
  return windows;
}

// layer_types must name every layer's attention as one the forward pass computes, and a layer
// with sliding attention needs a window.
void check_layer_types(const ModelSpec& spec) {
  const json& config = spec.text_config();
  if (present(config, "layer_types")) {
    const json& types = config["layer_types"];
    if (!types.is_array() || types.size() != static_cast<size_t>(spec.num_layers))
      refuse(spec, fmt::format("'layer_types' is {}; expected a list of {} layer types",
                               json_excerpt(types), spec.num_layers));
    for (size_t i = 0; i < types.size(); ++i)
      if (types[i] != "sliding_attention" && types[i] != "full_attention")
        refuse(spec, fmt::format("'layer_types[{}]' is {}, only \"sliding_attention\" and "
                                 "\"full_attention\" are supported",
                                 i, json_excerpt(types[i])));
  }
  const std::vector<int64_t>& windows = spec.forward.layer_windows;
  for (size_t i = 0; i < windows.size(); ++i) {
    const bool sliding = present(config, "layer_types")
                             ? config["layer_types"][i] == "sliding_attention"
                             : default_sliding(static_cast<int64_t>(i));
    if (sliding && windows[i] < 1)
      throw ModelError(fmt::format(
          "{}: layer {} has sliding attention but 'sliding_window' is {}, expected a window of at "
          "least 1 token",
          spec.config_path.string(), i,
          present(config, "sliding_window") ? json_excerpt(config["sliding_window"]) : "not set"));
  }
}

}  // namespace

ForwardSpec resolve_forward_spec(const ModelSpec& spec) {
  const json& config = spec.text_config();
  ForwardSpec result;
  result.rope_theta = spec.number(Number::kRopeTheta).value_or(10000.0);
  if (present(config, "rope_parameters") && config["rope_parameters"].is_object()) {
    const json& rope = config["rope_parameters"];
    if (rope.contains("rope_theta") && rope["rope_theta"].is_number())
      result.rope_theta = rope["rope_theta"].get<double>();
  }
  result.rms_norm_eps = static_cast<float>(spec.number(Number::kRmsNormEps).value_or(1e-6));
  if (spec.family->clip_qkv && present(config, "clip_qkv") && config["clip_qkv"].is_number())
    result.clip_qkv = config["clip_qkv"].get<float>();
  if (present(config, "max_position_embeddings") &&
      config["max_position_embeddings"].is_number_integer() &&
      config["max_position_embeddings"].get<int64_t>() > 0)
    result.max_positions = config["max_position_embeddings"].get<int64_t>();
  const bool window_switched_on = spec.family->sliding_window == SlidingWindowRule::kAlways ||
                                  spec.flag(Flag::kUseSlidingWindow);
  if (spec.family->sliding_window == SlidingWindowRule::kLayerTypes) {
    result.layer_windows = layer_windows(spec);
  } else if (present(config, "sliding_window") && config["sliding_window"].is_number_integer() &&
             window_switched_on) {
    result.sliding_window = config["sliding_window"].get<int64_t>();
  }
  result.swiglu_limit = static_cast<float>(spec.number(Number::kSwigluLimit).value_or(7.0));
  result.rope_dim = spec.dim_or(Dim::kRopeDim, spec.head_dim);
  // Glm4MoeRotaryEmbedding: dim = int(head_dim * partial_rotary_factor).
  if (const std::optional<double> share = spec.number(Number::kPartialRotaryFactor))
    result.rope_dim = static_cast<int64_t>(static_cast<double>(spec.head_dim) * *share);
  if (spec.family->yarn)
    if (const json* scaling = yarn_scaling(config))
      result.yarn = resolve_yarn(*scaling, result.max_positions);
  // DeepseekV3Attention: any rope_scaling with a non-zero mscale_all_dim scales the softmax
  // (MLA only: Glm4MoeAttention and gpt-oss keep head_dim^-0.5 under YaRN).
  if (spec.family->attention == AttentionKind::kMla && present(config, "rope_scaling") &&
      config["rope_scaling"].is_object()) {
    const double mscale_all_dim = number_or(config["rope_scaling"], "mscale_all_dim", 0);
    if (mscale_all_dim != 0) {
      const double mscale =
          yarn_mscale(number_or(config["rope_scaling"], "factor", 1.0), mscale_all_dim);
      result.attention_scale_factor = mscale * mscale;
    }
  }
  result.fp8 = fp8_block_scaling(spec.config);
  return result;
}

void require_forward_support(const ModelSpec& spec) {
  const FamilyProfile& family = *spec.family;
  if (!family.forward_supported)
    throw UnsupportedError(
        fmt::format("{}: the {} family is not supported by the forward pass (logits, profiling and "
                    "evaluation support {})",
                    spec.config_path.string(), family.family,
                    families_where([](const FamilyProfile& f) { return f.forward_supported; })));
  const std::vector<ConfigRefusal>& shared =
      spec.forward.yarn ? shared_refusals_with_yarn() : shared_refusals();
  if (auto refusal = first_config_refusal(shared, spec)) refuse(spec, *refusal);
  check_forward_numbers(spec);
  if (auto refusal = quantization_refusal(spec.config)) refuse(spec, *refusal);
  const int64_t rope_dim = spec.forward.rope_dim;
  if (rope_dim == spec.head_dim && spec.head_dim % 2 != 0)
    refuse(spec, fmt::format("'head_dim' is {}; rotate-half RoPE needs an even head size",
                             spec.head_dim));
  if (rope_dim % 2 != 0 || rope_dim < 2 || rope_dim > spec.head_dim)
    refuse(spec, fmt::format("RoPE rotates {} of a head's {} dimensions; rotate-half RoPE needs "
                             "an even count of at least 2",
                             rope_dim, spec.head_dim));
  const json& config = spec.text_config();
  if (present(config, "clip_qkv")) {
    if (!family.clip_qkv)
      refuse(spec, fmt::format("'clip_qkv' is {}; only {} applies clip_qkv",
                               json_excerpt(config["clip_qkv"]),
                               families_where([](const FamilyProfile& f) { return f.clip_qkv; })));
    if (!config["clip_qkv"].is_number()) refuse(spec, "'clip_qkv' is not a number");
  }
  if (family.sliding_window == SlidingWindowRule::kLayerTypes) check_layer_types(spec);
  if (auto refusal = first_config_refusal(family.forward_refusals, spec)) refuse(spec, *refusal);
}

}  // namespace moeslice
