// A model family described as data: the parsed form of one profiles/*.json file. It says which
// config keys hold the model's sizes, how tensors are named and shaped, which layers carry experts,
// which attention, routing and block layout the family uses, how its experts are stored, and which
// config values its forward pass refuses. The files are compiled into the binary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config_refusal.h"
#include "model/model_vocabulary.h"

namespace moeslice {

// How a router turns its logits into chosen experts and weights. Each kind the forward pass
// computes is one router block in lib/forward/routing/ (router_registry.cpp maps kind to block).
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

// The attention sublayer's maths. Each kind the forward pass computes is one block in
// lib/forward/attention/ (attention_registry.cpp maps kind to block).
enum class AttentionKind {
  kStandard,  // q/k/v/o projections, optional biases and q/k norms, rotate-half RoPE, causal GQA
  kMla,       // DeepSeek-V3 multi-head latent attention (low-rank q and kv, shared RoPE key)
};
// When a config's sliding_window applies.
enum class SlidingWindowRule {
  kAlways,                // any integer sliding_window
  kWhenUseSlidingWindow,  // Qwen: only with use_sliding_window true
  // gpt-oss: on the layers `layer_types` names "sliding_attention" (the others attend to every
  // earlier token); computed, never refused.
  kLayerTypes,
};
// bf16 RoPE: Llama style casts the cos/sin tables to BF16 and rounds every product; OLMo2 style
// rotates in fp32 against fp32 tables and rounds once.
enum class RopeBf16 { kCastTables, kRotateFp32 };
// What an expert computes between its gate/up products and its down projection.
enum class ExpertActivation {
  kSiluGlu,        // silu(gate) * up
  kClampedSwiglu,  // gpt-oss: clamped at swiglu_limit, (up + 1) * gate * sigmoid(1.702 gate)
};
// How a layer stores its experts: one set of tensors per expert, or every expert in one tensor
// indexed along the expert axis (gpt-oss; plain or MXFP4 form).
enum class ExpertStorage { kPerExpert, kFused };

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
  TensorRole role = TensorRole::kEmbed;
  std::string name;
  std::vector<std::string> shape;
  std::optional<Flag> when;        // flag that must be true for the tensor to exist
  std::optional<Flag> unless;      // flag that must be false
  std::optional<int> expert_axis;  // axis indexed by expert (router rows, fused experts)
  bool optional = false;           // may be absent (e.g. one of two storage forms)
};

// Config keys the slicer rewrites ("" when the family has none). Only a family whose config can
// list per-layer expert counts (EMO's num_experts_per_layer) may be sliced to different counts.
struct SliceConfigKeys {
  std::string num_experts;
  std::string experts_per_token;
  std::string num_shared_experts;
  std::string group_count;        // routing groups (DeepSeek n_group)
  std::string experts_per_layer;  // a list of per-layer counts, read by the family's own code
};

struct FamilyProfile {
  int schema = 0;
  std::string family;
  std::string description;
  std::vector<std::string> model_types;
  std::vector<std::string> architectures;
  bool forward_supported = false;
  std::vector<std::pair<Dim, DimRule>> dims;
  std::vector<std::pair<Flag, FlagRule>> flags;
  std::vector<std::pair<Number, NumberRule>> numbers;
  SparseLayerRule sparse_layers = SparseLayerRule::kAll;
  RoutingKind routing = RoutingKind::kSoftmaxTopK;
  SharedExpertKind shared_expert_kind = SharedExpertKind::kNone;
  AttentionKind attention = AttentionKind::kStandard;
  SlidingWindowRule sliding_window = SlidingWindowRule::kAlways;
  bool clip_qkv = false;  // the attention clamps q, k, v to the config's clip_qkv (OLMoE)
  bool yarn = false;      // a YaRN rope_scaling is computed (attention.rope_scaling "yarn")
  // gpt-oss: one learned logit per head in every attention softmax's denominator (role "sinks").
  bool attention_sinks = false;
  ExpertActivation expert_activation = ExpertActivation::kSiluGlu;
  NormPlacement norm_placement = NormPlacement::kPre;
  QkNorm qk_norm = QkNorm::kNone;
  RmsNormOrder rms_norm_order = RmsNormOrder::kCastThenWeight;
  RopeBf16 rope_bf16 = RopeBf16::kCastTables;
  ExpertStorage expert_storage = ExpertStorage::kPerExpert;
  SliceConfigKeys slice_config_keys;
  // Config values the CPU forward pass refuses for this family, checked in order after the
  // refusals every family shares (forward_spec.h).
  std::vector<ConfigRefusal> forward_refusals;
  std::vector<TensorRule> model_tensors;   // once per model
  std::vector<TensorRule> layer_tensors;   // every layer (attention, norms)
  std::vector<TensorRule> sparse_tensors;  // layers with experts (router, shared, fused experts)
  std::vector<TensorRule> expert_tensors;  // once per expert in a layer with experts
  std::vector<TensorRule> dense_tensors;   // layers without experts (dense MLP)
  // Every tensor of expert e starts with it (FP8 scales included); "" when experts are fused.
  std::string expert_prefix;
  nlohmann::json random_config;  // extra config keys written by make-random

  const DimRule* find_dim(Dim dim) const;
  bool declares(Flag flag) const;
};

// Every family compiled into the binary, sorted by name. Parsing errors in an embedded profile
// are programming errors and throw std::logic_error.
const std::vector<FamilyProfile>& all_families();
// Throws UnsupportedError listing the known families.
const FamilyProfile& family_by_name(std::string_view family);
// A kind as its profile spells it ("emo_split_softmax", "standard"), for messages.
std::string_view routing_kind_name(RoutingKind kind);
std::string_view attention_kind_name(AttentionKind kind);

// "deepseek_v3, emo, flex_olmo, ..."
std::string known_family_names();

// Parses one profile (exposed for tests of the profile format). `source` names it in errors;
// every name (a dim, flag, number or role, also inside shape expressions and `when`/`unless`) must
// be one of model_vocabulary.h and, where used, declared by the profile. Throws std::logic_error.
FamilyProfile parse_family_profile(const nlohmann::json& profile, std::string_view source);

}  // namespace moeslice
