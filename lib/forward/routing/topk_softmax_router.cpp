// The top-k-then-softmax router on the routing kernels.
#include "forward/routing/topk_softmax_router.h"

#include <algorithm>
#include <cstddef>

#include "forward/routing/torch_tie_order.h"

namespace moeslice {
namespace {

class TopKSoftmaxRouter final : public Router {
 public:
  TopKSoftmaxRouter(const RouterSettings& settings, const std::vector<int32_t>* kept)
      : Router(settings.experts, kept,
               std::min(settings.top_k, kept_count(settings.experts, kept))) {}

  kernels::Routing route(kernels::MatrixRef scores, TopKTies ties) const override {
    kernels::Routing chosen = kernels::route_topk_softmax(scores, slots(), keep());
    // The probabilities order the experts as the logits do, so ties among them are ties of the
    // logits torch.topk saw; tied experts carry equal weights.
    if (ties == TopKTies::kTorchTopk) {
      const TopKSegment all[] = {{0, experts()}};
      apply_torch_tie_order(scores, all, keep(), chosen);
    }
    return chosen;
  }
};

}  // namespace

std::unique_ptr<const Router> make_topk_softmax_router(const RouterSettings& settings,
                                                       const std::vector<int32_t>* kept) {
  return std::make_unique<TopKSoftmaxRouter>(settings, kept);
}

}  // namespace moeslice
