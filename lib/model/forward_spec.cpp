// Forward-pass numbers and refusals, following tests/reference/README.md ("Refusals").
#include "model/forward_spec.h"

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
  if (present(config, "sliding_window") && config["sliding_window"].is_number_integer() &&
      window_switched_on)
    result.sliding_window = config["sliding_window"].get<int64_t>();
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
  if (auto refusal = first_config_refusal(shared_refusals(), spec)) refuse(spec, *refusal);
  check_forward_numbers(spec);
  if (spec.head_dim % 2 != 0)
    refuse(spec, fmt::format("'head_dim' is {}; rotate-half RoPE needs an even head size",
                             spec.head_dim));
  const json& config = spec.text_config();
  if (present(config, "clip_qkv")) {
    if (!family.clip_qkv)
      refuse(spec, fmt::format("'clip_qkv' is {}; only {} applies clip_qkv",
                               json_excerpt(config["clip_qkv"]),
                               families_where([](const FamilyProfile& f) { return f.clip_qkv; })));
    if (!config["clip_qkv"].is_number()) refuse(spec, "'clip_qkv' is not a number");
  }
  if (auto refusal = first_config_refusal(family.forward_refusals, spec)) refuse(spec, *refusal);
}

}  // namespace moeslice
