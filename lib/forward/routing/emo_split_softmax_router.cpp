// EMO's split-softmax router on the routing kernels.
#include "forward/routing/emo_split_softmax_router.h"

#include <algorithm>
#include <cassert>
#include <cstddef>

#include "forward/routing/torch_tie_order.h"

namespace moeslice {
namespace {

size_t emo_slots(const RouterSettings& settings, const std::vector<int32_t>* kept) {
  // The plan keeps every shared expert (validated in keep_plan), so kept - S are routed ones.
  const size_t kept_experts = kept_count(settings.experts, kept);
  const size_t shared = settings.shared;
  assert(shared > 0 && kept_experts >= shared && settings.top_k > shared);
  return std::min(settings.top_k - shared, kept_experts - shared) + shared;
}

class EmoSplitSoftmaxRouter final : public Router {
 public:
  EmoSplitSoftmaxRouter(const RouterSettings& settings, const std::vector<int32_t>* kept)
      : Router(settings.experts, kept, emo_slots(settings, kept)), shared_(settings.shared) {}

  kernels::Routing route(kernels::MatrixRef scores, TopKTies ties) const override {
    kernels::Routing chosen = kernels::route_emo(scores, slots(), shared_, keep());
    if (ties == TopKTies::kTorchTopk) {
      // Routed experts first, then the shared ones: one top-k each.
      const size_t routed = experts() - shared_;
      const TopKSegment segments[] = {{0, routed}, {routed, experts()}};
      apply_torch_tie_order(scores, segments, keep(), chosen);
    }
    return chosen;
  }

 private:
  size_t shared_;
};

}  // namespace

std::unique_ptr<const Router> make_emo_split_softmax_router(const RouterSettings& settings,
                                                            const std::vector<int32_t>* kept) {
  return std::make_unique<EmoSplitSoftmaxRouter>(settings, kept);
}

}  // namespace moeslice
