// A restricted-routing plan: which experts each MoE layer may route to. The forward pass masks
// the router logits of the other experts with -inf before the softmax, which is what a model
// sliced down to the kept experts computes. File form (see tests/reference/README.md):
//   {"experts_kept_per_layer": [[ascending ids] | null, ...]}   one entry per decoder layer,
// null for layers without experts or left unrestricted.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_spec.h"

namespace moeslice {

struct KeepPlan {
  std::string source;  // the plan file, for messages
  // Indexed by layer; nullopt = unrestricted (always for layers without experts).
  std::vector<std::optional<std::vector<int32_t>>> kept;

  // The layer's kept ids, or nullptr when unrestricted.
  const std::vector<int32_t>* kept_in(int64_t layer) const;
};

// The model a plan file says it was made for, as rank and select record it ("family",
// "num_experts", "num_shared_experts"), and the model it is applied to.
struct PlanTarget {
  std::string family;  // "" = unknown, not checked
  int64_t experts = 0;
  int64_t shared_experts = 0;  // router-scored shared experts (EMO's), as plans count them
  std::string name;  // the model (a path) or the usage profile it was recorded in, for messages
};
// The shared experts a plan's "num_shared_experts" counts: EMO's, which the router scores and
// every layer keeps; 0 for families whose shared expert is a separate MLP (Qwen2-MoE, DeepSeek).
int64_t routed_shared_experts(const ModelSpec& spec);
// Throws InputError naming `source` and the key when the plan records another family, expert
// count or shared-expert count than `target`. Keys a plan lacks are not checked (plans written by
// hand or by EMO's tools).
void check_plan_target(const nlohmann::json& plan, const PlanTarget& target,
                       const std::string& source);

// The expert ids of one non-null plan entry for layer `layer`: a non-empty, strictly ascending
// list of integers in [0, num_experts). Throws InputError naming `source` and the layer.
std::vector<int32_t> parse_kept_ids(const nlohmann::json& entry, int64_t layer, int64_t num_experts,
                                    const std::string& source);
// Validates a parsed plan against the model (check_plan_target, then the entries). Throws
// InputError naming `source` and the layer: wrong length, a non-array entry, ids not integers, out
// of range, unsorted or duplicated, an empty list, an entry for a dense layer, or (EMO) a plan that
// drops a shared expert.
KeepPlan parse_keep_plan(const nlohmann::json& plan, const ModelSpec& spec,
                         const std::string& source);
// Reads and validates a plan file.
KeepPlan read_keep_plan(const std::filesystem::path& path, const ModelSpec& spec);

// The plan as compact JSON (for output metadata).
std::string keep_plan_json(const KeepPlan& plan);

}  // namespace moeslice
