// `make-random`: a checkpoint of any family with random weights, in the exact Hugging Face
// layout (config.json with the family's real keys, model.safetensors or shards). Weights are
// generated while they are written, so a 30 GB checkpoint needs no more memory than a tiny one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/dtype.h"
#include "format/byte_size.h"
#include "model/model_vocabulary.h"

namespace moeslice {

struct RandomModelOptions {
  std::string family;
  // Sizes (layers, hidden, experts, top_k, expert_width, vocab, heads, kv_heads, or any other the
  // family reads from a config key); absent ones take small defaults.
  std::map<Dim, int64_t> dims;
  // Extra config keys (JSON values) applied last, e.g. {"mlp_only_layers": [0]}.
  nlohmann::json config_overrides = nlohmann::json::object();
  DType dtype = DType::F32;
  // Fused experts (gpt_oss) as MXFP4 blocks and scales, the rest in `dtype`, as released; a
  // family without an MXFP4 form is refused.
  bool mxfp4_experts = false;
  uint64_t seed = 0;
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  bool overwrite = false;
};

// The config.json that make-random writes for `options` (exposed for tests).
nlohmann::json random_model_config(const RandomModelOptions& options);

// Writes the checkpoint atomically into `out_dir`. Returns the number of bytes of tensors.
uint64_t write_random_checkpoint(const RandomModelOptions& options,
                                 const std::filesystem::path& out_dir);

}  // namespace moeslice
