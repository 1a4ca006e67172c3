// EMO's split-softmax router (RoutingKind::kEmoSplitSoftmax with shared experts): of E experts
// the last S are shared. The masked logits are replaced by two independent softmaxes, over the
// first E - S columns and over the last S; a token takes top-(k - S) of the routed experts and
// every shared one (weight 1.0 when all are kept), routed slots first, not renormalised. Under a
// plan (which keeps every shared expert) a token gets min(k - S, kept routed) + S slots.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "forward/routing/router.h"

namespace moeslice {

// settings.shared > 0 (without shared experts EMO routes as softmax top-k).
std::unique_ptr<const Router> make_emo_split_softmax_router(const RouterSettings& settings,
                                                            const std::vector<int32_t>* kept);

}  // namespace moeslice
