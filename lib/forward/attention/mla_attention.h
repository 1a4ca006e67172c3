// DeepSeek-V3's multi-head latent attention (AttentionKind::kMla; transformers'
// DeepseekV3Attention): q = q_b(RMSNorm(q_a(x))) with q_lora_rank (q_proj(x) without);
// kv_a_proj_with_mqa(x) gives the compressed kv (kv_lora_rank) and one RoPE key shared by every
// head (qk_rope_head_dim); kv_b(RMSNorm(compressed)) gives each head's no-RoPE key
// (qk_nope_head_dim) and value (v_head_dim). RoPE rotates only the rope parts of q and k (stored
// interleaved when rope_interleave: pairs re-laid as halves first, as
// apply_rotary_pos_emb_interleave does); a head's query and key are [nope, rope], the softmax
// scale (qk_nope + qk_rope)^-0.5 times YaRN's mscale^2. The q_a and kv_a norms use eps 1e-6
// whatever rms_norm_eps says, as the modeling code builds them. Written once over a precision
// policy, instantiated for Fp32Math and Bf16Math.
#pragma once

#include <memory>

#include "forward/attention/attention_block.h"

namespace moeslice {

template <class Math>
std::unique_ptr<AttentionBlock> make_mla_attention(const AttentionParams& params);

}  // namespace moeslice
