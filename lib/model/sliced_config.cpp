// Rewriting a config for a slice.
#include "model/sliced_config.h"

#include <algorithm>

namespace moeslice {

nlohmann::json sliced_config(const ModelSpec& spec, const std::vector<int64_t>& kept) {
  const SliceConfigKeys& keys = spec.family->slice_config_keys;
  nlohmann::json config = spec.config;
  nlohmann::json& target = spec.text_config_key.empty() ? config : config[spec.text_config_key];
  const int64_t largest = *std::max_element(kept.begin(), kept.end());
  target[keys.num_experts] = largest;
  target[keys.experts_per_token] = std::min(spec.experts_per_token, largest);
  if (!keys.group_count.empty() && target.contains(keys.group_count) &&
      !target[keys.group_count].is_null())
    target[keys.group_count] = spec.routing.groups;
  bool uniform = true;
  for (const auto& layer : spec.layers)
    uniform = uniform && (!layer.has_experts || kept[static_cast<size_t>(layer.index)] == largest);
  // A list already in the config (EMO may repeat the global count per layer) is rewritten too.
  if (!uniform || (!keys.experts_per_layer.empty() && target.contains(keys.experts_per_layer))) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& layer : spec.layers)
      list.push_back(layer.has_experts ? kept[static_cast<size_t>(layer.index)] : 0);
    target[keys.experts_per_layer] = list;
  }
  // The slice drops the multi-token-prediction layers (slice_plan.h).
  if (spec.mtp_layers > 0) target[spec.family->find_dim(Dim::kMtpLayers)->key] = 0;
  return config;
}

}  // namespace moeslice
