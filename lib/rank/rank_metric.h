// The ranking metrics: one score per expert of a layer, higher = more worth keeping.
//   mass      router probability mass (EMO's own criterion)
//   freq      top-k selections
//   reap      mean gate weight x expert output norm per selection (REAP): gate_norm / counts
//   coverage  share of the documents that route to the expert at least once
//   random    a seeded baseline: a hash of (seed, layer, expert), so one layer's scores do not
//             depend on the others (rank and select agree layer by layer)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "profile/layer_stats.h"

namespace moeslice {

enum class RankMetric { kMass, kFreq, kReap, kCoverage, kRandom };

const char* metric_name(RankMetric metric);
// "mass, freq, reap, coverage, random"
std::string known_metric_names();
// Throws InputError naming the value and listing the known metrics.
RankMetric parse_rank_metric(std::string_view name);

// Whether the metric's scores read the expert output norms (gate_norm); the others need only
// what the router computes.
bool metric_needs_output_norms(RankMetric metric);

// [E] scores of layer `layer`.
std::vector<double> metric_scores(RankMetric metric, const LayerStats& stats, int64_t layer,
                                  uint64_t seed);

}  // namespace moeslice
