// The names a family profile may use, as enums with one name table each: model sizes (Dim),
// boolean config switches (Flag), real-valued settings (Number) and tensor roles (TensorRole).
// Profiles keep their JSON spelling; parsing maps every name to its enum and refuses an unknown
// one, so code asks for `Dim::kNGroup` and a misspelt name fails to compile or fails at profile
// load, never reads as absent.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace moeslice {

// Integer sizes, read from config keys or computed from other sizes (profile `dims`).
enum class Dim : uint8_t {
  kHidden,
  kLayers,
  kHeads,
  kKvHeads,
  kHeadDim,
  kVocab,
  kExperts,  // as the router sees them (EMO: shared experts included)
  kTopK,     // experts per token (EMO: shared experts included)
  kSharedExperts,
  kExpertWidth,
  kDenseWidth,
  kSharedExpertWidth,
  kFirstDense,  // DeepSeek first_k_dense_replace
  kMoeLayerFreq,
  kNGroup,     // DeepSeek routing groups
  kTopkGroup,  // groups a token may route into
  kQLoraRank,
  kKvLoraRank,
  kQkNopeHeadDim,
  kQkRopeHeadDim,
  kVHeadDim,
  kRopeDim,    // dimensions of a head RoPE rotates (MLA: qk_rope_head_dim); default head_dim
  kMtpLayers,  // DeepSeek/GLM multi-token-prediction layers after the decoder layers
  kCount
};

// Boolean config switches (profile `flags`); a flag the family does not declare is false.
enum class Flag : uint8_t {
  kTieWordEmbeddings,
  kAttentionBias,
  kNormTopkProb,
  kQLora,  // DeepSeek: q_lora_rank is set
  kUseSlidingWindow,
  kQkvBias,
  kRopeInterleave,  // DeepSeek MLA: the rope parts are stored interleaved (rope_interleave)
  kUseQkNorm,       // GLM-4.5: per-head q/k RMSNorm (use_qk_norm)
  kCount
};

// Real-valued settings (profile `numbers`); absent when neither config nor profile gives one.
enum class Number : uint8_t {
  kRmsNormEps,
  kRopeTheta,
  kClipQkv,
  kMaxPositionEmbeddings,
  kSlidingWindow,
  kRoutedScalingFactor,
  kPartialRotaryFactor,  // the share of a head RoPE rotates (GLM-4.5: 0.5)
  kSwigluLimit,          // gpt-oss: the clamp of the experts' gate and up
  kCount
};

// What a tensor is to the model, whatever the family calls it (profile `role`).
enum class TensorRole : uint8_t {
  kEmbed,
  kFinalNorm,
  kLmHead,
  kAttnNorm,
  kFfnNorm,
  kQProj,
  kKProj,
  kVProj,
  kOProj,
  kQBias,
  kKBias,
  kVBias,
  kOBias,
  kQNorm,
  kKNorm,
  kSinks,   // gpt-oss attention sinks
  kQAProj,  // DeepSeek MLA: q_a_proj, q_a_layernorm, q_b_proj, kv_a_proj_with_mqa, ...
  kQALayernorm,
  kQBProj,
  kKvAProjWithMqa,
  kKvALayernorm,
  kKvBProj,
  kRouter,
  kRouterBias,
  kRouterCorrectionBias,
  kSharedGateProj,
  kSharedUpProj,
  kSharedDownProj,
  kSharedExpertGate,
  kGateProj,  // an expert's or a dense layer's MLP
  kUpProj,
  kDownProj,
  kGateUpProj,  // gpt-oss fused experts, plain and MXFP4 forms
  kGateUpProjBias,
  kDownProjBias,
  kGateUpProjBlocks,
  kGateUpProjScales,
  kDownProjBlocks,
  kDownProjScales,
  // gpt-oss's experts as llama.cpp stores them (a GGUF): gate and up apart, each [E, out, in]
  kGateExps,
  kUpExps,
  kDownExps,
  kCount
};

// What kind of values a role holds (make-random draws each kind differently).
enum class RoleKind : uint8_t {
  kMatrix,     // a linear layer's weight
  kEmbedding,  // token embeddings
  kNorm,       // an RMSNorm weight (around 1)
  kAdditive,   // biases and attention sinks
  kGate,       // scores a softmax or sigmoid decides on: the router, Qwen2-MoE's shared gate
};

// The profile spelling of each value ("n_group", "norm_topk_prob", "router", ...).
std::string_view name(Dim dim);
std::string_view name(Flag flag);
std::string_view name(Number number);
std::string_view name(TensorRole role);

// The value a profile spelling names; nullopt for an unknown name. Enum is Dim, Flag, Number or
// TensorRole.
template <typename Enum>
std::optional<Enum> from_name(std::string_view spelling);
template <>
std::optional<Dim> from_name<Dim>(std::string_view spelling);
template <>
std::optional<Flag> from_name<Flag>(std::string_view spelling);
template <>
std::optional<Number> from_name<Number>(std::string_view spelling);
template <>
std::optional<TensorRole> from_name<TensorRole>(std::string_view spelling);

RoleKind role_kind(TensorRole role);
// The router's weight and its bias or correction bias: rows per expert that are not part of
// any expert's own weights.
bool is_router_part(TensorRole role);

}  // namespace moeslice
