// The comparison document to and from JSON. The reader checks, in this order, that the file is
// an object; its "schema", when present, is kComparisonSchemaVersion; "model", "corpus" and
// "tasks" are strings or null; "variants" is an array of objects, each with a string "label",
// "kind" and "plan" strings or null, the sizes numbers or null, "metrics" a metrics object and
// "change" an object of metrics objects (check_metrics_object). Other keys are ignored.
#include "eval/comparison_file.h"

#include <array>
#include <limits>
#include <utility>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "format/json_file.h"

namespace moeslice {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<VariantKind, std::string_view>, 3> kVariantKinds = {{
    {VariantKind::kFull, "full"},
    {VariantKind::kPlan, "plan"},
    {VariantKind::kSliced, "sliced"},
}};

std::optional<VariantKind> variant_kind_from_name(std::string_view name) {
  for (const auto& [kind, kind_name] : kVariantKinds)
    if (kind_name == name) return kind;
  return std::nullopt;
}

json string_or_null(const std::string& text) { return text.empty() ? json() : json(text); }

json change_json(const std::map<Metric, MetricChange>& change) {
  json out = json::object();
  for (const auto& [metric, delta] : change) {
    json entry = json::object();
    if (delta.abs) entry["abs"] = *delta.abs;
    if (delta.rel) entry["rel"] = *delta.rel;
    out[std::string(metric_name(metric))] = entry;
  }
  return out;
}

json variant_json(const ComparisonVariant& variant) {
  json out = {{"label", variant.label}};
  if (variant.kind) out["kind"] = variant_kind_name(*variant.kind);
  if (variant.source) out["source"] = *variant.source;
  if (variant.plan) out["plan"] = *variant.plan;
  if (variant.experts_per_layer) out["experts_per_layer"] = *variant.experts_per_layer;
  if (variant.fraction_kept) out["fraction_kept"] = *variant.fraction_kept;
  if (variant.parameters) out["parameters"] = *variant.parameters;
  if (variant.bytes) out["bytes"] = *variant.bytes;
  if (variant.metrics) out["metrics"] = metric_summary_json(*variant.metrics);
  if (variant.change) out["change"] = change_json(*variant.change);
  return out;
}

// ---- reading -----------------------------------------------------------------------------

// A checked JSON number as an integer: integers exactly, real numbers truncated toward zero;
// either clamped to the type's range.
template <typename Int>
Int integer_from(const json& number) {
  constexpr Int lowest = std::numeric_limits<Int>::min();
  constexpr Int highest = std::numeric_limits<Int>::max();
  if (number.is_number_unsigned()) {
    const auto value = number.get<uint64_t>();
    return std::cmp_greater(value, highest) ? highest : static_cast<Int>(value);
  }
  if (number.is_number_integer()) {
    const auto value = number.get<int64_t>();
    if (std::cmp_less(value, lowest)) return lowest;
    if (std::cmp_greater(value, highest)) return highest;
    return static_cast<Int>(value);
  }
  const double value = number.get<double>();
  if (value <= static_cast<double>(lowest)) return lowest;
  if (value >= static_cast<double>(highest)) return highest;
  return static_cast<Int>(value);
}

// The value at `key` when it is present and not null; FormatError when it is not a string.
std::optional<std::string> optional_string(const json& object, const char* key,
                                           const std::string& where, const std::string& source) {
  const auto value = object.find(key);
  if (value == object.end() || value->is_null()) return std::nullopt;
  if (!value->is_string())
    throw FormatError(fmt::format("{}: {}.{} must be a string, found {}", source, where, key,
                                  value->type_name()));
  return value->get<std::string>();
}

// The value at `key` when it is present and not null; FormatError when it is not a number.
const json* optional_number(const json& object, const char* key, const std::string& where,
                            const std::string& source) {
  const auto value = object.find(key);
  if (value == object.end() || value->is_null()) return nullptr;
  if (!value->is_number())
    throw FormatError(fmt::format("{}: {}.{} must be a number, found {}", source, where, key,
                                  value->type_name()));
  return &*value;
}

std::map<Metric, MetricChange> parse_change(const json& change, const std::string& where,
                                            const std::string& source) {
  if (!change.is_object())
    throw FormatError(fmt::format("{}: {}.change must be an object, found {}", source, where,
                                  change.type_name()));
  std::map<Metric, MetricChange> out;
  for (const auto& [name, delta] : change.items()) {
    check_metrics_object(delta, fmt::format("{}.change.{}", where, name), source);
    const std::optional<Metric> metric = metric_from_name(name);
    if (!metric) continue;
    MetricChange& entry = out[*metric];
    for (const auto& [key, value] : {std::pair("abs", &entry.abs), std::pair("rel", &entry.rel)}) {
      const auto number = delta.find(key);
      if (number != delta.end() && number->is_number()) *value = number->get<double>();
    }
  }
  return out;
}

ComparisonVariant parse_variant(const json& variant, const std::string& where,
                                const std::string& source) {
  if (!variant.is_object())
    throw FormatError(
        fmt::format("{}: {} must be an object, found {}", source, where, variant.type_name()));
  const auto label = variant.find("label");
  if (label == variant.end() || !label->is_string())
    throw FormatError(fmt::format("{}: {} needs a string 'label'", source, where));
  ComparisonVariant out;
  out.label = label->get<std::string>();
  if (const auto kind = optional_string(variant, "kind", where, source))
    out.kind = variant_kind_from_name(*kind);
  out.plan = optional_string(variant, "plan", where, source);
  if (const json* number = optional_number(variant, "experts_per_layer", where, source))
    out.experts_per_layer = integer_from<int64_t>(*number);
  if (const json* number = optional_number(variant, "fraction_kept", where, source))
    out.fraction_kept = number->get<double>();
  if (const json* number = optional_number(variant, "parameters", where, source))
    out.parameters = integer_from<int64_t>(*number);
  if (const json* number = optional_number(variant, "bytes", where, source))
    out.bytes = integer_from<uint64_t>(*number);
  const auto metrics = variant.find("metrics");
  if (metrics != variant.end())
    out.metrics = parse_metric_summary(*metrics, where + ".metrics", source);
  const auto change = variant.find("change");
  if (change != variant.end()) out.change = parse_change(*change, where, source);
  // Not checked: compare writes it, nothing reads it back but for display.
  const auto variant_source = variant.find("source");
  if (variant_source != variant.end() && variant_source->is_string())
    out.source = variant_source->get<std::string>();
  return out;
}

}  // namespace

