// The plan file `rank` and `select` write (docs/plan-format.md): EMO's pruning_metadata keys
// (experts_kept_per_layer, original_model, prune_keep_k, num_shared_experts, pruning_method), so
// EMO's own tools read it, plus moeslice's: schema, metric, options and, per layer, the scores
// and the share of routed mass and selections kept.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "rank/expert_ranking.h"

namespace moeslice {

inline constexpr int kPlanSchemaVersion = 1;

nlohmann::json plan_document(const RankedPlan& plan);
// The document as the file holds it: one key per line, per-layer lists one layer per line.
std::string format_plan_document(const nlohmann::json& document);

// One line for the terminal: "4 of 8 experts kept in each of 3 MoE layers (1 shared), metric
// mass; routed mass kept: mean 0.603, lowest 0.529".
std::string plan_summary(const RankedPlan& plan);

// Writes the plan atomically. Throws InputError when `path` exists and `overwrite` is false.
void write_plan_file(const std::filesystem::path& path, const RankedPlan& plan, bool overwrite);

}  // namespace moeslice
