// What `moeslice inspect` reports about a checkpoint: family, sizes, which layers carry experts,
// parameter counts (total and active per token), bytes per expert, dtypes and shards.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_spec.h"

namespace moeslice {

struct ShardSummary {
  std::string file;
  uint64_t bytes = 0;
  int64_t tensors = 0;
};

struct ModelSummary {
  std::string family, model_type, directory;
  int64_t layers = 0, hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  std::vector<int64_t> expert_layers;
  int64_t experts_per_layer = 0, experts_per_token = 0, shared_experts = 0;
  // Each MoE layer's count when they differ (an EMO slice with per-layer counts), else empty.
  std::vector<int64_t> experts_in_each_layer;
  std::string shared_expert_kind;
  int64_t expert_width = 0;
  int64_t total_parameters = 0, active_parameters = 0, expert_parameters = 0;
  uint64_t bytes_per_expert = 0;  // one expert of one layer, as stored
  uint64_t total_bytes = 0;
  std::map<std::string, int64_t> tensors_by_dtype;
  std::map<std::string, uint64_t> bytes_by_dtype;
  std::vector<ShardSummary> shards;
  bool forward_supported = false;
  // Multi-token-prediction layers (num_nextn_predict_layers) and their tensors, bytes included in
  // the totals above; the forward pass does not compute them and a slice drops them.
  int64_t mtp_layers = 0, mtp_tensors = 0;
  uint64_t mtp_bytes = 0;
  // "block-scaled FP8 (128x128)" for quantization_config quant_method fp8, "" without one, else
  // the quant_method as written.
  std::string quantization;
};

ModelSummary summarize_model(const Model& model);
nlohmann::json summary_to_json(const ModelSummary& summary);
// A human-readable table.
std::string summary_to_text(const ModelSummary& summary);

// Parameters (elements) and bytes of one expert in a layer, whatever the storage (every tensor
// the expert owns, companions included, or a slice of fused tensors along the expert axis).
struct ExpertFootprint {
  int64_t parameters = 0;
  uint64_t bytes = 0;
};
ExpertFootprint expert_footprint(const TensorStore& checkpoint, const ModelSpec& spec,
                                 const LayerSpec& layer);

}  // namespace moeslice
