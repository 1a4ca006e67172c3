// The registry of routers (one case per RoutingKind) and a MoE layer's routing.
#include "forward/routing/router.h"

#include "common/error.h"
#include "forward/routing/emo_split_softmax_router.h"
#include "forward/routing/group_sigmoid_router.h"
#include "forward/routing/softmax_topk_router.h"
#include "forward/routing/topk_softmax_router.h"

namespace moeslice {

Router::Router(size_t experts, const std::vector<int32_t>* kept, size_t slots)
    : experts_(experts), slots_(slots) {
  if (kept == nullptr) return;
  keep_.assign(experts, 0);
  for (int32_t id : *kept) keep_.at(static_cast<size_t>(id)) = 1;
}

std::unique_ptr<const Router> make_router(const RouterSettings& settings,
                                          const std::vector<int32_t>* kept) {
  // A new kind: its enum value in model/family_profile.h, its router file here, a case below.
  switch (settings.kind) {
    case RoutingKind::kSoftmaxTopK:
      return make_softmax_topk_router(settings, kept);
    case RoutingKind::kSoftmaxTopKRenormalised: {
      RouterSettings renormalised = settings;
      renormalised.renormalise = true;
      return make_softmax_topk_router(renormalised, kept);
    }
    case RoutingKind::kEmoSplitSoftmax:
      // Without shared experts EMO's rule is softmax top-k (and its norm_topk_prob applies).
      if (settings.shared == 0) return make_softmax_topk_router(settings, kept);
      return make_emo_split_softmax_router(settings, kept);
    case RoutingKind::kDeepseekGroupSigmoid:
      return make_group_sigmoid_router(settings, kept);
    case RoutingKind::kGptOssTopKSoftmax:
      return make_topk_softmax_router(settings, kept);
  }
  throw UnsupportedError("this family's routing is not implemented by the forward pass");
}

MoeRouting make_moe_routing(const RouterSettings& settings, const std::vector<int32_t>* kept) {
  MoeRouting routing;
  routing.experts = settings.experts;
  routing.router = make_router(settings, kept);
  routing.slots = routing.router->slots();
  return routing;
}

MoeRouting make_moe_routing(RoutingKind kind, size_t experts, size_t top_k, size_t shared,
                            bool renormalise, const std::vector<int32_t>* kept) {
  return make_moe_routing({kind, experts, top_k, shared, renormalise}, kept);
}

MoeRouting layer_routing(const ModelSpec& spec, const LayerSpec& layer,
                         const std::vector<int32_t>* kept, std::span<const float> choice_bias) {
  RouterSettings settings{spec.routing.kind, static_cast<size_t>(layer.num_experts),
                          static_cast<size_t>(spec.experts_per_token),
                          static_cast<size_t>(spec.shared_experts), spec.routing.renormalise};
  settings.groups = static_cast<size_t>(spec.routing.groups);
  settings.groups_per_token = static_cast<size_t>(spec.routing.groups_per_token);
  settings.scaling = static_cast<float>(spec.routing.scaling);
  settings.choice_bias.assign(choice_bias.begin(), choice_bias.end());
  return make_moe_routing(settings, kept);
}

}  // namespace moeslice
