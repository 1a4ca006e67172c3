// Parsing profiles/*.json into FamilyProfile (every name checked against the vocabulary and the
// profile's own declarations), and the registry of embedded families.
#include "model/family_profile.h"

#include <algorithm>
#include <cstddef>
#include <map>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"
#include "model/dim_expression.h"
#include "model/embedded_profiles.h"
#include "model/expert_naming.h"

namespace moeslice {
namespace {

using nlohmann::json;

[[noreturn]] void bad_profile(std::string_view source, const std::string& what) {
  throw std::logic_error(fmt::format("family profile {}: {}", source, what));
}

template <typename Enum>
Enum parse_enum(const json& value, const std::map<std::string, Enum>& names,
                std::string_view field) {
  const auto it = value.is_string() ? names.find(value.get<std::string>()) : names.end();
  if (it == names.end())
    throw std::invalid_argument(fmt::format("unknown {} {}", field, json_excerpt(value)));
  return it->second;
}

// A vocabulary name (model_vocabulary.h); `what` says where it stands, for the message.
template <typename Enum>
Enum parse_name(const std::string& spelling, std::string_view what) {
  const std::optional<Enum> parsed = from_name<Enum>(spelling);
  if (!parsed) throw std::invalid_argument(fmt::format("unknown {} '{}'", what, spelling));
  return *parsed;
}

// The profile spellings of the kinds that choose a forward block; the parser and the names in
// messages (routing_kind_name, attention_kind_name) read the same table.
constexpr std::pair<std::string_view, RoutingKind> kRoutingKindNames[] = {
    {"softmax_topk", RoutingKind::kSoftmaxTopK},
    {"softmax_topk_renormalised", RoutingKind::kSoftmaxTopKRenormalised},
    {"emo_split_softmax", RoutingKind::kEmoSplitSoftmax},
    {"deepseek_group_sigmoid", RoutingKind::kDeepseekGroupSigmoid},
    {"gpt_oss_topk_softmax", RoutingKind::kGptOssTopKSoftmax},
};
constexpr std::pair<std::string_view, AttentionKind> kAttentionKindNames[] = {
    {"standard", AttentionKind::kStandard},
    {"mla", AttentionKind::kMla},
};

template <typename Enum, size_t N>
std::map<std::string, Enum> name_map(const std::pair<std::string_view, Enum> (&names)[N]) {
  std::map<std::string, Enum> map;
  for (const auto& [spelling, value] : names) map.emplace(spelling, value);
  return map;
}

template <typename Enum, size_t N>
std::string_view name_of(Enum value, const std::pair<std::string_view, Enum> (&names)[N]) {
  for (const auto& [spelling, entry] : names)
    if (entry == value) return spelling;
  throw std::logic_error("a kind without a profile spelling");
}

std::string optional_expression(const json& value) {
  return value.is_string() ? value.get<std::string>() : std::to_string(value.get<int64_t>());
}

// Checks the names a profile uses against what it declares, so that a size, flag or role is
// known at load rather than missing when a model resolves.
class NameCheck {
 public:
  explicit NameCheck(const FamilyProfile& family) : family_(family) {}

  bool is_dim(std::string_view spelling) const {
    const std::optional<Dim> dim = from_name<Dim>(spelling);
    return dim && family_.find_dim(*dim) != nullptr;
  }

  void expression(const std::string& expression, std::string_view where) const {
    try {
      check_dim_expression(expression, [this](std::string_view name) { return is_dim(name); });
    } catch (const std::invalid_argument& error) {
      throw std::invalid_argument(fmt::format("{}: {}", where, error.what()));
    }
  }

  void flag(Flag flag, std::string_view where) const {
    if (!family_.declares(flag))
      throw std::invalid_argument(
          fmt::format("{} uses flag '{}', which the profile does not declare", where, name(flag)));
  }

