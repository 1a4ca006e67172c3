// Group-limited routing constraints on a slice.
#include "model/routing_spec.h"

#include <algorithm>
#include <functional>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "common/error.h"
#include "model/model_spec.h"

namespace moeslice {

void check_plan_fits_routing(const ModelSpec& spec, const LayerSpec& layer,
                             const std::vector<int32_t>& kept, std::string_view plan_source) {
  const int64_t groups = spec.routing.groups;
  if (groups <= 1) return;
  std::vector<int64_t> per_group(static_cast<size_t>(groups), 0);
  for (int32_t id : kept) per_group[static_cast<size_t>(id * groups / layer.num_experts)]++;
  if (std::adjacent_find(per_group.begin(), per_group.end(), std::not_equal_to<>()) !=
      per_group.end())
    throw InputError(fmt::format(
        "{}: layer {} keeps [{}] experts in its {} routing groups; DeepSeek group routing "
        "needs the same number in every group",
        plan_source, layer.index, fmt::join(per_group, ", "), groups));
  if (per_group[0] < 2)
    throw InputError(fmt::format(
        "{}: layer {} keeps {} expert(s) in each of its {} routing groups; DeepSeek group routing "
        "scores a group by its top 2 experts, so every group must keep at least 2",
        plan_source, layer.index, per_group[0], groups));
}

}  // namespace moeslice
