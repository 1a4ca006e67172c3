// Metric names and scores.
#include "rank/rank_metric.h"

#include <array>
#include <utility>

#include <fmt/core.h>

#include "common/error.h"

namespace moeslice {
namespace {

constexpr std::array<std::pair<RankMetric, const char*>, 5> kMetrics = {{
    {RankMetric::kMass, "mass"},
    {RankMetric::kFreq, "freq"},
    {RankMetric::kReap, "reap"},
    {RankMetric::kCoverage, "coverage"},
    {RankMetric::kRandom, "random"},
}};

// SplitMix64's finaliser: a well-mixed, platform-independent 64-bit hash.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

const char* metric_name(RankMetric metric) {
  for (const auto& [value, name] : kMetrics)
    if (value == metric) return name;
  return "?";
}

std::string known_metric_names() {
  std::string names;
  for (const auto& [value, name] : kMetrics)
    names += names.empty() ? name : std::string(", ") + name;
  return names;
}

RankMetric parse_rank_metric(std::string_view name) {
  for (const auto& [value, known] : kMetrics)
    if (name == known) return value;
  throw InputError(
      fmt::format("unknown metric '{}'; known metrics: {}", name, known_metric_names()));
}

bool metric_needs_output_norms(RankMetric metric) { return metric == RankMetric::kReap; }

std::vector<double> metric_scores(RankMetric metric, const LayerStats& stats, int64_t layer,
                                  uint64_t seed) {
  const size_t experts = stats.counts.size();
  std::vector<double> scores(experts, 0.0);
  for (size_t e = 0; e < experts; ++e) {
    switch (metric) {
      case RankMetric::kMass:
        scores[e] = stats.mass[e];
        break;
      case RankMetric::kFreq:
        scores[e] = stats.counts[e];
        break;
      case RankMetric::kReap:
        scores[e] = stats.counts[e] > 0 ? stats.gate_norm[e] / stats.counts[e] : 0.0;
        break;
      case RankMetric::kCoverage:
        scores[e] = stats.coverage[e];
        break;
      case RankMetric::kRandom: {
        const uint64_t bits =
            mix(mix(mix(seed) ^ static_cast<uint64_t>(layer)) ^ static_cast<uint64_t>(e));
        scores[e] = static_cast<double>(bits >> 11) * 0x1.0p-53;  // uniform in [0, 1)
        break;
      }
    }
  }
  return scores;
}

}  // namespace moeslice
