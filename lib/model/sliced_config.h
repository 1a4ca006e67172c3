// config.json of a sliced model: the family's `slice_config_keys` rewritten for the kept expert
// counts, every other key (a nested text_config included) kept.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_spec.h"

namespace moeslice {

// `kept` holds each layer's kept count ([L], 0 for layers without experts). The expert count is
// set to the largest, experts per token to min(k, that), the per-layer list (EMO) written when
// the counts differ or the config already has one, and the routing group count restated (a slice
// keeps the same number of experts in every group, so the groups stay); the multi-token-prediction
// layers count (num_nextn_predict_layers) is set to 0, as a slice drops them.
nlohmann::json sliced_config(const ModelSpec& spec, const std::vector<int64_t>& kept);

}  // namespace moeslice
