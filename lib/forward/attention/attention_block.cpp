// The attention settings of a model and the registry of attention blocks: one case per
// AttentionKind.
#include "forward/attention/attention_block.h"

#include <fmt/core.h>

#include "common/error.h"
#include "forward/attention/mla_attention.h"
#include "forward/attention/standard_attention.h"
#include "kernels/precision.h"

namespace moeslice {

AttentionParams attention_params(const ModelSpec& spec, const ForwardConfig& config) {
  const FamilyProfile& family = *spec.family;
  AttentionParams params{family.attention,
                         static_cast<size_t>(spec.heads),
                         static_cast<size_t>(spec.kv_heads),
                         static_cast<size_t>(spec.head_dim),
                         family.qk_norm,
                         config.rms_norm_eps,
                         config.clip_qkv,
                         norm_weight_order(family),
                         family.rope_bf16};
  if (family.attention == AttentionKind::kMla) {
    const auto size = [&spec](Dim dim) { return static_cast<size_t>(spec.dim_or(dim, 0)); };
    params.q_lora_rank = spec.flag(Flag::kQLora) ? size(Dim::kQLoraRank) : 0;
    params.kv_lora_rank = size(Dim::kKvLoraRank);
    params.qk_nope_head_dim = size(Dim::kQkNopeHeadDim);
    params.qk_rope_head_dim = size(Dim::kQkRopeHeadDim);
    params.v_head_dim = size(Dim::kVHeadDim);
    params.rope_interleave = spec.flag(Flag::kRopeInterleave);
    params.scale_factor = config.attention_scale_factor;
  }
  return params;
}

template <class Math>
std::unique_ptr<AttentionBlock> make_attention_block(const AttentionParams& params) {
  // A new kind: its enum value in model/family_profile.h, its block file here, a case below.
  switch (params.kind) {
    case AttentionKind::kStandard:
      return make_standard_attention<Math>(params);
    case AttentionKind::kMla:
      return make_mla_attention<Math>(params);
  }
  throw UnsupportedError(fmt::format("attention kind '{}' is not implemented by the forward pass",
                                     attention_kind_name(params.kind)));
}

template std::unique_ptr<AttentionBlock> make_attention_block<kernels::Fp32Math>(
    const AttentionParams&);
template std::unique_ptr<AttentionBlock> make_attention_block<kernels::Bf16Math>(
    const AttentionParams&);

}  // namespace moeslice
