// The gpt-oss router (RoutingKind::kGptOssTopKSoftmax): the top-k of the router logits (a keep
// plan's dropped experts masked to -inf first), gate weights the softmax over those k logits
// (transformers' GptOssTopKRouter); the probabilities it leaves for the profiler are the softmax
// over every kept expert.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "forward/routing/router.h"

namespace moeslice {

std::unique_ptr<const Router> make_topk_softmax_router(const RouterSettings& settings,
                                                       const std::vector<int32_t>* kept);

}  // namespace moeslice
