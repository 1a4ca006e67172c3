// The softmax top-k router on the routing kernels.
#include "forward/routing/softmax_topk_router.h"

#include <algorithm>
#include <cstddef>

#include "forward/routing/torch_tie_order.h"

namespace moeslice {
namespace {

class SoftmaxTopKRouter final : public Router {
 public:
  SoftmaxTopKRouter(const RouterSettings& settings, const std::vector<int32_t>* kept)
      : Router(settings.experts, kept,
               std::min(settings.top_k, kept_count(settings.experts, kept))),
        renormalise_(settings.renormalise) {}

  kernels::Routing route(kernels::MatrixRef scores, TopKTies ties) const override {
    kernels::Routing chosen = kernels::route_softmax_topk(scores, slots(), renormalise_, keep());
    if (ties == TopKTies::kTorchTopk) {
      const TopKSegment all[] = {{0, experts()}};
      apply_torch_tie_order(scores, all, keep(), chosen);
    }
    return chosen;
  }

 private:
  bool renormalise_;
};

}  // namespace

std::unique_ptr<const Router> make_softmax_topk_router(const RouterSettings& settings,
                                                       const std::vector<int32_t>* kept) {
  return std::make_unique<SoftmaxTopKRouter>(settings, kept);
}

}  // namespace moeslice
