// The name tables of the profile vocabulary: one row per enum value, in enum order.
#include "model/model_vocabulary.h"

#include <array>
#include <cstddef>

namespace moeslice {
namespace {

template <typename Enum, size_t N>
constexpr bool covers_enum(const std::array<std::string_view, N>&) {
  return N == static_cast<size_t>(Enum::kCount);
}

constexpr std::array<std::string_view, 23> kDimNames = {"hidden",
                                                        "layers",
                                                        "heads",
                                                        "kv_heads",
                                                        "head_dim",
                                                        "vocab",
                                                        "experts",
                                                        "top_k",
                                                        "shared_experts",
                                                        "expert_width",
                                                        "dense_width",
                                                        "shared_expert_width",
                                                        "first_dense",
                                                        "moe_layer_freq",
                                                        "n_group",
                                                        "topk_group",
                                                        "q_lora_rank",
                                                        "kv_lora_rank",
                                                        "qk_nope_head_dim",
                                                        "qk_rope_head_dim",
                                                        "v_head_dim",
                                                        "rope_dim",
                                                        "mtp_layers"};
static_assert(covers_enum<Dim>(kDimNames));

constexpr std::array<std::string_view, 8> kFlagNames = {
    "tie_word_embeddings", "attention_bias", "norm_topk_prob",  "q_lora",
    "use_sliding_window",  "qkv_bias",       "rope_interleave", "use_qk_norm"};
static_assert(covers_enum<Flag>(kFlagNames));

constexpr std::array<std::string_view, 8> kNumberNames = {"rms_norm_eps",
                                                          "rope_theta",
                                                          "clip_qkv",
                                                          "max_position_embeddings",
                                                          "sliding_window",
                                                          "routed_scaling_factor",
                                                          "partial_rotary_factor",
                                                          "swiglu_limit"};
static_assert(covers_enum<Number>(kNumberNames));

struct RoleRow {
  std::string_view name;
  RoleKind kind;
  bool router_part = false;
};

constexpr std::array<RoleRow, 42> kRoles = {{
    {"embed", RoleKind::kEmbedding},
    {"final_norm", RoleKind::kNorm},
    {"lm_head", RoleKind::kMatrix},
    {"attn_norm", RoleKind::kNorm},
    {"ffn_norm", RoleKind::kNorm},
    {"q_proj", RoleKind::kMatrix},
    {"k_proj", RoleKind::kMatrix},
    {"v_proj", RoleKind::kMatrix},
    {"o_proj", RoleKind::kMatrix},
    {"q_bias", RoleKind::kAdditive},
    {"k_bias", RoleKind::kAdditive},
    {"v_bias", RoleKind::kAdditive},
    {"o_bias", RoleKind::kAdditive},
    {"q_norm", RoleKind::kNorm},
    {"k_norm", RoleKind::kNorm},
    {"sinks", RoleKind::kAdditive},
    {"q_a_proj", RoleKind::kMatrix},
    {"q_a_layernorm", RoleKind::kNorm},
    {"q_b_proj", RoleKind::kMatrix},
    {"kv_a_proj_with_mqa", RoleKind::kMatrix},
    {"kv_a_layernorm", RoleKind::kNorm},
    {"kv_b_proj", RoleKind::kMatrix},
    {"router", RoleKind::kGate, true},
    {"router_bias", RoleKind::kAdditive, true},
    {"router_correction_bias", RoleKind::kAdditive, true},
    {"shared_gate_proj", RoleKind::kMatrix},
    {"shared_up_proj", RoleKind::kMatrix},
    {"shared_down_proj", RoleKind::kMatrix},
    {"shared_expert_gate", RoleKind::kGate},
    {"gate_proj", RoleKind::kMatrix},
    {"up_proj", RoleKind::kMatrix},
    {"down_proj", RoleKind::kMatrix},
    {"gate_up_proj", RoleKind::kMatrix},
    {"gate_up_proj_bias", RoleKind::kAdditive},
    {"down_proj_bias", RoleKind::kAdditive},
    {"gate_up_proj_blocks", RoleKind::kMatrix},
    {"gate_up_proj_scales", RoleKind::kMatrix},
    {"down_proj_blocks", RoleKind::kMatrix},
    {"down_proj_scales", RoleKind::kMatrix},
    {"gate_exps", RoleKind::kMatrix},
    {"up_exps", RoleKind::kMatrix},
    {"down_exps", RoleKind::kMatrix},
}};
static_assert(kRoles.size() == static_cast<size_t>(TensorRole::kCount));

const RoleRow& row(TensorRole role) { return kRoles[static_cast<size_t>(role)]; }

template <typename Enum, typename Table, typename NameOf>
std::optional<Enum> find_name(const Table& table, NameOf name_of, std::string_view spelling) {
  for (size_t i = 0; i < table.size(); ++i)
    if (name_of(table[i]) == spelling) return static_cast<Enum>(i);
  return std::nullopt;
}

std::string_view itself(std::string_view text) { return text; }

}  // namespace

std::string_view name(Dim dim) { return kDimNames[static_cast<size_t>(dim)]; }
std::string_view name(Flag flag) { return kFlagNames[static_cast<size_t>(flag)]; }
std::string_view name(Number number) { return kNumberNames[static_cast<size_t>(number)]; }
std::string_view name(TensorRole role) { return row(role).name; }

template <>
std::optional<Dim> from_name<Dim>(std::string_view spelling) {
  return find_name<Dim>(kDimNames, itself, spelling);
}
template <>
std::optional<Flag> from_name<Flag>(std::string_view spelling) {
  return find_name<Flag>(kFlagNames, itself, spelling);
}
template <>
std::optional<Number> from_name<Number>(std::string_view spelling) {
  return find_name<Number>(kNumberNames, itself, spelling);
}
template <>
std::optional<TensorRole> from_name<TensorRole>(std::string_view spelling) {
  return find_name<TensorRole>(
      kRoles, [](const RoleRow& r) { return r.name; }, spelling);
}

RoleKind role_kind(TensorRole role) { return row(role).kind; }
bool is_router_part(TensorRole role) { return row(role).router_part; }

}  // namespace moeslice
