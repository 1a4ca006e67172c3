// Variant descriptions, change against the full model, JSON and the terminal table.
#include "eval/comparison.h"

#include <filesystem>
#include <map>

#include <fmt/core.h>

#include "format/safetensors_writer.h"
#include "model/model_summary.h"

namespace moeslice {
namespace {

using nlohmann::json;

constexpr const char* kChangedMetrics[] = {"perplexity", "top1_accuracy", "nll", "acc", "acc_norm"};

json change_against(const json& metrics, const json& full) {
  json change = json::object();
  for (const char* key : kChangedMetrics) {
    if (!metrics.contains(key) || !full.contains(key)) continue;
    const double value = metrics[key].get<double>();
    const double base = full[key].get<double>();
    change[key] = {{"abs", value - base}, {"rel", base != 0 ? (value - base) / base : 0.0}};
  }
  return change;
}

std::string cell(const json& metrics, const char* key, const char* format) {
  if (!metrics.contains(key)) return "-";
  return fmt::format(fmt::runtime(format), metrics[key].get<double>());
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
  info.kind = "full";
  info.source = model.checkpoint.dir().string();
  const auto [experts, layers] = experts_and_layers(model.spec);
  info.experts_per_layer = layers > 0 ? experts / layers : model.spec.num_experts;
  info.parameters = summary.total_parameters;
  info.bytes = summary.total_bytes;
  return info;
}

VariantInfo describe_plan(const Model& full, const KeepPlan& plan, const std::string& path) {
  VariantInfo info = describe_full_model(full);
  info.label = std::filesystem::path(path).stem().string();
  info.kind = "plan";
  info.source = path;
  int64_t kept_total = 0, layers = 0;
  for (const auto& layer : full.spec.layers) {
    if (!layer.has_experts) continue;
    const auto* kept = plan.kept_in(layer.index);
    const int64_t kept_count = kept ? static_cast<int64_t>(kept->size()) : layer.num_experts;
    ExpertFootprint footprint = expert_footprint(full.checkpoint, full.spec, layer);
    // A dropped expert also loses its router row (and router bias entry).
    for (const auto& tensor : layer.tensors) {
      const TensorView* view = full.checkpoint.find(tensor.name);
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
  info.kind = "sliced";
  info.source = path;
  const int64_t sliced_total = experts_and_layers(sliced.spec).first;
  const int64_t full_total = experts_and_layers(full.spec).first;
  info.fraction_kept =
      full_total > 0 ? static_cast<double>(sliced_total) / static_cast<double>(full_total) : 1.0;
  return info;
}

json comparison_json(const std::string& model, const std::string& corpus, const std::string& tasks,
                     std::span<const VariantInfo> variants, std::span<const EvalReport> reports) {
  json out = {{"schema", kComparisonSchemaVersion},
              {"model", model},
              {"corpus", corpus.empty() ? json() : json(corpus)},
              {"tasks", tasks.empty() ? json() : json(tasks)},
              {"variants", json::array()}};
  json full_metrics;
  for (size_t i = 0; i < variants.size(); ++i) {
    const VariantInfo& info = variants[i];
    json entry = {{"label", info.label},
                  {"kind", info.kind},
                  {"experts_per_layer", info.experts_per_layer},
                  {"fraction_kept", info.fraction_kept},
                  {"parameters", info.parameters},
                  {"bytes", info.bytes},
                  {"metrics", eval_report_json(reports[i], i > 0)}};
    if (info.kind != "full") entry["source"] = info.source;
    if (i == 0)
      full_metrics = entry["metrics"];
    else
      entry["change"] = change_against(entry["metrics"], full_metrics);
    out["variants"].push_back(entry);
  }
  return out;
}

std::string comparison_table(const json& comparison) {
  std::string text =
      fmt::format("{:<28} {:>7} {:>10} {:>10} {:>9} {:>7} {:>7} {:>8} {:>7} {:>9}\n", "variant",
                  "experts", "size", "ppl", "ppl chg", "top1", "acc", "acc_norm", "KL", "agree");
  for (const auto& variant : comparison["variants"]) {
    const json& m = variant["metrics"];
    const json change = variant.value("change", json::object());
    std::string ppl_change = "-";
    if (change.contains("perplexity"))
      ppl_change = fmt::format("{:+.1f}%", 100.0 * change["perplexity"]["rel"].get<double>());
    std::string label = variant["label"].get<std::string>();
    if (label.size() > 28) label = "..." + label.substr(label.size() - 25);
    text +=
        fmt::format("{:<28} {:>7} {:>10} {:>10} {:>9} {:>7} {:>7} {:>8} {:>7} {:>9}\n", label,
                    variant["experts_per_layer"].get<int64_t>(),
                    format_byte_size(variant["bytes"].get<uint64_t>()),
                    cell(m, "perplexity", "{:.3f}"), ppl_change, cell(m, "top1_accuracy", "{:.3f}"),
                    cell(m, "acc", "{:.3f}"), cell(m, "acc_norm", "{:.3f}"),
                    cell(m, "kl", "{:.4f}"), cell(m, "top1_agreement", "{:.3f}"));
  }
  return text;
}

}  // namespace moeslice