 private:
  const FamilyProfile& family_;
};

std::vector<TensorRule> parse_tensor_rules(const json& list, const NameCheck& check) {
  std::vector<TensorRule> rules;
  if (list.is_null()) return rules;
  for (const auto& item : list) {
    TensorRule rule;
    rule.name = item.at("name").get<std::string>();
    const std::string role = item.at("role").get<std::string>();
    if (role.empty() || rule.name.empty())
      throw std::invalid_argument("tensor without role or name");
    rule.role = parse_name<TensorRole>(role, fmt::format("role of {}:", rule.name));
    for (const auto& extent : item.at("shape")) {
      rule.shape.push_back(extent.is_string() ? extent.get<std::string>()
                                              : std::to_string(extent.get<int64_t>()));
      check.expression(rule.shape.back(), fmt::format("shape of {}", rule.name));
    }
    const auto condition = [&](const char* field) -> std::optional<Flag> {
      const std::string flag = item.value(field, "");
      if (flag.empty()) return std::nullopt;
      const Flag parsed =
          parse_name<Flag>(flag, fmt::format("flag in '{}' of {}:", field, rule.name));
      check.flag(parsed, fmt::format("'{}' of {}", field, rule.name));
      return parsed;
    };
    rule.when = condition("when");
    rule.unless = condition("unless");
    if (item.contains("expert_axis")) rule.expert_axis = item["expert_axis"].get<int>();
    rule.optional = item.value("optional", false);
    rules.push_back(std::move(rule));
  }
  return rules;
}

void parse_sizes(const json& profile, FamilyProfile& family) {
  for (const auto& [name, rule_json] : profile.at("dims").items()) {
    DimRule rule;
    rule.key = rule_json.value("key", "");
    if (rule_json.contains("default")) rule.fallback = optional_expression(rule_json["default"]);
    if (rule_json.contains("expr")) rule.expr = rule_json["expr"].get<std::string>();
    if (rule_json.contains("value")) rule.value = rule_json["value"].get<int64_t>();
    family.dims.emplace_back(parse_name<Dim>(name, "dim"), std::move(rule));
  }
  const json flags = profile.value("flags", json::object());
  for (const auto& [name, rule_json] : flags.items()) {
    FlagRule rule;
    rule.key = rule_json.at("key").get<std::string>();
    rule.fallback = rule_json.value("default", false);
    rule.presence = rule_json.value("present", false);
    family.flags.emplace_back(parse_name<Flag>(name, "flag"), std::move(rule));
  }
  const json numbers = profile.value("numbers", json::object());
  for (const auto& [name, rule_json] : numbers.items()) {
    NumberRule rule;
    rule.key = rule_json.at("key").get<std::string>();
    const json fallback = rule_json.value("default", json());
    if (fallback.is_number()) rule.fallback = fallback.get<double>();
    family.numbers.emplace_back(parse_name<Number>(name, "number"), std::move(rule));
  }
  // Every model has these; resolve_model_spec reads them.
  for (Dim dim : {Dim::kHidden, Dim::kLayers, Dim::kHeads, Dim::kKvHeads, Dim::kHeadDim,
                  Dim::kVocab, Dim::kExperts, Dim::kTopK, Dim::kSharedExperts, Dim::kExpertWidth})
    if (family.find_dim(dim) == nullptr)
      throw std::invalid_argument(fmt::format("dim '{}' is missing", name(dim)));
  const NameCheck check(family);
  for (const auto& [dim, rule] : family.dims) {
    const std::string where = fmt::format("dim '{}'", name(dim));
    if (rule.fallback) check.expression(*rule.fallback, where);
    if (rule.expr) check.expression(*rule.expr, where);
  }
}

void parse_kinds(const json& profile, FamilyProfile& family) {
  family.sparse_layers =
      parse_enum<SparseLayerRule>(profile.at("sparse_layers").at("kind"),
                                  {{"all", SparseLayerRule::kAll},
                                   {"qwen2_moe", SparseLayerRule::kQwen2Moe},
                                   {"first_k_dense", SparseLayerRule::kFirstKDense}},
                                  "sparse_layers.kind");
  family.routing =
      parse_enum<RoutingKind>(profile.at("routing"), name_map(kRoutingKindNames), "routing");
  family.shared_expert_kind =
      parse_enum<SharedExpertKind>(profile.at("shared_expert_kind"),
                                   {{"none", SharedExpertKind::kNone},
                                    {"last_routed", SharedExpertKind::kLastRouted},
                                    {"separate_gated", SharedExpertKind::kSeparateGated},
                                    {"separate", SharedExpertKind::kSeparate}},
                                   "shared_expert_kind");
  const json& attention = profile.at("attention");
  family.attention = parse_enum<AttentionKind>(attention.at("kind"), name_map(kAttentionKindNames),
                                               "attention.kind");
  family.sliding_window = parse_enum<SlidingWindowRule>(
      attention.at("sliding_window"),
      {{"always", SlidingWindowRule::kAlways},
       {"when_use_sliding_window", SlidingWindowRule::kWhenUseSlidingWindow},
       {"layer_types", SlidingWindowRule::kLayerTypes}},
      "attention.sliding_window");
  if (family.sliding_window == SlidingWindowRule::kWhenUseSlidingWindow)
    NameCheck(family).flag(Flag::kUseSlidingWindow, "attention.sliding_window");
  family.clip_qkv = attention.value("clip_qkv", false);
  family.attention_sinks = attention.value("sinks", false);
  if (profile.contains("expert_activation"))
    family.expert_activation =
        parse_enum<ExpertActivation>(profile.at("expert_activation"),
                                     {{"silu_glu", ExpertActivation::kSiluGlu},
                                      {"clamped_swiglu", ExpertActivation::kClampedSwiglu}},
                                     "expert_activation");
  if (attention.contains("rope_scaling"))
    family.yarn = parse_enum<bool>(attention.at("rope_scaling"), {{"none", false}, {"yarn", true}},
                                   "attention.rope_scaling");
  const json& block = profile.at("block");
  family.norm_placement = parse_enum<NormPlacement>(
      block.at("norm_placement"), {{"pre", NormPlacement::kPre}, {"post", NormPlacement::kPost}},
      "block.norm_placement");
  family.qk_norm = parse_enum<QkNorm>(block.at("qk_norm"),
                                      {{"none", QkNorm::kNone},
                                       {"whole_vector", QkNorm::kWholeVector},
                                       {"per_head", QkNorm::kPerHead}},
                                      "block.qk_norm");
  family.rms_norm_order =
      parse_enum<RmsNormOrder>(block.at("rms_norm_order"),
                               {{"cast_then_weight", RmsNormOrder::kCastThenWeight},
                                {"weight_then_cast", RmsNormOrder::kWeightThenCast}},
                               "block.rms_norm_order");
  family.rope_bf16 = parse_enum<RopeBf16>(
      block.at("rope_bf16"),
      {{"cast_tables", RopeBf16::kCastTables}, {"rotate_fp32", RopeBf16::kRotateFp32}},
      "block.rope_bf16");
  family.expert_storage = parse_enum<ExpertStorage>(
      profile.at("expert_storage"),
      {{"per_expert", ExpertStorage::kPerExpert}, {"fused", ExpertStorage::kFused}},
      "expert_storage");
}

void parse_slice_config_keys(const json& keys, SliceConfigKeys& out) {
  const std::map<std::string, std::string*> fields = {
      {"num_experts", &out.num_experts},
      {"experts_per_token", &out.experts_per_token},
      {"num_shared_experts", &out.num_shared_experts},
      {"group_count", &out.group_count},
      {"experts_per_layer", &out.experts_per_layer}};
  for (const auto& [name, key] : keys.items()) {
    const auto field = fields.find(name);
    if (field == fields.end())
      throw std::invalid_argument(fmt::format("unknown slice_config_keys entry '{}'", name));
    *field->second = key.get<std::string>();
  }
  if (out.num_experts.empty() || out.experts_per_token.empty())
    throw std::invalid_argument("slice_config_keys needs num_experts and experts_per_token");
}

void parse_tensors(const json& tensors, FamilyProfile& family) {
  const NameCheck check(family);
  family.model_tensors = parse_tensor_rules(tensors.value("model", json()), check);
  family.layer_tensors = parse_tensor_rules(tensors.value("layer", json()), check);
  family.sparse_tensors = parse_tensor_rules(tensors.value("sparse", json()), check);
  family.expert_tensors = parse_tensor_rules(tensors.value("expert", json()), check);
  family.dense_tensors = parse_tensor_rules(tensors.value("dense", json()), check);
  family.expert_prefix = tensors.value("expert_prefix", "");
  const bool per_expert = family.expert_storage == ExpertStorage::kPerExpert;
  if (per_expert != !family.expert_tensors.empty() || per_expert != !family.expert_prefix.empty())
    throw std::invalid_argument(
        "expert_storage 'per_expert' needs tensors.expert and tensors.expert_prefix; 'fused' "
        "neither");
  if (per_expert) {
    (void)ExpertNaming(family.expert_prefix);  // validates the template
    for (const TensorRule& rule : family.expert_tensors)
      if (rule.name.rfind(family.expert_prefix, 0) != 0)
        throw std::invalid_argument(fmt::format("expert tensor {} does not start with {}",
                                                rule.name, family.expert_prefix));
  }
}

}  // namespace

const DimRule* FamilyProfile::find_dim(Dim dim) const {
  for (const auto& [declared, rule] : dims)
    if (declared == dim) return &rule;
  return nullptr;
}

bool FamilyProfile::declares(Flag flag) const {
  return std::any_of(flags.begin(), flags.end(),
                     [flag](const auto& declared) { return declared.first == flag; });
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
    parse_sizes(profile, family);
    parse_kinds(profile, family);
    parse_slice_config_keys(profile.at("slice_config_keys"), family.slice_config_keys);
    const NameCheck check(family);
    family.forward_refusals = parse_config_refusals(
        profile.value("forward_refusals", json()),
        [&check](std::string_view name) { return check.is_dim(name); },
        [&family](Flag flag) { return family.declares(flag); });
    parse_tensors(profile.at("tensors"), family);
    family.random_config = profile.value("random_config", json::object());
    return family;
  } catch (const json::exception& error) {
    bad_profile(source, error.what());
  } catch (const std::invalid_argument& error) {
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
        document = parse_json(embedded.json, source);
      } catch (const FormatError& error) {
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

std::string_view routing_kind_name(RoutingKind kind) { return name_of(kind, kRoutingKindNames); }

std::string_view attention_kind_name(AttentionKind kind) {
  return name_of(kind, kAttentionKindNames);
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
