// How a model's router chooses experts, as resolved from its profile and config: the routing
// kind, renormalisation, and the group structure of group-limited routing (DeepSeek-V3: the
// experts form n_group equal groups, a token routes into topk_group of them). Also what a slice
// must respect to stay routable the same way.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "model/family_profile.h"

namespace moeslice {

struct ModelSpec;
struct LayerSpec;

struct RoutingSpec {
  RoutingKind kind = RoutingKind::kSoftmaxTopK;
  bool renormalise = false;      // norm_topk_prob, or always (kSoftmaxTopKRenormalised)
  int64_t groups = 1;            // n_group: experts [g * E / groups, (g + 1) * E / groups)
  int64_t groups_per_token = 1;  // topk_group
  double scaling = 1.0;          // routed_scaling_factor: the chosen weights' factor
};

// Throws InputError (naming `plan_source` and the layer) when `kept`, the ascending expert ids a
// plan keeps in `layer`, would change how the router works: group-limited routing needs the
// same number of kept experts in every group, at least 2 (a group is scored by its top 2).
void check_plan_fits_routing(const ModelSpec& spec, const LayerSpec& layer,
                             const std::vector<int32_t>& kept, std::string_view plan_source);

}  // namespace moeslice
