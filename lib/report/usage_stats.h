// The numbers behind the report's usage figures, computed from a usage profile: which layers have
// experts, each expert's share of its layer's routed mass (overall or for the documents of one
// domain), per-layer coverage curves, the mass a plan keeps, and the overlap of the experts
// different domains rely on.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "profile/usage_profile.h"

namespace moeslice {

struct UsageOverview {
  std::vector<int64_t> expert_layers;  // layers with experts, ascending
  int64_t routed_experts = 0;          // experts the router chooses among (shared ones excluded)
  int64_t shared_experts = 0;          // always-on experts, the last ones of each layer
  std::vector<std::string> domains;    // distinct non-empty document domains, sorted
  int64_t total_tokens = 0;
};

// Reads the layout from the profile's metadata ('expert_layers', 'shared_experts'), falling back
// to the layers that hold any usage. Throws FormatError naming `source` when the metadata
// contradicts the tensors' shape.
UsageOverview describe_usage(const UsageProfile& profile, const std::string& source);

// Expert shares, [expert_layers x experts] row-major: the expert's router mass over the layer's
// total routed mass, summed (profile/layer_stats.h) over `documents` (all when empty). Shared
// experts' columns are NaN (they are not routed). A layer without mass has zeros.
std::vector<double> mass_shares(const UsageProfile& profile, const UsageOverview& overview,
                                std::span<const int64_t> documents = {});

// For each row of `shares`: coverage[k] = share of the layer's routed mass held by its k most
// used experts, k = 0..routed_experts.
std::vector<std::vector<double>> coverage_curves(const std::vector<double>& shares,
                                                 const UsageOverview& overview, int64_t experts);

// The `count` most used routed experts of row `row` (ties go to the lower id), ascending ids.
std::vector<int32_t> top_experts(const std::vector<double>& shares, int64_t row, int64_t experts,
                                 int64_t routed, int64_t count);

// Share of the row's routed mass held by `kept`.
double kept_share(const std::vector<double>& shares, int64_t row, int64_t experts,
                  const std::vector<int32_t>& kept);

// Domain x domain mean (over expert layers) Jaccard overlap of each domain's top `fraction` of
// routed experts by mass; row-major, [domains x domains].
std::vector<double> domain_overlap(const UsageProfile& profile, const UsageOverview& overview,
                                   double fraction = 0.25);

// The number of experts `fraction` of `routed` stands for (rounded up, at least 1).
int64_t experts_for_fraction(int64_t routed, double fraction);

// "0-3, 7, 9-12": ascending ids with runs collapsed.
std::string compact_ids(const std::vector<int32_t>& ids);

}  // namespace moeslice
