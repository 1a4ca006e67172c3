// Ranking experts per layer and spending the keep budget.
#include "rank/expert_ranking.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"
#include "model/family_profile.h"

namespace moeslice {
namespace {

std::vector<int32_t> last_ids(int64_t experts, int64_t count) {
  std::vector<int32_t> ids;
  for (int64_t e = experts - count; e < experts; ++e) ids.push_back(static_cast<int32_t>(e));
  return ids;
}

bool is_shared(std::span<const int32_t> shared, int32_t id) {
  return std::find(shared.begin(), shared.end(), id) != shared.end();
}

// Orders higher scores first; NaN below everything; equal scores by ascending id.
bool ranks_before(double a, int32_t a_id, double b, int32_t b_id) {
  const bool a_nan = std::isnan(a), b_nan = std::isnan(b);
  if (a_nan != b_nan) return b_nan;
  if (!a_nan && a != b) return a > b;
  return a_id < b_id;
}

void check_layout(const ExpertLayout& layout, const std::string& source) {
  const auto fail = [&source](const std::string& what) {
    throw FormatError(fmt::format("{}: {}", source, what));
  };
  if (layout.layers <= 0 || layout.experts <= 0) fail("the profile has no layers or experts");
  if (layout.expert_layers.empty()) fail("the model has no layers with experts");
  for (int64_t layer : layout.expert_layers)
    if (layer < 0 || layer >= layout.layers)
      fail(fmt::format("expert layer {} is outside [0, {})", layer, layout.layers));
  if (layout.top_k <= 0 || layout.top_k > layout.experts)
    fail(fmt::format("top_k {} is outside [1, {}]", layout.top_k, layout.experts));
  if (static_cast<int64_t>(layout.shared.size()) >= layout.experts)
    fail(fmt::format("{} shared experts leave no routed one of {}", layout.shared.size(),
                     layout.experts));
}

}  // namespace

bool ExpertLayout::has_experts(int64_t layer) const {
  return std::find(expert_layers.begin(), expert_layers.end(), layer) != expert_layers.end();
}

ExpertLayout layout_from_usage(const UsageProfile& profile, const std::string& source) {
  ExpertLayout layout;
  layout.layers = profile.layers;
  layout.experts = profile.experts;
  try {
    const nlohmann::json& info = profile.info;
    layout.family = info.at("family").get<std::string>();
    layout.model = info.value("model", std::string());
    layout.top_k = info.at("top_k").get<int64_t>();
    layout.expert_layers = info.at("expert_layers").get<std::vector<int64_t>>();
    if (info.contains("experts_per_layer"))
      throw UnsupportedError(fmt::format(
          "{}: this profile is of a model that keeps different expert counts per layer (a "
          "nonuniform slice); rank a profile of the full model instead",
          source));
    const int64_t shared = info.value("shared_experts", int64_t{0});
    if (shared < 0 || shared >= profile.experts)
      throw FormatError(fmt::format("{}: shared_experts {} is outside [0, {})", source,
                                    json_excerpt(info.value("shared_experts", nlohmann::json(0))),
                                    profile.experts));
    // Only shared experts the router scores are part of a plan; separate shared MLPs (Qwen2-MoE,
    // DeepSeek) stay in every slice whatever the plan says.
    if (family_by_name(layout.family).shared_expert_kind == SharedExpertKind::kLastRouted)
      layout.shared = last_ids(profile.experts, shared);
    layout.groups = info.value("routing_groups", int64_t{1});
    layout.groups_per_token = info.value("routing_groups_per_token", int64_t{1});
    if (layout.groups < 1 || profile.experts % layout.groups != 0 || layout.groups_per_token < 1 ||
        layout.groups_per_token > layout.groups)
      throw FormatError(
          fmt::format("{}: routing_groups {} / routing_groups_per_token {} do not split {} experts",
                      source, layout.groups, layout.groups_per_token, profile.experts));
  } catch (const nlohmann::json::exception& error) {
    throw FormatError(
        fmt::format("{}: usage metadata lacks what ranking needs ({})", source, error.what()));
  }
  check_layout(layout, source);
  if (profile.tokens.size() != profile.documents.size() ||
      profile.counts.size() !=
          static_cast<size_t>(profile.document_count() * profile.layers * profile.experts) ||
      profile.mass.size() != profile.counts.size() ||
      profile.gate_norm.size() != profile.counts.size())
    throw FormatError(fmt::format("{}: tensor sizes do not match [D, L, E]", source));
  return layout;
}

ExpertLayout layout_from_spec(const ModelSpec& spec, const std::string& model) {
  ExpertLayout layout;
  layout.family = spec.family->family;
  layout.model = model;
  layout.layers = spec.num_layers;
  layout.experts = spec.num_experts;
  layout.top_k = spec.experts_per_token;
  layout.expert_layers = spec.expert_layers();
  if (!spec.uniform_experts())
    throw UnsupportedError(fmt::format(
        "{}: the model keeps different expert counts per layer (a nonuniform slice); select on "
        "the full model instead",
        spec.config_path.string()));
  if (spec.family->shared_expert_kind == SharedExpertKind::kLastRouted)
    layout.shared = last_ids(spec.num_experts, spec.shared_experts);
  layout.groups = spec.routing.groups;
  layout.groups_per_token = spec.routing.groups_per_token;
  check_layout(layout, spec.config_path.string());
  return layout;
}

std::vector<int32_t> ranking_order(std::span<const double> scores,
                                   std::span<const int32_t> shared) {
  std::vector<int32_t> order;
  for (size_t e = 0; e < scores.size(); ++e)
    if (!is_shared(shared, static_cast<int32_t>(e))) order.push_back(static_cast<int32_t>(e));
  std::sort(order.begin(), order.end(), [&scores](int32_t a, int32_t b) {
    return ranks_before(scores[static_cast<size_t>(a)], a, scores[static_cast<size_t>(b)], b);
  });
  return order;
}

std::vector<int32_t> top_experts(std::span<const double> scores, int64_t keep,
                                 std::span<const int32_t> shared) {
  const std::vector<int32_t> order = ranking_order(scores, shared);
  const size_t routed = static_cast<size_t>(keep) - shared.size();
  std::vector<int32_t> kept(shared.begin(), shared.end());
  kept.insert(kept.end(), order.begin(),
              order.begin() + static_cast<std::ptrdiff_t>(std::min(routed, order.size())));
  std::sort(kept.begin(), kept.end());
  return kept;
}

std::vector<int32_t> choose_experts(std::span<const double> scores, int64_t keep,
                                    const ExpertLayout& layout, const RankOptions& options) {
  if (layout.groups <= 1 || !options.balance_groups)
    return top_experts(scores, keep, layout.shared);
  // Group-routed families have no router-scored shared experts (check_group_balance).
  const size_t group_size = scores.size() / static_cast<size_t>(layout.groups);
  const int64_t per_group = keep / layout.groups;
  std::vector<int32_t> kept;
  for (size_t g = 0; g < static_cast<size_t>(layout.groups); ++g) {
    for (int32_t id : top_experts(scores.subspan(g * group_size, group_size), per_group, {}))
      kept.push_back(static_cast<int32_t>(g * group_size) + id);
  }
  return kept;
}

void check_group_balance(const ExpertLayout& layout, const RankOptions& options, int64_t keep,
                         const std::string& flag) {
  if (layout.groups <= 1 || !options.balance_groups) return;
  const int64_t per_group = keep / layout.groups;
  const auto refuse = [&](const std::string& why) {
    throw InputError(fmt::format(
        "{} keeps {} experts per layer, but the {} family routes in {} groups of {} ({} per "
        "token, top-{}): {}; or pass --no-group-balance (such a plan can be evaluated with --keep "
        "but not sliced)",
        flag, keep, layout.family, layout.groups, layout.experts / layout.groups,
        layout.groups_per_token, layout.top_k, why));
  };
  if (!layout.shared.empty()) refuse("router-scored shared experts cannot be balanced");
  if (keep % layout.groups != 0)
    refuse(fmt::format("a group-balanced plan keeps a multiple of {}", layout.groups));
  if (per_group < 2) refuse("every group must keep at least 2 (a group is scored by its top 2)");
  if (per_group * layout.groups_per_token < layout.top_k)
    refuse(fmt::format(
        "the {} groups a token uses must hold its {} experts, so keep at least {}",
        layout.groups_per_token, layout.top_k,
        layout.groups * ((layout.top_k + layout.groups_per_token - 1) / layout.groups_per_token)));
  if (options.nonuniform) refuse("--nonuniform cannot keep the groups balanced");
}

LayerChoice score_layer(const UsageProfile& profile, int64_t layer,
                        std::span<const int64_t> documents, const RankOptions& options) {
  const LayerStats stats = layer_stats(profile, layer, documents, options.weighting);
  LayerChoice choice;
  choice.scores = metric_scores(options.metric, stats, layer, options.seed);
  return choice;
}

void set_kept(LayerChoice& choice, std::vector<int32_t> kept, const UsageProfile& profile,
              int64_t layer, std::span<const int64_t> documents, const ExpertLayout& layout,
              Weighting weighting) {
  const LayerStats stats = layer_stats(profile, layer, documents, weighting);
  double mass_total = 0, mass_kept = 0, count_total = 0, count_kept = 0;
  for (size_t e = 0; e < stats.mass.size(); ++e) {
    const int32_t id = static_cast<int32_t>(e);
    if (is_shared(layout.shared, id)) continue;
    const bool keeps = std::binary_search(kept.begin(), kept.end(), id);
    mass_total += stats.mass[e];
    count_total += stats.counts[e];
    if (keeps) {
      mass_kept += stats.mass[e];
      count_kept += stats.counts[e];
    }
  }
  choice.kept_mass_share = mass_total > 0 ? std::optional(mass_kept / mass_total) : std::nullopt;
  choice.kept_count_share =
      count_total > 0 ? std::optional(count_kept / count_total) : std::nullopt;
  choice.kept = std::move(kept);
}

namespace {

// Spends `budget` kept experts over the layers: every layer first gets its `floor` best experts
// (shared ones included); the rest go to the routed experts with the highest share of their
// layer's total routed score (one global threshold on normalised scores), ties by lower layer,
// then id.
std::vector<std::vector<int32_t>> spend_budget(const std::vector<std::vector<double>>& scores,
                                               const ExpertLayout& layout, int64_t budget,
                                               int64_t floor) {
  struct Candidate {
    double share;
    size_t layer;
    size_t rank;
    int32_t id;
  };
  const size_t layers = scores.size();
  std::vector<std::vector<int32_t>> orders(layers);
  const auto floor_routed = static_cast<size_t>(floor) - layout.shared.size();
  std::vector<size_t> taken(layers, floor_routed);
  std::vector<Candidate> candidates;
  int64_t remaining = budget;
  for (size_t i = 0; i < layers; ++i) {
    orders[i] = ranking_order(scores[i], layout.shared);
    remaining -= floor;
    double total = 0;
    for (int32_t id : orders[i]) {
      const double score = scores[i][static_cast<size_t>(id)];
      if (std::isfinite(score) && score > 0) total += score;
    }
    for (size_t r = floor_routed; r < orders[i].size(); ++r) {
      const double score = scores[i][static_cast<size_t>(orders[i][r])];
      const double share = total > 0 && std::isfinite(score) && score > 0 ? score / total : 0.0;
      candidates.push_back({share, i, r, orders[i][r]});
    }
  }
  // A layer's candidates must be taken in its own ranking order, which a sort by share alone
  // keeps except between equal shares; the rank breaks those.
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.share != b.share) return a.share > b.share;
    return std::tie(a.layer, a.rank) < std::tie(b.layer, b.rank);
  });
  for (size_t c = 0; c < candidates.size() && remaining > 0; ++c, --remaining)
    ++taken[candidates[c].layer];
  std::vector<std::vector<int32_t>> kept(layers);
  for (size_t i = 0; i < layers; ++i) {
    kept[i].assign(layout.shared.begin(), layout.shared.end());
    kept[i].insert(kept[i].end(), orders[i].begin(),
                   orders[i].begin() + static_cast<std::ptrdiff_t>(taken[i]));
    std::sort(kept[i].begin(), kept[i].end());
  }
  return kept;
}

}  // namespace

