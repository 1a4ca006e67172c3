// A model's metrics by name: the Metric enum and its one name table (the keys the `eval --json`
// file and a comparison variant's "metrics" use), the values of one scope, and a summary over
// everything plus per domain label, with its JSON writer and checking reader.
#pragma once

#include <array>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace moeslice {

enum class Metric {
  kPerplexity,     // exp(mean negative log-likelihood per scored token)
  kTop1Accuracy,   // share of scored tokens whose most likely next token is right
  kTokens,         // tokens scored (a count)
  kNll,            // mean negative log-likelihood per scored token
  kAcc,            // multiple-choice accuracy (highest summed log-likelihood)
  kAccNorm,        // multiple-choice accuracy per byte of the choice
  kTasks,          // multiple-choice tasks scored (a count)
  kKl,             // mean KL divergence from the full model's next-token distribution
  kTop1Agreement,  // share of positions whose most likely next token equals the full model's
};
inline constexpr size_t kMetricCount = 9;
inline constexpr std::array<Metric, kMetricCount> kAllMetrics = {
    Metric::kPerplexity, Metric::kTop1Accuracy, Metric::kTokens,
    Metric::kNll,        Metric::kAcc,          Metric::kAccNorm,
    Metric::kTasks,      Metric::kKl,           Metric::kTop1Agreement};

// The name in the files ("perplexity", "top1_accuracy", "tokens", "nll", "acc", "acc_norm",
// "tasks", "kl", "top1_agreement").
std::string_view metric_name(Metric metric);
std::optional<Metric> metric_from_name(std::string_view name);
// Counts are written as JSON integers, every other metric as a real number.
bool metric_is_count(Metric metric);
// Whether a comparison records the metric's change against the full model (perplexity, top-1,
// nll, acc, acc_norm; not counts, and not KL or agreement, which are measured against it).
bool metric_has_change(Metric metric);

// The metrics of one scope (everything, or one domain); a metric not measured is nullopt.
struct MetricValues {
  std::array<std::optional<double>, kMetricCount> values;

  std::optional<double>& operator[](Metric metric) { return values[static_cast<size_t>(metric)]; }
  const std::optional<double>& operator[](Metric metric) const {
    return values[static_cast<size_t>(metric)];
  }
};

// What `eval` reports and a comparison records per variant. A domain may carry no metric at all
// (its documents were too short to score).
struct MetricSummary {
  MetricValues all;
  std::map<std::string, MetricValues> domains;
};

// {metric: value, ..., "domains": {label: {metric: value, ...}}}; keys sorted, as every moeslice
// JSON file.
nlohmann::json metric_summary_json(const MetricSummary& summary);
// The `eval --json` file: metric_summary_json indented by 2, newline-terminated, written
// atomically.
void write_metric_summary_file(const std::filesystem::path& path, const MetricSummary& summary,
                               bool overwrite);

// Checks `object` as a metrics object of a file `source` (an object whose values are numbers or
// null, with a "domains" object of such objects) and throws FormatError naming `source` and
// `where` (e.g. "variants[1].metrics.domains.code.acc") otherwise. A comparison's change entries
// follow the same rule.
void check_metrics_object(const nlohmann::json& object, const std::string& where,
                          const std::string& source);
// check_metrics_object, then the metrics it names; null values, names this version does not know
// and domains below the first level are left out.
MetricSummary parse_metric_summary(const nlohmann::json& object, const std::string& where,
                                   const std::string& source);

}  // namespace moeslice
