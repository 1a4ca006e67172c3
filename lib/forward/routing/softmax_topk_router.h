// The softmax top-k router (RoutingKind::kSoftmaxTopK, kSoftmaxTopKRenormalised: olmoe,
// flex_olmo, qwen2_moe, qwen3_moe, mixtral): the masked logits are replaced by their softmax over
// all experts, a token takes the top-k, and its weights are renormalised to sum 1 when
// settings.renormalise. Under a plan a token gets min(k, kept) slots.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "forward/routing/router.h"

namespace moeslice {

std::unique_ptr<const Router> make_softmax_topk_router(const RouterSettings& settings,
                                                       const std::vector<int32_t>* kept);

}  // namespace moeslice
