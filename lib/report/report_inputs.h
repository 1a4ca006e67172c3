// The keep plans `moeslice report` reads besides the usage profile, checked against the profile's
// layers and experts. Errors name the file. (The comparison JSON is read by
// eval/comparison_file.h.)
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "profile/usage_profile.h"

namespace moeslice {

struct ReportPlan {
  std::string path;   // as given, for the page
  std::string label;  // the plan's "label", else the file name
  // Indexed by layer; nullopt = no restriction (always for layers without experts).
  std::vector<std::optional<std::vector<int32_t>>> kept;
  nlohmann::json document;  // the whole file, for method, metric and keep-k
};

// Validates a parsed plan against the profile: made for its model (check_plan_target: family,
// expert and shared-expert counts), one entry per layer, null or a non-empty list of strictly
// ascending ids in [0, experts) that keeps EMO's shared experts, no list for a layer without
// experts. Throws InputError
// (FormatError for a plan that is not an object with 'experts_kept_per_layer') naming `source`.
ReportPlan parse_report_plan(const nlohmann::json& document, const UsageProfile& profile,
                             const std::vector<int64_t>& expert_layers, const std::string& source);
ReportPlan read_report_plan(const std::filesystem::path& path, const UsageProfile& profile,
                            const std::vector<int64_t>& expert_layers);

}  // namespace moeslice
