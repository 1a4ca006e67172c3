// Parsing profiles/*.json into FamilyProfile, and the registry of embedded families.
#include "model/family_profile.h"

#include <algorithm>
#include <map>
#include <stdexcept>

#include <fmt/core.h>

#include "common/error.h"
#include "model/embedded_profiles.h"

namespace moeslice {
namespace {

using nlohmann::json;

[[noreturn]] void bad_profile(std::string_view source, const std::string& what) {
  throw std::logic_error(fmt::format("family profile {}: {}", source, what));
}

template <typename Enum>
Enum parse_enum(const json& value, const std::map<std::string, Enum>& names,
                std::string_view source, std::string_view field) {
  const auto it = value.is_string() ? names.find(value.get<std::string>()) : names.end();
  if (it == names.end()) bad_profile(source, fmt::format("unknown {} {}", field, value.dump()));
  return it->second;
}

std::vector<TensorRule> parse_tensor_rules(const json& list, std::string_view source) {
  std::vector<TensorRule> rules;
  if (list.is_null()) return rules;
  for (const auto& item : list) {
    TensorRule rule;
    rule.role = item.at("role").get<std::string>();
    rule.name = item.at("name").get<std::string>();
    for (const auto& extent : item.at("shape"))
      rule.shape.push_back(extent.is_string() ? extent.get<std::string>()
                                              : std::to_string(extent.get<int64_t>()));
    rule.when = item.value("when", "");
    rule.unless = item.value("unless", "");
    if (item.contains("expert_axis")) rule.expert_axis = item["expert_axis"].get<int>();
    rule.optional = item.value("optional", false);
    if (rule.role.empty() || rule.name.empty()) bad_profile(source, "tensor without role or name");
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::string optional_expression(const json& value) {
  return value.is_string() ? value.get<std::string>() : std::to_string(value.get<int64_t>());
}

}  // namespace

const DimRule* FamilyProfile::find_dim(std::string_view name) const {
  for (const auto& [dim_name, rule] : dims)
    if (dim_name == name) return &rule;
  return nullptr;
}

std::string FamilyProfile::slice_config_key(std::string_view what) const {
  for (const auto& [name, key] : slice_config_keys)
    if (name == what) return key;
  return {};
}

FamilyProfile parse_family_profile(const json& profile, std::string_view source) {
  try {
    FamilyProfile family;
    family.schema = profile.at("schema").get<int>();
    if (family.schema != 1)
      bad_profile(source, fmt::format("schema {} is not supported (expected 1)", family.schema));
    family.family = profile.at("family").get<std::string>();
    family.description = profile.value("description", "");
    family.model_types = profile.at("model_types").get<std::vector<std::string>>();
    family.architectures = profile.value("architectures", std::vector<std::string>{});
    family.forward_supported = profile.value("forward_supported", false);
    for (const auto& [name, rule_json] : profile.at("dims").items()) {
      DimRule rule;
      rule.key = rule_json.value("key", "");
      if (rule_json.contains("default")) rule.fallback = optional_expression(rule_json["default"]);
      if (rule_json.contains("expr")) rule.expr = rule_json["expr"].get<std::string>();
      if (rule_json.contains("value")) rule.value = rule_json["value"].get<int64_t>();
      family.dims.emplace_back(name, std::move(rule));
    }
    const json flags = profile.value("flags", json::object());
    for (const auto& [name, rule_json] : flags.items()) {
      FlagRule rule;
      rule.key = rule_json.at("key").get<std::string>();
      rule.fallback = rule_json.value("default", false);
      rule.presence = rule_json.value("present", false);
      family.flags.emplace_back(name, std::move(rule));
    }
    const json numbers = profile.value("numbers", json::object());
    for (const auto& [name, rule_json] : numbers.items()) {
      NumberRule rule;
      rule.key = rule_json.at("key").get<std::string>();
      const json fallback = rule_json.value("default", json());
      if (fallback.is_number()) rule.fallback = fallback.get<double>();
      family.numbers.emplace_back(name, std::move(rule));
    }
    family.sparse_layers =
        parse_enum<SparseLayerRule>(profile.at("sparse_layers").at("kind"),
                                    {{"all", SparseLayerRule::kAll},
                                     {"qwen2_moe", SparseLayerRule::kQwen2Moe},
                                     {"first_k_dense", SparseLayerRule::kFirstKDense}},
                                    source, "sparse_layers.kind");
    family.routing = parse_enum<RoutingKind>(
        profile.at("routing"),
        {{"softmax_topk", RoutingKind::kSoftmaxTopK},
         {"softmax_topk_renormalised", RoutingKind::kSoftmaxTopKRenormalised},
         {"emo_split_softmax", RoutingKind::kEmoSplitSoftmax},
         {"deepseek_group_sigmoid", RoutingKind::kDeepseekGroupSigmoid},
         {"gpt_oss_topk_softmax", RoutingKind::kGptOssTopKSoftmax}},
        source, "routing");
    family.shared_expert_kind =
        parse_enum<SharedExpertKind>(profile.at("shared_expert_kind"),
                                     {{"none", SharedExpertKind::kNone},
                                      {"last_routed", SharedExpertKind::kLastRouted},
                                      {"separate_gated", SharedExpertKind::kSeparateGated},
                                      {"separate", SharedExpertKind::kSeparate}},
                                     source, "shared_expert_kind");
    const json& block = profile.at("block");
    family.norm_placement = parse_enum<NormPlacement>(
        block.at("norm_placement"), {{"pre", NormPlacement::kPre}, {"post", NormPlacement::kPost}},
        source, "block.norm_placement");
    family.qk_norm = parse_enum<QkNorm>(block.at("qk_norm"),
                                        {{"none", QkNorm::kNone},
                                         {"whole_vector", QkNorm::kWholeVector},
                                         {"per_head", QkNorm::kPerHead}},
                                        source, "block.qk_norm");
    family.rms_norm_order =
        parse_enum<RmsNormOrder>(block.at("rms_norm_order"),
                                 {{"cast_then_weight", RmsNormOrder::kCastThenWeight},
                                  {"weight_then_cast", RmsNormOrder::kWeightThenCast}},
                                 source, "block.rms_norm_order");
    for (const auto& [name, key] : profile.at("slice_config_keys").items())
      family.slice_config_keys.emplace_back(name, key.get<std::string>());
    const json& tensors = profile.at("tensors");
    family.model_tensors = parse_tensor_rules(tensors.value("model", json()), source);
    family.layer_tensors = parse_tensor_rules(tensors.value("layer", json()), source);
    family.sparse_tensors = parse_tensor_rules(tensors.value("sparse", json()), source);
    family.expert_tensors = parse_tensor_rules(tensors.value("expert", json()), source);
    family.dense_tensors = parse_tensor_rules(tensors.value("dense", json()), source);
    family.expert_prefix = tensors.value("expert_prefix", "");
    family.random_config = profile.value("random_config", json::object());
    return family;
  } catch (const json::exception& error) {
    bad_profile(source, error.what());
  }
}

const std::vector<FamilyProfile>& all_families() {
  static const std::vector<FamilyProfile> families = [] {
    std::vector<FamilyProfile> parsed;
    for (const auto& embedded : embedded_profiles()) {
      const auto source = fmt::format("profiles/{}.json", embedded.family);
      json document;
      try {
        document = json::parse(embedded.json);
      } catch (const json::parse_error& error) {
        bad_profile(source, error.what());
      }
      parsed.push_back(parse_family_profile(document, source));
      if (parsed.back().family != embedded.family)
        bad_profile(source, "the file name must equal its 'family'");
    }
    std::sort(parsed.begin(), parsed.end(),
              [](const auto& a, const auto& b) { return a.family < b.family; });
    return parsed;
  }();
  return families;
}

std::string known_family_names() {
  std::string names;
  for (const auto& family : all_families()) names += (names.empty() ? "" : ", ") + family.family;
  return names;
}

const FamilyProfile& family_by_name(std::string_view name) {
  for (const auto& family : all_families())
    if (family.family == name) return family;
  throw UnsupportedError(
      fmt::format("unknown family '{}' (known: {})", name, known_family_names()));
}

}  // namespace moeslice
