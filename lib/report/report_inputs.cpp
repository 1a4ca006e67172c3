// Reading and checking keep plans for the report (see report_inputs.h).
#include "report/report_inputs.h"

#include <algorithm>
#include <cstdint>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"
#include "format/json_file.h"
#include "model/family_profile.h"
#include "model/keep_plan.h"

namespace moeslice {

using nlohmann::json;

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
  // The plan must be one for the profiled model: its recorded family and counts, and (EMO) the
  // shared experts every layer keeps.
  const json& info = profile.info;
  const std::string family = info.contains("family") && info["family"].is_string()
                                 ? info["family"].get<std::string>()
                                 : "";
  int64_t shared = 0;  // EMO's router-scored shared experts, as plans count them
  for (const FamilyProfile& known : all_families())
    if (known.family == family && known.shared_expert_kind == SharedExpertKind::kLastRouted &&
        info.contains("shared_experts") && info["shared_experts"].is_number_integer())
      shared = info["shared_experts"].get<int64_t>();
  check_plan_target(document, {family, profile.experts, shared, "the usage profile"}, source);
  const bool keeps_last_shared = shared > 0;
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
                                     layer, json_excerpt(id)));
      // Beyond int64 (2^64-1 would read as -1): out of range all the same, quoted as written.
      const int64_t value =
          id.is_number_unsigned() && id.get<uint64_t>() > INT64_MAX ? INT64_MAX : id.get<int64_t>();
      if (value < 0 || value >= profile.experts)
        throw InputError(fmt::format("{}: layer {}: expert id {} is out of range [0, {})", source,
                                     layer, json_excerpt(id), profile.experts));
      if (!ids.empty() && value <= ids.back())
        throw InputError(
            fmt::format("{}: layer {}: expert ids must be strictly ascending", source, layer));
      ids.push_back(static_cast<int32_t>(value));
    }
    if (keeps_last_shared)
      for (int64_t expert = profile.experts - shared; expert < profile.experts; ++expert)
        if (!std::binary_search(ids.begin(), ids.end(), static_cast<int32_t>(expert)))
          throw InputError(
              fmt::format("{}: layer {}: drops shared expert {}; {} shared experts must be kept",
                          source, layer, expert, family));
    plan.kept.emplace_back(std::move(ids));
  }
  return plan;
}

ReportPlan read_report_plan(const std::filesystem::path& path, const UsageProfile& profile,
                            const std::vector<int64_t>& expert_layers) {
  return parse_report_plan(read_json_file(path), profile, expert_layers, path.string());
}

}  // namespace moeslice
