// Expert shares, coverage curves, plan coverage and domain overlap (see usage_stats.h).
#include "report/usage_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <set>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"
#include "profile/layer_stats.h"

namespace moeslice {

UsageOverview describe_usage(const UsageProfile& profile, const std::string& source) {
  UsageOverview overview;
  const nlohmann::json& info = profile.info;
  // Shares, coverage and overlap compare experts column by column with one shared column at the
  // end of every layer; a nonuniform slice's layers end at different columns.
  if (info.contains("experts_per_layer"))
    throw UnsupportedError(
        fmt::format("{}: this profile is of a model that keeps different expert counts per layer "
                    "(a nonuniform slice); report on a profile of the full model instead",
                    source));
  const auto layers = info.find("expert_layers");
  if (layers != info.end() && layers->is_array()) {
    for (const auto& layer : *layers) {
      if (!layer.is_number_integer() || layer.get<int64_t>() < 0 ||
          layer.get<int64_t>() >= profile.layers)
        throw FormatError(
            fmt::format("{}: usage metadata 'expert_layers' holds {}, not a layer in [0, {})",
                        source, json_excerpt(layer), profile.layers));
      overview.expert_layers.push_back(layer.get<int64_t>());
    }
    std::sort(overview.expert_layers.begin(), overview.expert_layers.end());
    overview.expert_layers.erase(
        std::unique(overview.expert_layers.begin(), overview.expert_layers.end()),
        overview.expert_layers.end());
  } else {
    for (int64_t layer = 0; layer < profile.layers; ++layer) {
      bool used = false;
      for (int64_t d = 0; d < profile.document_count() && !used; ++d)
        for (int64_t e = 0; e < profile.experts && !used; ++e)
          used = profile.mass[profile.index(d, layer, e)] != 0.0f;
      if (used) overview.expert_layers.push_back(layer);
    }
  }
  const auto shared = info.find("shared_experts");
  if (shared != info.end() && shared->is_number_integer())
    overview.shared_experts = shared->is_number_unsigned() && shared->get<uint64_t>() > INT64_MAX
                                  ? INT64_MAX
                                  : shared->get<int64_t>();
  if (overview.shared_experts < 0 || overview.shared_experts >= profile.experts)
    throw FormatError(fmt::format(
        "{}: usage metadata 'shared_experts' is {}, but layers have {} experts", source,
        shared != info.end() ? json_excerpt(*shared) : std::to_string(overview.shared_experts),
        profile.experts));
  overview.routed_experts = profile.experts - overview.shared_experts;
  std::set<std::string> domains;
  for (const auto& document : profile.documents)
    if (!document.domain.empty()) domains.insert(document.domain);
  overview.domains.assign(domains.begin(), domains.end());
  for (const int64_t tokens : profile.tokens) overview.total_tokens += tokens;
  return overview;
}

std::vector<double> mass_shares(const UsageProfile& profile, const UsageOverview& overview,
                                std::span<const int64_t> documents) {
  std::vector<int64_t> all;
  if (documents.empty()) {
    all.resize(static_cast<size_t>(profile.document_count()));
    std::iota(all.begin(), all.end(), int64_t{0});
    documents = all;
  }
  const int64_t experts = profile.experts;
  const int64_t rows = static_cast<int64_t>(overview.expert_layers.size());
  std::vector<double> shares(static_cast<size_t>(rows * experts), 0.0);
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t layer = overview.expert_layers[static_cast<size_t>(row)];
    const LayerStats stats = layer_stats(profile, layer, documents, Weighting::kToken);
    double* out = shares.data() + row * experts;
    const double total =
        std::accumulate(stats.mass.begin(), stats.mass.begin() + overview.routed_experts, 0.0);
    for (int64_t e = 0; e < experts; ++e) {
      if (e >= overview.routed_experts)
        out[e] = std::nan("");
      else
        out[e] = total > 0 ? stats.mass[static_cast<size_t>(e)] / total : 0.0;
    }
  }
  return shares;
}

