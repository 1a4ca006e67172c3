// What `moeslice inspect` reports about a GGUF model, from its metadata and tensor table:
// architecture, layers, experts (per layer, per token, shared, groups), the layers holding stacked
// expert tensors (blk.N.ffn_*_exps.*), the ggml types and their share of the bytes, split parts.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/gguf/model.h"

namespace moeslice {

struct GgufSummary {
  std::string file, architecture, name;
  uint32_t version = 0;
  int64_t metadata_keys = 0, tensors = 0;
  // {arch}.* keys; 0 when absent. expert_width: expert_feed_forward_length, else
  // feed_forward_length (when one number and the model has experts), else the stacked expert
  // tensors' shape; shared_experts: expert_shared_count, else from the ffn_*_shexp tensors (1 for
  // a matrix, the outer extent of a stacked one).
  int64_t layers = 0, hidden = 0, experts_per_layer = 0, experts_per_token = 0, shared_experts = 0,
          expert_groups = 0, expert_groups_used = 0, leading_dense_layers = 0, expert_width = 0,
          vocab = 0;
  std::vector<int64_t> expert_layers;  // layers with stacked expert tensors
  uint64_t bytes_per_expert = 0;       // one expert of the first expert layer, every projection
  uint64_t total_bytes = 0;
  std::map<std::string, int64_t> tensors_by_type;
  std::map<std::string, uint64_t> bytes_by_type;
  std::vector<TensorFile> parts;
};

GgufSummary summarize_gguf(const GgufModel& model);
nlohmann::json gguf_summary_to_json(const GgufSummary& summary);
// A human-readable table.
std::string gguf_summary_to_text(const GgufSummary& summary);

}  // namespace moeslice
