// A model resolved from its config.json and family profile: every size, flag and number the
// forward pass, profiler and slicer need, and every tensor's concrete name and expected shape.
// Everything downstream reads this, never the profile or the raw config.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/tensor_store.h"
#include "model/family_profile.h"

namespace moeslice {

struct ResolvedTensor {
  std::string role;
  std::string name;
  std::vector<int64_t> shape;
  std::optional<int> expert_axis;
  bool optional = false;
};

struct LayerSpec {
  int64_t index = 0;
  bool has_experts = false;
  // Experts the router of this layer scores (EMO: shared experts included, last); 0 without
  // experts. Equals ModelSpec::num_experts except in EMO models sliced with per-layer counts.
  int64_t num_experts = 0;
  // Attention and norms, plus the router/shared tensors (layers with experts) or the dense MLP.
  std::vector<ResolvedTensor> tensors;
  // Per expert, its tensors (empty for families whose experts are fused, e.g. gpt_oss).
  std::vector<std::vector<ResolvedTensor>> experts;
  std::string expert_prefix;  // with {expert} left in place; empty when fused

  const ResolvedTensor* find(std::string_view role) const;
  // The tensor's name, or "" when the family has no such tensor in this layer.
  std::string name_of(std::string_view role) const;
  const ResolvedTensor* find_expert(int64_t expert, std::string_view role) const;
  // The prefix every tensor of `expert` starts with ("" when experts are fused).
  std::string expert_prefix_of(int64_t expert) const;
};

struct ModelSpec {
  const FamilyProfile* family = nullptr;
  std::string model_type;
  nlohmann::json config;              // the whole config.json
  std::string text_config_key;        // "text_config" when the model config is nested, else ""
  std::filesystem::path config_path;  // for messages

  std::map<std::string, int64_t, std::less<>> dims;
  std::map<std::string, bool, std::less<>> flags;
  std::map<std::string, std::optional<double>, std::less<>> numbers;

  // The common sizes, copied from dims for convenience.
  int64_t hidden = 0, num_layers = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  // As the router sees them (EMO: shared experts included). The largest layer when the family's
  // config gives per-layer counts (LayerSpec::num_experts; EMO's `num_experts_per_layer`).
  int64_t num_experts = 0;
  int64_t experts_per_token = 0;  // top-k (EMO: shared experts included)
  int64_t shared_experts = 0;
  int64_t expert_width = 0;

  std::vector<ResolvedTensor> model_tensors;
  std::vector<LayerSpec> layers;

  const nlohmann::json& text_config() const;
  int64_t dim(std::string_view name) const;  // throws std::out_of_range when absent
  int64_t dim_or(std::string_view name, int64_t fallback) const;
  bool flag(std::string_view name) const;  // false when the family has no such flag
  std::optional<double> number(std::string_view name) const;
  const ResolvedTensor* find_model_tensor(std::string_view role) const;
  std::vector<int64_t> expert_layers() const;
  // True when every layer with experts has num_experts of them (what standard loaders need).
  bool uniform_experts() const;
  // Routed experts = num_experts minus EMO-style shared ones that the router also scores.
  int64_t routed_experts() const;
};

// Resolves `config` (the parsed config.json at `config_path`) against its family, found from
// `model_type` (or `text_config.model_type`) and `architectures`. Throws UnsupportedError for an
// unknown family (listing the known ones) and ModelError for missing or invalid keys.
ModelSpec resolve_model_spec(const nlohmann::json& config,
                             const std::filesystem::path& config_path);

// Checks that every tensor the spec expects exists with the expected shape. Throws ModelError
// naming the tensor and expected versus found.
void check_checkpoint(const ModelSpec& spec, const TensorStore& checkpoint);

// A checkpoint opened (in any format the registry knows), resolved and checked.
struct Model {
  std::shared_ptr<const TensorStore> checkpoint;  // never null
  ModelSpec spec;
};
// Opens `path` through open_tensor_store (format_registry.h), resolves its config and checks its
// tensors.
Model open_model(const std::filesystem::path& path);

// Drops this process's mapped pages of every tensor of `layer` (they stay in the page cache):
// code that walks a model layer by layer keeps resident memory near one layer.
void release_layer_pages(const TensorStore& checkpoint, const LayerSpec& layer);

}  // namespace moeslice