std::string_view variant_kind_name(VariantKind kind) {
  return kVariantKinds[static_cast<size_t>(kind)].second;
}

json comparison_json(const ComparisonDocument& document) {
  json out = {{"schema", kComparisonSchemaVersion},
              {"model", document.model},
              {"corpus", string_or_null(document.corpus)},
              {"tasks", string_or_null(document.tasks)},
              {"variants", json::array()}};
  for (const ComparisonVariant& variant : document.variants)
    out["variants"].push_back(variant_json(variant));
  return out;
}

void write_comparison_file(const std::filesystem::path& path, const ComparisonDocument& document,
                           bool overwrite) {
  write_file_atomically(path, comparison_json(document).dump(2) + "\n", overwrite);
}

ComparisonDocument parse_comparison(const json& document, const std::string& source) {
  if (!document.is_object())
    throw FormatError(fmt::format("{}: not a comparison: expected a JSON object, found {}", source,
                                  document.type_name()));
  const auto schema = document.find("schema");
  if (schema != document.end() && *schema != json(kComparisonSchemaVersion))
    throw FormatError(fmt::format("{}: comparison schema {}, expected {}", source,
                                  json_excerpt(*schema), kComparisonSchemaVersion));
  ComparisonDocument out;
  for (const auto& [key, field] : {std::pair("model", &out.model), std::pair("corpus", &out.corpus),
                                   std::pair("tasks", &out.tasks)}) {
    const auto value = document.find(key);
    if (value == document.end() || value->is_null()) continue;
    if (!value->is_string())
      throw FormatError(fmt::format("{}: '{}' must be a string or null, found {}", source, key,
                                    value->type_name()));
    *field = value->get<std::string>();
  }
  const auto variants = document.find("variants");
  if (variants == document.end() || !variants->is_array())
    throw FormatError(fmt::format("{}: not a comparison: expected a 'variants' array", source));
  for (size_t i = 0; i < variants->size(); ++i)
    out.variants.push_back(parse_variant((*variants)[i], fmt::format("variants[{}]", i), source));
  return out;
}

ComparisonDocument read_comparison_file(const std::filesystem::path& path) {
  return parse_comparison(read_json_file(path), path.string());
}

}  // namespace moeslice
