// Parsing and validation of restricted-routing plans.
#include "model/keep_plan.h"

#include <algorithm>
#include <cstdint>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"
#include "format/json_file.h"

namespace moeslice {

const std::vector<int32_t>* KeepPlan::kept_in(int64_t layer) const {
  if (layer < 0 || static_cast<size_t>(layer) >= kept.size()) return nullptr;
  const auto& entry = kept[static_cast<size_t>(layer)];
  return entry ? &*entry : nullptr;
}

int64_t routed_shared_experts(const ModelSpec& spec) {
  return spec.family->shared_expert_kind == SharedExpertKind::kLastRouted ? spec.shared_experts : 0;
}

void check_plan_target(const nlohmann::json& plan, const PlanTarget& target,
                       const std::string& source) {
  if (!plan.is_object()) return;
  auto mismatch = [&](const char* key, const std::string& planned, const std::string& found) {
    return InputError(fmt::format("{}: the plan was made for {} '{}' = {}, but {} has {}", source,
                                  "a model with", key, planned, target.name, found));
  };
  if (const auto family = plan.find("family"); !target.family.empty() && family != plan.end() &&
                                               family->is_string() && *family != target.family)
    throw mismatch("family", family->dump(), fmt::format("\"{}\"", target.family));
  const std::pair<const char*, int64_t> counts[] = {{"num_experts", target.experts},
                                                    {"num_shared_experts", target.shared_experts}};
  for (const auto& [key, value] : counts) {
    const auto planned = plan.find(key);
    if (planned == plan.end() || planned->is_null()) continue;
    if (!planned->is_number_integer() || planned->get<int64_t>() != value)
      throw mismatch(key, planned->dump(), std::to_string(value));
  }
}

std::vector<int32_t> parse_kept_ids(const nlohmann::json& entry, int64_t l, int64_t num_experts,
                                    const std::string& source) {
  auto fail = [&source](const std::string& what) {
    throw InputError(fmt::format("{}: {}", source, what));
  };
  if (!entry.is_array() || entry.empty())
    fail(fmt::format("layer {}: expected null or a non-empty list of expert ids, found {}", l,
                     json_excerpt(entry)));
  std::vector<int32_t> ids;
  for (const auto& id : entry) {
    if (!id.is_number_integer())
      fail(fmt::format("layer {}: expert id {} is not an integer", l, json_excerpt(id)));
    const int64_t value =
        id.is_number_unsigned() && id.get<uint64_t>() > INT64_MAX ? INT64_MAX : id.get<int64_t>();
    if (value < 0 || value >= num_experts)
      fail(fmt::format("layer {}: expert id {} is out of range [0, {})", l, json_excerpt(id),
                       num_experts));
    if (!ids.empty() && value <= ids.back())
      fail(
          fmt::format("layer {}: expert ids must be strictly ascending (no duplicates); "
                      "{} follows {}",
                      l, value, ids.back()));
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

KeepPlan parse_keep_plan(const nlohmann::json& plan, const ModelSpec& spec,
                         const std::string& source) {
  auto fail = [&source](const std::string& what) {
    throw InputError(fmt::format("{}: {}", source, what));
  };
  if (!plan.is_object() || !plan.contains("experts_kept_per_layer"))
    fail("expected an object with 'experts_kept_per_layer'");
  check_plan_target(plan,
                    {spec.family->family, spec.num_experts, routed_shared_experts(spec),
                     spec.config_path.parent_path().string()},
                    source);
  const nlohmann::json& layers = plan["experts_kept_per_layer"];
  if (!layers.is_array() || layers.size() != static_cast<size_t>(spec.num_layers))
    fail(
        fmt::format("'experts_kept_per_layer' must be a list with one entry per layer ({}), "
                    "found {}",
                    spec.num_layers,
                    layers.is_array() ? std::to_string(layers.size()) + " entries"
                                      : std::string(layers.type_name())));
  KeepPlan result;
  result.source = source;
  result.kept.resize(layers.size());
  for (size_t l = 0; l < layers.size(); ++l) {
    const nlohmann::json& entry = layers[l];
    if (entry.is_null()) continue;
    const LayerSpec& layer = spec.layers[l];
    if (!layer.has_experts)
      fail(fmt::format("layer {} has no experts, so its entry must be null (found {})", l,
                       json_excerpt(entry)));
    std::vector<int32_t> ids =
        parse_kept_ids(entry, static_cast<int64_t>(l), layer.num_experts, source);
    if (spec.family->shared_expert_kind == SharedExpertKind::kLastRouted)
      // EMO's shared experts are always active; a slice without them is a different model.
      for (int64_t shared = layer.num_experts - spec.shared_experts; shared < layer.num_experts;
           ++shared)
        if (!std::binary_search(ids.begin(), ids.end(), static_cast<int32_t>(shared)))
          fail(fmt::format("layer {}: drops shared expert {}; EMO shared experts must be kept", l,
                           shared));
    if (spec.family->shared_expert_kind == SharedExpertKind::kLastRouted &&
        static_cast<int64_t>(ids.size()) <= spec.shared_experts)
      // The router chooses among the routed experts; with none kept it has nothing to choose.
      fail(
          fmt::format("layer {} keeps {} experts, fewer than the {} experts per token, and all "
                      "of them shared; EMO routing needs at least one routed expert besides "
                      "the shared ones",
                      l, ids.size(), spec.experts_per_token));
    result.kept[l] = std::move(ids);
  }
  return result;
}

KeepPlan read_keep_plan(const std::filesystem::path& path, const ModelSpec& spec) {
  return parse_keep_plan(read_json_file(path), spec, path.string());
}

std::string keep_plan_json(const KeepPlan& plan) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& entry : plan.kept) layers.push_back(entry ? nlohmann::json(*entry) : nullptr);
  return nlohmann::json{{"experts_kept_per_layer", layers}}.dump();
}

}  // namespace moeslice
