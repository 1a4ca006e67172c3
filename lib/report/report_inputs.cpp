// Reading and checking keep plans and comparison JSON for the report (see report_inputs.h).
#include "report/report_inputs.h"

#include <algorithm>

#include <fmt/core.h>

#include "common/error.h"
#include "format/json_file.h"

namespace moeslice {
namespace {

using nlohmann::json;

// Number-valued keys of a variant and of its metrics.
constexpr const char* kVariantNumbers[] = {"experts_per_layer", "fraction_kept", "parameters",
                                           "bytes"};

void check_numbers_object(const json& object, const std::string& where, const std::string& source) {
  if (!object.is_object())
    throw FormatError(
        fmt::format("{}: {} must be an object, found {}", source, where, object.type_name()));
  for (const auto& [key, value] : object.items()) {
    if (key == "domains") {
      if (!value.is_object())
        throw FormatError(fmt::format("{}: {}.domains must be an object, found {}", source, where,
                                      value.type_name()));
      for (const auto& [domain, metrics] : value.items())
        check_numbers_object(metrics, fmt::format("{}.domains.{}", where, domain), source);
      continue;
    }
    if (!value.is_number() && !value.is_null())
      throw FormatError(fmt::format("{}: {}.{} must be a number, found {}", source, where, key,
                                    value.type_name()));
  }
}

}  // namespace

ReportPlan parse_report_plan(const json& document, const UsageProfile& profile,
                             const std::vector<int64_t>& expert_layers, const std::string& source) {
  const auto entries =
      document.is_object() ? document.find("experts_kept_per_layer") : document.end();
  if (!document.is_object() || entries == document.end() || !entries->is_array())
    throw FormatError(fmt::format(
        "{}: not a plan: expected an object with an 'experts_kept_per_layer' array", source));
  if (static_cast<int64_t>(entries->size()) != profile.layers)
    throw InputError(fmt::format(
        "{}: experts_kept_per_layer needs one entry per layer of the usage profile ({}), found {} "
        "entries",
        source, profile.layers, entries->size()));
  ReportPlan plan;
  plan.path = source;
  plan.document = document;
  const auto label = document.find("label");
  plan.label = label != document.end() && label->is_string()
                   ? label->get<std::string>()
                   : std::filesystem::path(source).filename().string();
  for (int64_t layer = 0; layer < profile.layers; ++layer) {
    const json& entry = (*entries)[static_cast<size_t>(layer)];
    if (entry.is_null()) {
      plan.kept.emplace_back();
      continue;
    }
    if (!entry.is_array())
      throw InputError(fmt::format("{}: layer {}: expected a list of expert ids or null, found {}",
                                   source, layer, entry.type_name()));
    if (std::find(expert_layers.begin(), expert_layers.end(), layer) == expert_layers.end())
      throw InputError(
          fmt::format("{}: layer {} has no experts in the usage profile; its entry must be null",
                      source, layer));
    if (entry.empty())
      throw InputError(fmt::format("{}: layer {}: keeps no experts", source, layer));
    std::vector<int32_t> ids;
    for (const json& id : entry) {
      if (!id.is_number_integer())
        throw InputError(fmt::format("{}: layer {}: expert ids must be integers, found {}", source,
                                     layer, id.dump()));
      const int64_t value = id.get<int64_t>();
      if (value < 0 || value >= profile.experts)
        throw InputError(fmt::format("{}: layer {}: expert id {} is out of range [0, {})", source,
                                     layer, value, profile.experts));
      if (!ids.empty() && value <= ids.back())
        throw InputError(
            fmt::format("{}: layer {}: expert ids must be strictly ascending", source, layer));
      ids.push_back(static_cast<int32_t>(value));
    }
    plan.kept.emplace_back(std::move(ids));
  }
  return plan;
}

ReportPlan read_report_plan(const std::filesystem::path& path, const UsageProfile& profile,
                            const std::vector<int64_t>& expert_layers) {
  return parse_report_plan(read_json_file(path), profile, expert_layers, path.string());
}

void check_comparison(const json& comparison, const std::string& source) {
  if (!comparison.is_object())
    throw FormatError(fmt::format("{}: not a comparison: expected a JSON object, found {}", source,
                                  comparison.type_name()));
  const auto schema = comparison.find("schema");
  if (schema != comparison.end() && *schema != json(1))
    throw FormatError(fmt::format("{}: comparison schema {}, expected 1", source, schema->dump()));
  for (const char* key : {"model", "corpus", "tasks"}) {
    const auto value = comparison.find(key);
    if (value != comparison.end() && !value->is_string() && !value->is_null())
      throw FormatError(fmt::format("{}: '{}' must be a string or null, found {}", source, key,
                                    value->type_name()));
  }
  const auto variants = comparison.find("variants");
  if (variants == comparison.end() || !variants->is_array())
    throw FormatError(fmt::format("{}: not a comparison: expected a 'variants' array", source));
  for (size_t i = 0; i < variants->size(); ++i) {
    const json& variant = (*variants)[i];
    const std::string where = fmt::format("variants[{}]", i);
    if (!variant.is_object())
      throw FormatError(
          fmt::format("{}: {} must be an object, found {}", source, where, variant.type_name()));
    const auto label = variant.find("label");
    if (label == variant.end() || !label->is_string())
      throw FormatError(fmt::format("{}: {} needs a string 'label'", source, where));
    for (const char* key : {"kind", "plan"}) {
      const auto value = variant.find(key);
      if (value != variant.end() && !value->is_string() && !value->is_null())
        throw FormatError(fmt::format("{}: {}.{} must be a string, found {}", source, where, key,
                                      value->type_name()));
    }
    for (const char* key : kVariantNumbers) {
      const auto value = variant.find(key);
      if (value != variant.end() && !value->is_number() && !value->is_null())
        throw FormatError(fmt::format("{}: {}.{} must be a number, found {}", source, where, key,
                                      value->type_name()));
    }
    const auto metrics = variant.find("metrics");
    if (metrics != variant.end()) check_numbers_object(*metrics, where + ".metrics", source);
    const auto change = variant.find("change");
    if (change != variant.end()) {
      if (!change->is_object())
        throw FormatError(fmt::format("{}: {}.change must be an object, found {}", source, where,
                                      change->type_name()));
      for (const auto& [metric, delta] : change->items())
        check_numbers_object(delta, fmt::format("{}.change.{}", where, metric), source);
    }
  }
}

json read_comparison(const std::filesystem::path& path) {
  json comparison = read_json_file(path);
  check_comparison(comparison, path.string());
  return comparison;
}

}  // namespace moeslice
