// Summing a usage profile's layer over documents.
#include "profile/layer_stats.h"

#include <set>

#include <fmt/core.h>
#include <fmt/format.h>

#include "common/error.h"

namespace moeslice {

const char* weighting_name(Weighting weighting) {
  return weighting == Weighting::kDocument ? "document" : "token";
}

std::vector<int64_t> select_documents(const UsageProfile& profile,
                                      const std::optional<std::string>& domain) {
  std::vector<int64_t> selected;
  for (int64_t d = 0; d < profile.document_count(); ++d)
    if (!domain || profile.documents[static_cast<size_t>(d)].domain == *domain)
      selected.push_back(d);
  if (domain && selected.empty()) {
    std::set<std::string> labels;
    for (const UsageDocument& document : profile.documents)
      if (!document.domain.empty()) labels.insert(document.domain);
    if (labels.empty())
      throw InputError(
          fmt::format("unknown domain '{}': the profile's documents carry no domain "
                      "labels",
                      *domain));
    throw InputError(
        fmt::format("unknown domain '{}'; the profile has: {}", *domain, fmt::join(labels, ", ")));
  }
  return selected;
}

LayerStats layer_stats(const UsageProfile& profile, int64_t layer,
                       std::span<const int64_t> documents, Weighting weighting) {
  const size_t experts = static_cast<size_t>(profile.experts);
  LayerStats stats;
  stats.counts.assign(experts, 0.0);
  stats.mass.assign(experts, 0.0);
  stats.gate_norm.assign(experts, 0.0);
  stats.coverage.assign(experts, 0.0);
  for (int64_t d : documents) {
    const int64_t tokens = profile.tokens[static_cast<size_t>(d)];
    if (tokens <= 0) continue;
    ++stats.documents;
    stats.tokens += tokens;
    const double scale =
        weighting == Weighting::kDocument ? 1.0 / static_cast<double>(tokens) : 1.0;
    const size_t base = profile.index(d, layer, 0);
    for (size_t e = 0; e < experts; ++e) {
      const int32_t count = profile.counts[base + e];
      stats.counts[e] += static_cast<double>(count) * scale;
      stats.mass[e] += static_cast<double>(profile.mass[base + e]) * scale;
      stats.gate_norm[e] += static_cast<double>(profile.gate_norm[base + e]) * scale;
      if (count > 0) stats.coverage[e] += 1.0;
    }
  }
  if (stats.documents > 0)
    for (double& share : stats.coverage) share /= static_cast<double>(stats.documents);
  return stats;
}

}  // namespace moeslice