std::vector<std::vector<double>> coverage_curves(const std::vector<double>& shares,
                                                 const UsageOverview& overview, int64_t experts) {
  std::vector<std::vector<double>> curves;
  const int64_t rows = experts > 0 ? static_cast<int64_t>(shares.size()) / experts : 0;
  for (int64_t row = 0; row < rows; ++row) {
    std::vector<double> sorted(shares.begin() + row * experts,
                               shares.begin() + row * experts + overview.routed_experts);
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    std::vector<double> curve(1, 0.0);
    for (const double share : sorted) curve.push_back(std::min(1.0, curve.back() + share));
    curves.push_back(std::move(curve));
  }
  return curves;
}

std::vector<int32_t> top_experts(const std::vector<double>& shares, int64_t row, int64_t experts,
                                 int64_t routed, int64_t count) {
  std::vector<int32_t> ids(static_cast<size_t>(routed));
  std::iota(ids.begin(), ids.end(), 0);
  const double* values = shares.data() + row * experts;
  std::stable_sort(ids.begin(), ids.end(),
                   [values](int32_t a, int32_t b) { return values[a] > values[b]; });
  ids.resize(static_cast<size_t>(std::clamp<int64_t>(count, 0, routed)));
  std::sort(ids.begin(), ids.end());
  return ids;
}

double kept_share(const std::vector<double>& shares, int64_t row, int64_t experts,
                  const std::vector<int32_t>& kept) {
  double total = 0;
  for (const int32_t id : kept) {
    const double share = shares[static_cast<size_t>(row * experts + id)];
    if (std::isfinite(share)) total += share;
  }
  return total;
}

std::vector<double> domain_overlap(const UsageProfile& profile, const UsageOverview& overview,
                                   double fraction) {
  const size_t domains = overview.domains.size();
  const int64_t rows = static_cast<int64_t>(overview.expert_layers.size());
  const int64_t count = experts_for_fraction(overview.routed_experts, fraction);
  // top[d][row]: domain d's most used experts in that layer.
  std::vector<std::vector<std::vector<int32_t>>> top(domains);
  for (size_t d = 0; d < domains; ++d) {
    const auto shares =
        mass_shares(profile, overview, select_documents(profile, overview.domains[d]));
    for (int64_t row = 0; row < rows; ++row)
      top[d].push_back(top_experts(shares, row, profile.experts, overview.routed_experts, count));
  }
  std::vector<double> overlap(domains * domains, 0.0);
  for (size_t a = 0; a < domains; ++a) {
    for (size_t b = 0; b < domains; ++b) {
      double sum = 0;
      for (int64_t row = 0; row < rows; ++row) {
        const auto& left = top[a][static_cast<size_t>(row)];
        const auto& right = top[b][static_cast<size_t>(row)];
        std::vector<int32_t> common;
        std::set_intersection(left.begin(), left.end(), right.begin(), right.end(),
                              std::back_inserter(common));
        const size_t together = left.size() + right.size() - common.size();
        sum +=
            together > 0 ? static_cast<double>(common.size()) / static_cast<double>(together) : 1.0;
      }
      overlap[a * domains + b] = rows > 0 ? sum / static_cast<double>(rows) : 0.0;
    }
  }
  return overlap;
}

int64_t experts_for_fraction(int64_t routed, double fraction) {
  const auto count = static_cast<int64_t>(std::ceil(static_cast<double>(routed) * fraction - 1e-9));
  return std::clamp<int64_t>(count, 1, std::max<int64_t>(routed, 1));
}

std::string compact_ids(const std::vector<int32_t>& ids) {
  std::string text;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!text.empty()) text += ", ";
    if (j == i)
      text += std::to_string(ids[i]);
    else if (j == i + 1)
      text += fmt::format("{}, {}", ids[i], ids[j]);
    else
      text += fmt::format("{}\u2013{}", ids[i], ids[j]);
    i = j + 1;
  }
  return text;
}

}  // namespace moeslice
