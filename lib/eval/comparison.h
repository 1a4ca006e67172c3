// The comparison of a full model with its slices: what each variant keeps (experts, parameters,
// bytes), its metrics, and their change against the full model, as the typed comparison document
// (comparison_file.h: the `compare --json` file, read by `moeslice report`) and as a terminal
// table.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "eval/comparison_file.h"
#include "eval/evaluator.h"

namespace moeslice {

// What a variant keeps, as described from its model (and plan) before it is evaluated.
struct VariantInfo {
  std::string label;
  VariantKind kind = VariantKind::kFull;
  std::string source;  // the plan file or sliced directory; the checkpoint for the full model
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

// The document of a comparison: variants[i] described by infos[i] with the metrics of reports[i]
// (infos[0] and reports[0] the full model: every other variant's KL, agreement and change are
// against it). `corpus` or `tasks` is "" when not used.
ComparisonDocument build_comparison(const std::string& model, const std::string& corpus,
                                    const std::string& tasks, std::span<const VariantInfo> infos,
                                    std::span<const EvalReport> reports);

// One row per variant: experts, size, perplexity, top-1, acc, acc_norm, KL, agreement, and the
// relative change of perplexity.
std::string comparison_table(const ComparisonDocument& comparison);

}  // namespace moeslice