RankedPlan rank_experts(const UsageProfile& profile, const RankOptions& options,
                        const std::string& source) {
  RankedPlan plan;
  plan.layout = layout_from_usage(profile, source);
  plan.options = options;
  plan.method = fmt::format("moeslice-rank-{}", metric_name(options.metric));
  const ExpertLayout& layout = plan.layout;
  plan.keep_count =
      resolve_keep_count(options.keep, layout.experts, static_cast<int64_t>(layout.shared.size()));
  check_group_balance(layout, options, plan.keep_count, "--keep");
  const std::vector<int64_t> documents = select_documents(profile, options.domain);
  plan.documents = static_cast<int64_t>(documents.size());
  for (int64_t d : documents) plan.tokens += profile.tokens[static_cast<size_t>(d)];

  plan.layers.resize(static_cast<size_t>(layout.layers));
  std::vector<std::vector<double>> scores;
  for (int64_t layer : layout.expert_layers) {
    plan.layers[static_cast<size_t>(layer)] = score_layer(profile, layer, documents, options);
    scores.push_back(plan.layers[static_cast<size_t>(layer)]->scores);
  }
  std::vector<std::vector<int32_t>> kept;
  if (options.nonuniform) {
    // Every layer keeps at least min(top-k, K): one top-k then serves every layer of the slice,
    // as EMO's modeling code requires of num_experts_per_layer.
    kept = spend_budget(scores, layout,
                        plan.keep_count * static_cast<int64_t>(layout.expert_layers.size()),
                        std::min(layout.top_k, plan.keep_count));
  } else {
    for (const auto& layer_scores : scores)
      kept.push_back(choose_experts(layer_scores, plan.keep_count, layout, options));
  }
  for (size_t i = 0; i < layout.expert_layers.size(); ++i) {
    const int64_t layer = layout.expert_layers[i];
    set_kept(*plan.layers[static_cast<size_t>(layer)], std::move(kept[i]), profile, layer,
             documents, layout, options.weighting);
  }
  return plan;
}

KeepPlan to_keep_plan(const RankedPlan& plan) {
  KeepPlan keep;
  keep.source = plan.method;
  for (const auto& layer : plan.layers)
    keep.kept.push_back(layer ? std::optional(layer->kept) : std::nullopt);
  return keep;
}

}  // namespace moeslice
