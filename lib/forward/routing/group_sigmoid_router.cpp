// The group-limited sigmoid router on the routing kernels.
#include "forward/routing/group_sigmoid_router.h"

#include <algorithm>
#include <cstddef>

#include <fmt/core.h>

#include "common/error.h"

namespace moeslice {
namespace {

void check_settings(const RouterSettings& settings) {
  if (settings.groups == 0 || settings.experts % settings.groups != 0)
    throw ModelError(fmt::format("{} experts do not split into n_group = {} equal routing groups",
                                 settings.experts, settings.groups));
  if (settings.groups_per_token < 1 || settings.groups_per_token > settings.groups)
    throw ModelError(fmt::format("topk_group is {}, expected between 1 and n_group = {}",
                                 settings.groups_per_token, settings.groups));
  if (!settings.choice_bias.empty() && settings.choice_bias.size() != settings.experts)
    throw ModelError(fmt::format("the router's correction bias has {} values, expected {}",
                                 settings.choice_bias.size(), settings.experts));
}

class GroupSigmoidRouter final : public Router {
 public:
  GroupSigmoidRouter(const RouterSettings& settings, const std::vector<int32_t>* kept)
      : Router(settings.experts, kept,
               std::min(settings.top_k, kept_count(settings.experts, kept))),
        settings_(settings) {}

  bool fp32_logits() const override { return true; }

  kernels::Routing route(kernels::MatrixRef scores, TopKTies /*ties*/) const override {
    // Choice scores are fp32 sums with the bias, in every compute mode: exact ties are rare and
    // torch's topk(sorted=False) leaves their order open, so the lower id goes first.
    kernels::GroupSigmoidRule rule;
    rule.k = slots();
    rule.groups = settings_.groups;
    rule.groups_per_token = settings_.groups_per_token;
    rule.renormalize = settings_.renormalise;
    rule.scaling = settings_.scaling;
    rule.choice_bias = settings_.choice_bias;
    return kernels::route_group_sigmoid(scores, rule, keep());
  }

 private:
  RouterSettings settings_;
};

}  // namespace

std::unique_ptr<const Router> make_group_sigmoid_router(const RouterSettings& settings,
                                                        const std::vector<int32_t>* kept) {
  check_settings(settings);
  return std::make_unique<GroupSigmoidRouter>(settings, kept);
}

}  // namespace moeslice
