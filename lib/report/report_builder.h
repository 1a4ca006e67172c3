// `moeslice report`: the whole HTML page from a usage profile, optional keep plans and an optional
// comparison. Sections: header (model, family, corpus, documents, tokens), expert usage heatmaps
// (overall and per domain), coverage curves, kept experts per plan, domain overlap, the sliced
// versus full comparison, footer. The output depends only on the inputs (no clock, no host
// names), so the same files give the same bytes.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "eval/comparison_file.h"
#include "profile/usage_profile.h"
#include "report/report_inputs.h"

namespace moeslice {

struct ReportInputs {
  std::string title;       // "" for a title made from the model's name
  std::string usage_path;  // as given, for the page
  UsageProfile profile;
  std::vector<ReportPlan> plans;
  std::optional<ComparisonDocument> comparison;
  std::string comparison_path;
  std::string version = MOESLICE_VERSION;
};

std::string build_report_html(const ReportInputs& inputs);

// Reads and checks every input file, then builds the page. Throws InputError/FormatError naming
// the file that is missing or wrong.
std::string build_report_from_files(const std::filesystem::path& usage,
                                    const std::vector<std::filesystem::path>& plans,
                                    const std::optional<std::filesystem::path>& comparison,
                                    const std::string& title);

}  // namespace moeslice
