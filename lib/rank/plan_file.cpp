// Plan documents.
#include "rank/plan_file.h"

#include <algorithm>

#include <fmt/core.h>

#include "common/atomic_output.h"

namespace moeslice {

nlohmann::json plan_document(const RankedPlan& plan) {
  using nlohmann::json;
  const ExpertLayout& layout = plan.layout;
  json kept = json::array(), scores = json::array(), shares = json::array();
  bool uniform = true;
  for (const auto& layer : plan.layers) {
    if (!layer) {
      kept.push_back(nullptr);
      scores.push_back(nullptr);
      shares.push_back(nullptr);
      continue;
    }
    uniform = uniform && static_cast<int64_t>(layer->kept.size()) == plan.keep_count;
    kept.push_back(layer->kept);
    scores.push_back(layer->scores);
    const auto share = [](const std::optional<double>& value) {
      return value ? json(*value) : json(nullptr);
    };
    shares.push_back(
        {{"mass", share(layer->kept_mass_share)}, {"counts", share(layer->kept_count_share)}});
  }
  const RankOptions& options = plan.options;
  json document = {
      {"experts_kept_per_layer", kept},
      {"original_model", layout.model},
      {"prune_keep_k", plan.keep_count},
      {"num_shared_experts", layout.shared.size()},
      {"pruning_method", plan.method},
      {"schema", kPlanSchemaVersion},
      {"family", layout.family},
      {"num_experts", layout.experts},
      {"num_experts_per_tok", std::min(layout.top_k, plan.keep_count)},
      {"uniform", uniform},
      {"keep", options.keep.text},
      {"metric", metric_name(options.metric)},
      {"weighting", weighting_name(options.weighting)},
      {"domain", options.domain ? json(*options.domain) : json(nullptr)},
      {"seed", options.metric == RankMetric::kRandom ? json(options.seed) : json(nullptr)},
      {"documents", plan.documents},
      {"tokens", plan.tokens},
      {"source", plan.source},
      {"moeslice_version", MOESLICE_VERSION},
      {"scores", scores},
      {"kept_share", shares},
  };
  return document;
}

std::string format_plan_document(const nlohmann::json& document) {
  // One key per line and one layer per line: readable and diffable, yet compact for 128 experts.
  std::string text = "{\n";
  size_t remaining = document.size();
  for (const auto& [key, value] : document.items()) {
    text += fmt::format(" {}: ", nlohmann::json(key).dump());
    if (value.is_array() && !value.empty() &&
        (value[0].is_array() || value[0].is_object() || value[0].is_null())) {
      text += "[\n";
      for (size_t i = 0; i < value.size(); ++i)
        text += fmt::format("  {}{}\n", value[i].dump(), i + 1 < value.size() ? "," : "");
      text += " ]";
    } else {
      text += value.dump();
    }
    text += --remaining > 0 ? ",\n" : "\n";
  }
  text += "}\n";
  return text;
}

std::string plan_summary(const RankedPlan& plan) {
  double lowest = 1.0, sum = 0.0;
  int64_t layers = 0, smallest = plan.layout.experts, largest = 0;
  for (const auto& layer : plan.layers) {
    if (!layer) continue;
    const double share = layer->kept_mass_share.value_or(1.0);
    lowest = std::min(lowest, share);
    sum += share;
    ++layers;
    smallest = std::min(smallest, static_cast<int64_t>(layer->kept.size()));
    largest = std::max(largest, static_cast<int64_t>(layer->kept.size()));
  }
  const std::string kept =
      smallest == largest
          ? fmt::format("{} of {} experts kept in each of", smallest, plan.layout.experts)
          : fmt::format("{} to {} of {} experts kept in", smallest, largest, plan.layout.experts);
  return fmt::format(
      "{} {} MoE layers ({} shared), metric {}; routed mass kept: mean {:.3f}, "
      "lowest {:.3f}",
      kept, layers, plan.layout.shared.size(), metric_name(plan.options.metric),
      layers > 0 ? sum / static_cast<double>(layers) : 0.0, lowest);
}

void write_plan_file(const std::filesystem::path& path, const RankedPlan& plan, bool overwrite) {
  write_file_atomically(path, format_plan_document(plan_document(plan)), overwrite);
}

}  // namespace moeslice
