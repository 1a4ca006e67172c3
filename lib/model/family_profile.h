// A model family described as data: the parsed form of one profiles/*.json file. It says which
// config keys hold the model's sizes, how tensors are named and shaped, which layers carry experts,
// and which routing and block layout the family uses. The files are compiled into the binary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moeslice {

enum class RoutingKind {
  kSoftmaxTopK,              // softmax over all experts, top-k, renormalised if norm_topk_prob
  kSoftmaxTopKRenormalised,  // Mixtral: always renormalised
  kEmoSplitSoftmax,          // EMO: routed and shared experts softmaxed separately
  kDeepseekGroupSigmoid,     // DeepSeek-V3: sigmoid scores, correction bias, group top-k
  kGptOssTopKSoftmax,        // gpt-oss: top-k of the logits, then softmax over those k
};

enum class SharedExpertKind {
  kNone,
  kLastRouted,     // EMO: the last `shared_experts` router outputs, always chosen, weight 1.0
  kSeparateGated,  // Qwen2-MoE: its own MLP scaled by sigmoid(x . shared_expert_gate)
  kSeparate,       // DeepSeek: its own MLP, unweighted
};

enum class SparseLayerRule {
  kAll,          // every layer has experts
  kQwen2Moe,     // not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0
  kFirstKDense,  // i >= first_k_dense_replace and i % moe_layer_freq == 0
};

enum class NormPlacement { kPre, kPost };
enum class QkNorm { kNone, kWholeVector, kPerHead };
// Where the RMSNorm weight multiplies relative to the cast back to the activation dtype; the two
// orders agree in fp32 and differ in bf16.
enum class RmsNormOrder { kCastThenWeight, kWeightThenCast };

// How one size ("hidden", "experts", ...) is read from config.json.
struct DimRule {
  std::string key;                      // config key, if any
  std::optional<std::string> fallback;  // expression used when the key is absent or null
  std::optional<std::string> expr;      // always computed from other dims
  std::optional<int64_t> value;         // a constant of the family
};

struct FlagRule {
  std::string key;
  bool fallback = false;
  bool presence = false;  // true when the flag means "the key is set and not null"
};

struct NumberRule {
  std::string key;
  std::optional<double> fallback;
};

// One tensor of the family, with `{layer}` / `{expert}` placeholders in its name and its shape
// as expressions over dims.
struct TensorRule {
  std::string role;
  std::string name;
  std::vector<std::string> shape;
  std::string when;                // flag that must be true for the tensor to exist
  std::string unless;              // flag that must be false
  std::optional<int> expert_axis;  // axis indexed by expert (router rows, fused experts)
  bool optional = false;           // may be absent (e.g. one of two storage forms)
};

struct FamilyProfile {
  int schema = 0;
  std::string family;
  std::string description;
  std::vector<std::string> model_types;
  std::vector<std::string> architectures;
  bool forward_supported = false;
  std::vector<std::pair<std::string, DimRule>> dims;
  std::vector<std::pair<std::string, FlagRule>> flags;
  std::vector<std::pair<std::string, NumberRule>> numbers;
  SparseLayerRule sparse_layers = SparseLayerRule::kAll;
  RoutingKind routing = RoutingKind::kSoftmaxTopK;
  SharedExpertKind shared_expert_kind = SharedExpertKind::kNone;
  NormPlacement norm_placement = NormPlacement::kPre;
  QkNorm qk_norm = QkNorm::kNone;
  RmsNormOrder rms_norm_order = RmsNormOrder::kCastThenWeight;
  // Config keys the slicer rewrites: "num_experts", "experts_per_token", optional
  // "num_shared_experts", "group_count" and "experts_per_layer" (a list of per-layer expert
  // counts, which the family's own code reads; only then may a slice keep different counts).
  std::vector<std::pair<std::string, std::string>> slice_config_keys;
  std::vector<TensorRule> model_tensors;   // once per model
  std::vector<TensorRule> layer_tensors;   // every layer (attention, norms)
  std::vector<TensorRule> sparse_tensors;  // layers with experts (router, shared, fused experts)
  std::vector<TensorRule> expert_tensors;  // once per expert in a layer with experts
  std::vector<TensorRule> dense_tensors;   // layers without experts (dense MLP)
  std::string expert_prefix;     // every tensor of expert e starts with it (FP8 scales included)
  nlohmann::json random_config;  // extra config keys written by make-random

  const DimRule* find_dim(std::string_view name) const;
  std::string slice_config_key(std::string_view what) const;  // "" when the family has none
};

// Every family compiled into the binary, sorted by name. Parsing errors in an embedded profile
// are programming errors and throw std::logic_error.
const std::vector<FamilyProfile>& all_families();
// Throws UnsupportedError listing the known families.
const FamilyProfile& family_by_name(std::string_view family);
// "deepseek_v3, emo, flex_olmo, ..."
std::string known_family_names();

// Parses one profile (exposed for tests of the profile format). `source` names it in errors.
FamilyProfile parse_family_profile(const nlohmann::json& profile, std::string_view source);

}  // namespace moeslice
