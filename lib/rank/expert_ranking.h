// Choosing the experts each MoE layer keeps from a usage profile: a metric's scores per expert,
// the same count K in every layer (what standard loaders require) or a global budget of
// K x MoE layers spread over the layers (--nonuniform; every layer keeps at least min(top-k, K)).
// Shared experts that the router scores
// (EMO's last ids) are always kept and count in K; ties break by the lower expert id, so a plan
// is a pure function of the profile and the options.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model/keep_plan.h"
#include "model/model_spec.h"
#include "profile/layer_stats.h"
#include "profile/usage_profile.h"
#include "rank/keep_amount.h"
#include "rank/rank_metric.h"

namespace moeslice {

// What ranking needs to know about the model: from a usage profile's metadata or a ModelSpec.
struct ExpertLayout {
  std::string family;
  std::string model;  // the original model's path
  int64_t layers = 0;
  int64_t experts = 0;  // as the router sees them (EMO: shared experts included, last)
  int64_t top_k = 0;    // (EMO: shared experts included)
  std::vector<int64_t> expert_layers;
  std::vector<int32_t> shared;  // always-kept ids in the router's numbering (EMO: the last S)
  // Group-limited routing (DeepSeek-V3, GLM-4.5): n_group equal groups of consecutive ids, a
  // token routing into groups_per_token (topk_group) of them.
  int64_t groups = 1;
  int64_t groups_per_token = 1;

  bool has_experts(int64_t layer) const;
};

// Throws FormatError naming `source` when the metadata lacks or garbles a key, UnsupportedError
// for an unknown family.
ExpertLayout layout_from_usage(const UsageProfile& profile, const std::string& source);
ExpertLayout layout_from_spec(const ModelSpec& spec, const std::string& model);

struct RankOptions {
  RankMetric metric = RankMetric::kMass;
  KeepAmount keep;
  Weighting weighting = Weighting::kToken;
  std::optional<std::string> domain;
  bool nonuniform = false;
  // With group-limited routing: the best K / n_group experts of every group (a slice keeps n_group
  // only then). Off: the best K of the layer, which `slice` refuses unless it happens to balance.
  bool balance_groups = true;
  uint64_t seed = 0;  // for RankMetric::kRandom
};

struct LayerChoice {
  std::vector<int32_t> kept;   // ascending original ids, shared ones included
  std::vector<double> scores;  // [E] the metric per expert
  // Shares of the layer's routed (non-shared) mass and selections that the kept experts carry;
  // nullopt when the layer saw none.
  std::optional<double> kept_mass_share;
  std::optional<double> kept_count_share;
};

struct RankedPlan {
  ExpertLayout layout;
  RankOptions options;
  std::string method;      // "moeslice-rank-mass", "moeslice-select-mass", ...
  int64_t keep_count = 0;  // K per layer (nonuniform: the average the budget allows)
  std::vector<std::optional<LayerChoice>> layers;  // [L], nullopt for layers without experts
  int64_t documents = 0;
  int64_t tokens = 0;
  nlohmann::json source = nlohmann::json::object();  // where the statistics came from
};

// Routed experts (not `shared`) in ranking order: descending score, lower id first on ties;
// NaN scores rank last.
std::vector<int32_t> ranking_order(std::span<const double> scores, std::span<const int32_t> shared);

// The shared experts plus the best keep - |shared| routed ones, ascending.
std::vector<int32_t> top_experts(std::span<const double> scores, int64_t keep,
                                 std::span<const int32_t> shared);

// What a layer keeps under `options` and `layout`: top_experts, or with group-limited routing and
// balance_groups the best keep / groups of every group.
std::vector<int32_t> choose_experts(std::span<const double> scores, int64_t keep,
                                    const ExpertLayout& layout, const RankOptions& options);

// Throws InputError naming `flag` when group-balanced ranking cannot keep `keep` experts per
// layer: a multiple of the group count, at least 2 per group (the router scores a group by its
// top 2), and enough in the groups a token uses for its top-k. Nothing with one group or
// balance_groups off.
void check_group_balance(const ExpertLayout& layout, const RankOptions& options, int64_t keep,
                         const std::string& flag);

// Scores layer `layer` over `documents` (a choice without `kept` yet).
LayerChoice score_layer(const UsageProfile& profile, int64_t layer,
                        std::span<const int64_t> documents, const RankOptions& options);
// Sets `choice.kept` and the kept shares from the same statistics.
void set_kept(LayerChoice& choice, std::vector<int32_t> kept, const UsageProfile& profile,
              int64_t layer, std::span<const int64_t> documents, const ExpertLayout& layout,
              Weighting weighting);

// The whole plan. Throws InputError for a bad keep amount or domain (see keep_amount.h,
// profile/layer_stats.h); FormatError/UnsupportedError from layout_from_usage.
RankedPlan rank_experts(const UsageProfile& profile, const RankOptions& options,
                        const std::string& source);

// The plan as a KeepPlan (for the forward pass and slicer).
KeepPlan to_keep_plan(const RankedPlan& plan);

}  // namespace moeslice
