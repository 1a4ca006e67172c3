// The group-limited sigmoid router (RoutingKind::kDeepseekGroupSigmoid: deepseek_v3, kimi_k2,
// glm4_moe; transformers' DeepseekV3TopkRouter): sigmoid scores, the e_score_correction_bias
// added for choosing only, n_group groups of which topk_group are kept, top-k among them, weights
// the unbiased scores (renormalised when norm_topk_prob) times routed_scaling_factor
// (kernels::route_group_sigmoid). The router's logits are computed in fp32 in every compute mode,
// as the modeling code casts x and the router weight to fp32. Under a plan a token gets
// min(k, kept) slots; dropped experts are out of the group scores and the final top-k.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "forward/routing/router.h"

namespace moeslice {

// Throws ModelError when the experts do not split into settings.groups equal groups, when
// topk_group is not between 1 and n_group, or when the correction bias is not one per expert.
std::unique_ptr<const Router> make_group_sigmoid_router(const RouterSettings& settings,
                                                        const std::vector<int32_t>* kept);

}  // namespace moeslice
