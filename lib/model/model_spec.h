// A model resolved from its config.json and family profile: every size, flag and number the
// forward pass, profiler and slicer need (asked for by enum, model_vocabulary.h), its routing and
// forward-pass settings, every tensor's concrete name and expected shape, and which expert owns a
// checkpoint tensor. Everything outside lib/model reads this, never the raw config.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/tensor_store.h"
#include "model/expert_naming.h"
#include "model/family_profile.h"
#include "model/forward_spec.h"
#include "model/model_vocabulary.h"
#include "model/routing_spec.h"

namespace moeslice {

struct ResolvedTensor {
  TensorRole role = TensorRole::kEmbed;
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

  const ResolvedTensor* find(TensorRole role) const;
  // The tensor's name, or "" when the family has no such tensor in this layer.
  std::string name_of(TensorRole role) const;
  const ResolvedTensor* find_expert(int64_t expert, TensorRole role) const;

  // Calls f(const ResolvedTensor&) for the layer's own tensors, then each expert's, in order.
  template <class F>
  void for_each_tensor(F&& f) const {
    for (const ResolvedTensor& tensor : tensors) f(tensor);
    for (const auto& expert : experts)
      for (const ResolvedTensor& tensor : expert) f(tensor);
  }
};

// A checkpoint tensor stored under one expert's name (per-expert storage): one the profile lists,
// or a companion it does not list (an FP8 `weight_scale_inv` beside an expert weight, a bias).
struct ExpertTensor {
  int64_t layer = 0;
  int64_t expert = 0;
  // The listed tensor's role; for a companion, the role of the listed tensor it sits beside
  // (same name up to its last '.'), or nullopt.
  std::optional<TensorRole> role;
  bool listed = false;
  std::string suffix;  // the name after the expert's own prefix, e.g. "up_proj.weight_scale_inv"
};

struct ModelSpec {
  const FamilyProfile* family = nullptr;
  std::string model_type;
  // The whole config.json. Read only inside lib/model: everything else reads the typed fields.
  nlohmann::json config;
  std::string text_config_key;        // "text_config" when the model config is nested, else ""
  std::filesystem::path config_path;  // for messages

  // By enum value; see dim(), flag(), number().
  std::array<std::optional<int64_t>, static_cast<size_t>(Dim::kCount)> dim_values;
  std::array<bool, static_cast<size_t>(Flag::kCount)> flag_values{};
  std::array<std::optional<double>, static_cast<size_t>(Number::kCount)> number_values;

  // The common sizes, copied from dims for convenience.
  int64_t hidden = 0, num_layers = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  // As the router sees them (EMO: shared experts included). The largest layer when the family's
  // config gives per-layer counts (LayerSpec::num_experts; EMO's `num_experts_per_layer`).
  int64_t num_experts = 0;
  int64_t experts_per_token = 0;  // top-k (EMO: shared experts included)
  int64_t shared_experts = 0;
  int64_t expert_width = 0;
  // DeepSeek-V3's and GLM-4.5's multi-token-prediction layers (num_nextn_predict_layers), stored
  // as layers num_layers.. after the decoder layers. Like transformers, moeslice does not compute
  // them (their tensors are accepted unchecked); a slice drops them.
  int64_t mtp_layers = 0;
  RoutingSpec routing;
  ForwardSpec forward;  // the forward pass's numbers; require_forward_support() says if it can

  std::vector<ResolvedTensor> model_tensors;
  std::vector<LayerSpec> layers;
  ExpertNaming expert_naming;  // empty when experts are fused

  const nlohmann::json& text_config() const;
  int64_t dim(Dim dim) const;  // throws std::out_of_range when the family has no such size
  int64_t dim_or(Dim dim, int64_t fallback) const;
  bool flag(Flag flag) const;  // false when the family has no such flag
  std::optional<double> number(Number number) const;
  const ResolvedTensor* find_model_tensor(TensorRole role) const;
  std::vector<int64_t> expert_layers() const;
  // Calls f(const ResolvedTensor&) for every tensor the spec lists: the model's, then each
  // layer's (LayerSpec::for_each_tensor), in order.
  template <class F>
  void for_each_tensor(F&& f) const {
    for (const ResolvedTensor& tensor : model_tensors) f(tensor);
    for (const LayerSpec& layer : layers) layer.for_each_tensor(f);
  }
  // The tensors a newly written checkpoint of this spec holds, in order: every listed tensor
  // that is not optional, then fused experts in their plain form (or, with `mxfp4_experts`, their
  // MXFP4 blocks and scales).
  std::vector<const ResolvedTensor*> fresh_tensors(bool mxfp4_experts = false) const;
  // True when every layer with experts has num_experts of them (what standard loaders need).
  bool uniform_experts() const;
  // Whether the family's config can list a count per layer (EMO's num_experts_per_layer), so
  // that a slice may keep different counts in different layers.
  bool per_layer_expert_counts() const;
  // Routed experts = num_experts minus EMO-style shared ones that the router also scores.
  int64_t routed_experts() const;
  // Which expert of which layer with experts owns the checkpoint tensor `name`; nullopt for any
  // other tensor (fused experts, routers, attention, an expert id beyond the layer's count).
  std::optional<ExpertTensor> expert_tensor(std::string_view name) const;
  // Whether the checkpoint tensor `name` belongs to a multi-token-prediction layer.
  bool in_mtp_layer(std::string_view name) const;
  // The name `tensor` has when its expert is numbered `expert` (slicing renumbers kept experts).
  std::string expert_tensor_name(const ExpertTensor& tensor, int64_t expert) const;
};

// What a config.json may describe, far above any published MoE (DeepSeek-V3: 61 layers of 256
// experts; Kimi K2: 384 experts): a config beyond these is refused before the tensor list is
// built, instead of growing memory without bound.
inline constexpr int64_t kMaxConfigSize = INT32_MAX;  // any one size (hidden, vocab, heads, ...)
inline constexpr int64_t kMaxLayers = 1024;
inline constexpr int64_t kMaxExpertsPerLayer = 16384;
inline constexpr int64_t kMaxExpertsInModel = 1 << 18;  // summed over the layers

// Resolves `config` (the parsed config.json at `config_path`) against its family, found from
// `model_type` (or `text_config.model_type`) and `architectures`. Throws UnsupportedError for an
// unknown family (listing the known ones) and ModelError for missing or invalid keys.
ModelSpec resolve_model_spec(const nlohmann::json& config,
                             const std::filesystem::path& config_path);

// Checks that every tensor the spec expects exists with the expected shape, that fused experts
// are stored in one of their forms (plain or MXFP4), and that no tensor belongs to a layer or an
// expert the config does not describe. Throws ModelError naming the tensor and expected versus
// found.
void check_checkpoint(const ModelSpec& spec, const TensorStore& checkpoint);

// A checkpoint opened (in any format the registry knows), resolved and checked.
struct Model {
  std::shared_ptr<const TensorStore> checkpoint;  // never null
  ModelSpec spec;
};
// Opens `path` through open_tensor_store (format_registry.h), resolves its config and checks its
// tensors; a GGUF model through gguf_model (gguf_checkpoint.h).
Model open_model(const std::filesystem::path& path);

// Drops this process's mapped pages of every tensor of `layer` (they stay in the page cache):
// code that walks a model layer by layer keeps resident memory near one layer.
void release_layer_pages(const TensorStore& checkpoint, const LayerSpec& layer);

}  // namespace moeslice
