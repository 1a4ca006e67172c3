// Variant descriptions, the comparison document with each variant's change against the full
// model, and the terminal table.
#include "eval/comparison.h"

#include <filesystem>
#include <map>
#include <optional>
#include <utility>

#include <fmt/core.h>

#include "format/byte_size.h"
#include "model/model_summary.h"

namespace moeslice {
namespace {

std::map<Metric, MetricChange> change_against(const MetricValues& metrics,
                                              const MetricValues& full) {
  std::map<Metric, MetricChange> change;
  for (const Metric metric : kAllMetrics) {
    if (!metric_has_change(metric) || !metrics[metric] || !full[metric]) continue;
    const double value = *metrics[metric];
    const double base = *full[metric];
    change[metric] = {value - base, base != 0 ? (value - base) / base : 0.0};
  }
  return change;
}

std::string cell(const MetricValues& metrics, Metric metric, const char* format) {
  if (!metrics[metric]) return "-";
  return fmt::format(fmt::runtime(format), *metrics[metric]);
}

template <typename Number>
std::string number_or_dash(const std::optional<Number>& number) {
  return number ? fmt::format("{}", *number) : "-";
}

// Experts over all MoE layers and the number of those layers (slices may differ per layer).
std::pair<int64_t, int64_t> experts_and_layers(const ModelSpec& spec) {
  int64_t experts = 0, layers = 0;
  for (const auto& layer : spec.layers)
    if (layer.has_experts) {
      experts += layer.num_experts;
      ++layers;
    }
  return {experts, layers};
}

}  // namespace

VariantInfo describe_full_model(const Model& model) {
  const ModelSummary summary = summarize_model(model);
  VariantInfo info;
  info.label = "full";
  info.kind = VariantKind::kFull;
  info.source = model.checkpoint->path().string();
  const auto [experts, layers] = experts_and_layers(model.spec);
  info.experts_per_layer = layers > 0 ? experts / layers : model.spec.num_experts;
  info.parameters = summary.total_parameters;
  info.bytes = summary.total_bytes;
  return info;
}

VariantInfo describe_plan(const Model& full, const KeepPlan& plan, const std::string& path) {
  VariantInfo info = describe_full_model(full);
  info.label = std::filesystem::path(path).stem().string();
  info.kind = VariantKind::kPlan;
  info.source = path;
  int64_t kept_total = 0, layers = 0;
  for (const auto& layer : full.spec.layers) {
    if (!layer.has_experts) continue;
    const auto* kept = plan.kept_in(layer.index);
    const int64_t kept_count = kept ? static_cast<int64_t>(kept->size()) : layer.num_experts;
    ExpertFootprint footprint = expert_footprint(*full.checkpoint, full.spec, layer);
    // A dropped expert also loses its router row (and router bias entry).
    for (const auto& tensor : layer.tensors) {
      const TensorView* view = full.checkpoint->find(tensor.name);
      if (!tensor.expert_axis || !is_router_part(tensor.role) || view == nullptr) continue;
      footprint.parameters += view->numel() / layer.num_experts;
      footprint.bytes += view->bytes.size() / static_cast<uint64_t>(layer.num_experts);
    }
    const int64_t dropped = layer.num_experts - kept_count;
    info.parameters -= footprint.parameters * dropped;
    info.bytes -= footprint.bytes * static_cast<uint64_t>(dropped);
    kept_total += kept_count;
    ++layers;
  }
  const int64_t full_total = experts_and_layers(full.spec).first;
  info.experts_per_layer = layers > 0 ? kept_total / layers : full.spec.num_experts;
  info.fraction_kept =
      full_total > 0 ? static_cast<double>(kept_total) / static_cast<double>(full_total) : 1.0;
  return info;
}

void make_labels_unique(std::vector<VariantInfo>& infos) {
  std::map<std::string, int> uses;
  for (const VariantInfo& info : infos) ++uses[info.label];
  for (VariantInfo& info : infos)
    if (uses[info.label] > 1 && !info.source.empty()) info.label = info.source;
}

VariantInfo describe_sliced_model(const Model& sliced, const Model& full, const std::string& path) {
  VariantInfo info = describe_full_model(sliced);
  info.label = std::filesystem::path(path).lexically_normal().parent_path().filename().string();
  if (std::filesystem::path(path).has_filename())
    info.label = std::filesystem::path(path).filename().string();
  info.kind = VariantKind::kSliced;
  info.source = path;
  const int64_t sliced_total = experts_and_layers(sliced.spec).first;
  const int64_t full_total = experts_and_layers(full.spec).first;
  info.fraction_kept =
      full_total > 0 ? static_cast<double>(sliced_total) / static_cast<double>(full_total) : 1.0;
  return info;
}

ComparisonDocument build_comparison(const std::string& model, const std::string& corpus,
                                    const std::string& tasks, std::span<const VariantInfo> infos,
                                    std::span<const EvalReport> reports) {
  ComparisonDocument document{model, corpus, tasks, {}};
  for (size_t i = 0; i < infos.size(); ++i) {
    const VariantInfo& info = infos[i];
    ComparisonVariant variant;
    variant.label = info.label;
    variant.kind = info.kind;
    // The full model's directory is the document's `model`.
    if (info.kind != VariantKind::kFull) variant.source = info.source;
    variant.experts_per_layer = info.experts_per_layer;
    variant.fraction_kept = info.fraction_kept;
    variant.parameters = info.parameters;
    variant.bytes = info.bytes;
    variant.metrics = metric_summary(reports[i], /*with_agreement=*/i > 0);
    if (i > 0)
      variant.change = change_against(variant.metrics->all, document.variants[0].metrics->all);
    document.variants.push_back(std::move(variant));
  }
  return document;
}

std::string comparison_table(const ComparisonDocument& comparison) {
  std::string text =
      fmt::format("{:<28} {:>7} {:>10} {:>10} {:>9} {:>7} {:>7} {:>8} {:>7} {:>9}\n", "variant",
                  "experts", "size", "ppl", "ppl chg", "top1", "acc", "acc_norm", "KL", "agree");
  for (const ComparisonVariant& variant : comparison.variants) {
    const MetricValues m = variant.metrics ? variant.metrics->all : MetricValues{};
    std::string ppl_change = "-";
    if (variant.change) {
      const auto perplexity = variant.change->find(Metric::kPerplexity);
      if (perplexity != variant.change->end() && perplexity->second.rel)
        ppl_change = fmt::format("{:+.1f}%", 100.0 * *perplexity->second.rel);
    }
    std::string label = variant.label;
    if (label.size() > 28) label = "..." + label.substr(label.size() - 25);
    const std::string size = variant.bytes ? format_byte_size(*variant.bytes) : "-";
    text += fmt::format("{:<28} {:>7} {:>10} {:>10} {:>9} {:>7} {:>7} {:>8} {:>7} {:>9}\n", label,
                        number_or_dash(variant.experts_per_layer), size,
                        cell(m, Metric::kPerplexity, "{:.3f}"), ppl_change,
                        cell(m, Metric::kTop1Accuracy, "{:.3f}"), cell(m, Metric::kAcc, "{:.3f}"),
                        cell(m, Metric::kAccNorm, "{:.3f}"), cell(m, Metric::kKl, "{:.4f}"),
                        cell(m, Metric::kTop1Agreement, "{:.3f}"));
  }
  return text;
}

}  // namespace moeslice
