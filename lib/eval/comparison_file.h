// The `compare --json` file, which `moeslice report` reads, as one typed document with its one
// writer and one checking reader. The document: the schema version, the model, corpus and tasks
// compared on, and one entry per variant (the full model first): what the variant keeps, its
// metrics (metric_summary.h) and their change against the full model.
//
// `compare` fills every field; a file written by hand or by another tool may leave out anything
// but a variant's label, so the reader keeps what is there and the fields are optional.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/metric_summary.h"

namespace moeslice {

// The "schema" the writer records and the only one the reader accepts (a file without one is
// read as this version).
inline constexpr int kComparisonSchemaVersion = 1;

enum class VariantKind { kFull, kPlan, kSliced };
// "full", "plan", "sliced".
std::string_view variant_kind_name(VariantKind kind);

// A metric of a variant minus the full model's, and that difference over the full model's value
// (0 when the full model's is 0).
struct MetricChange {
  std::optional<double> abs;
  std::optional<double> rel;
};

struct ComparisonVariant {
  std::string label;
  // nullopt when the file has none, null, or a kind this version does not know.
  std::optional<VariantKind> kind;
  std::optional<std::string> source;  // the plan file or sliced directory (not the full model)
  std::optional<std::string> plan;    // a plan file named by hand-written files, shown by report
  std::optional<int64_t> experts_per_layer;  // mean over the MoE layers
  std::optional<double> fraction_kept;       // experts kept over all MoE layers, 0..1
  std::optional<int64_t> parameters;
  std::optional<uint64_t> bytes;
  std::optional<MetricSummary> metrics;
  // Against the full model, for the metrics with metric_has_change(); compare writes it for every
  // variant but the full model.
  std::optional<std::map<Metric, MetricChange>> change;
};

struct ComparisonDocument {
  std::string model;   // the full model's directory
  std::string corpus;  // "" when compared on tasks only (null in the file)
  std::string tasks;   // "" when compared on a corpus only (null in the file)
  std::vector<ComparisonVariant> variants;
};

nlohmann::json comparison_json(const ComparisonDocument& document);
// comparison_json indented by 2, newline-terminated, written atomically.
void write_comparison_file(const std::filesystem::path& path, const ComparisonDocument& document,
                           bool overwrite);

// Checks the shape of a comparison (schema 1; a 'variants' array of objects with a string
// 'label'; strings, numbers and objects where they belong; see comparison_file.cpp) and returns
// it typed. Throws FormatError naming `source` and the offending entry.
ComparisonDocument parse_comparison(const nlohmann::json& document, const std::string& source);
// Reads and parses a comparison file: InputError naming the file when it is missing, FormatError
// when it is not JSON or not a comparison.
ComparisonDocument read_comparison_file(const std::filesystem::path& path);

}  // namespace moeslice
