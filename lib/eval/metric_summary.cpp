// The metric name table, and metric summaries to and from JSON.
#include "eval/metric_summary.h"

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/error.h"

namespace moeslice {
namespace {

using nlohmann::json;

struct MetricInfo {
  Metric metric;
  std::string_view name;
  bool is_count;
  bool has_change;
};

constexpr std::array<MetricInfo, kMetricCount> kMetrics = {{
    {Metric::kPerplexity, "perplexity", false, true},
    {Metric::kTop1Accuracy, "top1_accuracy", false, true},
    {Metric::kTokens, "tokens", true, false},
    {Metric::kNll, "nll", false, true},
    {Metric::kAcc, "acc", false, true},
    {Metric::kAccNorm, "acc_norm", false, true},
    {Metric::kTasks, "tasks", true, false},
    {Metric::kKl, "kl", false, false},
    {Metric::kTop1Agreement, "top1_agreement", false, false},
}};

const MetricInfo& info(Metric metric) { return kMetrics[static_cast<size_t>(metric)]; }

constexpr const char* kDomainsKey = "domains";

json values_json(const MetricValues& values) {
  json out = json::object();
  for (const Metric metric : kAllMetrics) {
    const std::optional<double>& value = values[metric];
    if (!value) continue;
    const std::string name(metric_name(metric));
    if (metric_is_count(metric))
      out[name] = static_cast<int64_t>(*value);
    else
      out[name] = *value;
  }
  return out;
}

// The known metrics of a checked metrics object (see check_metrics_object).
MetricValues parse_values(const json& object) {
  MetricValues values;
  for (const auto& [key, value] : object.items()) {
    const std::optional<Metric> metric = metric_from_name(key);
    if (metric && value.is_number()) values[*metric] = value.get<double>();
  }
  return values;
}

}  // namespace

std::string_view metric_name(Metric metric) { return info(metric).name; }

std::optional<Metric> metric_from_name(std::string_view name) {
  for (const MetricInfo& entry : kMetrics)
    if (entry.name == name) return entry.metric;
  return std::nullopt;
}

bool metric_is_count(Metric metric) { return info(metric).is_count; }
bool metric_has_change(Metric metric) { return info(metric).has_change; }

json metric_summary_json(const MetricSummary& summary) {
  json out = values_json(summary.all);
  json domains = json::object();
  for (const auto& [label, values] : summary.domains) domains[label] = values_json(values);
  out[kDomainsKey] = domains;
  return out;
}

void write_metric_summary_file(const std::filesystem::path& path, const MetricSummary& summary,
                               bool overwrite) {
  write_file_atomically(path, metric_summary_json(summary).dump(2) + "\n", overwrite);
}

void check_metrics_object(const json& object, const std::string& where, const std::string& source) {
  if (!object.is_object())
    throw FormatError(
        fmt::format("{}: {} must be an object, found {}", source, where, object.type_name()));
  for (const auto& [key, value] : object.items()) {
    if (key == kDomainsKey) {
      if (!value.is_object())
        throw FormatError(fmt::format("{}: {}.domains must be an object, found {}", source, where,
                                      value.type_name()));
      for (const auto& [domain, metrics] : value.items())
        check_metrics_object(metrics, fmt::format("{}.domains.{}", where, domain), source);
      continue;
    }
    if (!value.is_number() && !value.is_null())
      throw FormatError(fmt::format("{}: {}.{} must be a number, found {}", source, where, key,
                                    value.type_name()));
  }
}

MetricSummary parse_metric_summary(const json& object, const std::string& where,
                                   const std::string& source) {
  check_metrics_object(object, where, source);
  MetricSummary summary;
  summary.all = parse_values(object);
  const auto domains = object.find(kDomainsKey);
  if (domains != object.end())
    for (const auto& [label, values] : domains->items())
      summary.domains[label] = parse_values(values);
  return summary;
}

}  // namespace moeslice
