// The standard attention block (AttentionKind::kStandard) of every family the forward pass
// supports: q/k/v projections (with biases where the model has them), the family's q/k RMSNorm
// (whole projected vector: olmoe, flex_olmo; per head: qwen3_moe, glm4_moe with use_qk_norm),
// olmoe's clip_qkv, rotate-half RoPE (glm4_moe: on the first partial_rotary_factor of each head),
// causal GQA attention and the output projection. Written once over a precision policy
// (kernels/precision.h), instantiated for Fp32Math and Bf16Math.
#pragma once

#include <memory>

#include "forward/attention/attention_block.h"

namespace moeslice {

template <class Math>
std::unique_ptr<AttentionBlock> make_standard_attention(const AttentionParams& params);

}  // namespace moeslice
