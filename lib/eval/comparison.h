// The comparison of a full model with its slices: what each variant keeps (experts, parameters,
// bytes), its metrics, and their change against the full model, as JSON (the `compare --json`
// file, read by `moeslice report`) and as a terminal table.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "eval/evaluator.h"

namespace moeslice {

inline constexpr int kComparisonSchemaVersion = 1;

struct VariantInfo {
  std::string label;
  std::string kind;    // "full", "plan" or "sliced"
  std::string source;  // the plan file or sliced directory
  int64_t experts_per_layer = 0;
  double fraction_kept = 1.0;
  int64_t parameters = 0;
  uint64_t bytes = 0;
};

VariantInfo describe_full_model(const Model& model);
// The full model restricted by `plan`: parameters and bytes of the slice it stands for.
VariantInfo describe_plan(const Model& full, const KeepPlan& plan, const std::string& path);
// Labels are short (a plan's file stem, a sliced directory's name); where two collide, those
// variants are labelled by their full source path instead.
void make_labels_unique(std::vector<VariantInfo>& infos);
VariantInfo describe_sliced_model(const Model& sliced, const Model& full, const std::string& path);

nlohmann::json comparison_json(const std::string& model, const std::string& corpus,
                               const std::string& tasks, std::span<const VariantInfo> variants,
                               std::span<const EvalReport> reports);

// One row per variant: experts, size, perplexity, top-1, acc, acc_norm, KL, agreement, and the
// relative change of perplexity and accuracy.
std::string comparison_table(const nlohmann::json& comparison);

}  // namespace moeslice
