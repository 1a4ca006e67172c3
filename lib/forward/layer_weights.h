// The weights of one decoder layer as the forward pass uses them: views into the mapped
// checkpoint for every matrix (converted to fp32 block by block when multiplied, so the model is
// never held in fp32), and fp32 copies of the small vectors (norm weights, biases, Qwen2-MoE's
// shared-expert gate). Built from the ModelSpec's resolved tensor names, so every family's naming
// lives in its profile and nowhere here.
//
// Thread safety: immutable after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "format/tensor_store.h"
#include "kernels/moe.h"
#include "kernels/weight_matrix.h"
#include "model/model_spec.h"

namespace moeslice {

struct AttentionWeights {
  kernels::WeightMatrix q, k, v, o;  // MLA: q is q_proj when there is no q_lora_rank
  std::vector<float> q_bias, k_bias, v_bias, o_bias;  // empty when the model has none
  std::vector<float> q_norm, k_norm;  // [heads * head_dim] / [kv_heads * head_dim] or [head_dim]
  // MLA (DeepSeek-V3): q_a_proj/q_b_proj (with q_lora_rank), kv_a_proj_with_mqa, kv_b_proj, and
  // the q_a/kv_a RMSNorm weights (q_a_norm empty without q_lora_rank).
  kernels::WeightMatrix q_a, q_b, kv_a, kv_b;
  std::vector<float> q_a_norm, kv_a_norm;
  // gpt-oss: the learned sink logit of each head [heads] (empty: none), and this layer's sliding
  // window (0: every earlier token).
  std::vector<float> sinks;
  size_t window = 0;
};

struct MoeWeights {
  kernels::WeightMatrix router;              // [experts, hidden]
  std::vector<float> router_choice_bias;     // [experts] e_score_correction_bias, or empty
  std::vector<float> router_bias;            // [experts] added to the logits (gpt-oss), or empty
  std::vector<kernels::ExpertMlp> experts;   // by expert id
  std::optional<kernels::ExpertMlp> shared;  // Qwen2-MoE's and DeepSeek's shared experts
  std::vector<float> shared_gate;            // [hidden]: Qwen2-MoE's gate; empty: unweighted
  // Fused experts' biases by expert ([experts * width], [experts * width], [experts * hidden]),
  // which the experts' ExpertMlp spans point into; empty otherwise.
  std::vector<float> gate_bias, up_bias, down_bias;
};

struct LayerWeights {
  int64_t index = 0;
  std::vector<float> attn_norm;  // pre-norm: before attention; post-norm: on its output
  std::vector<float> ffn_norm;   // pre-norm: before the MLP/MoE; post-norm: on its output
  AttentionWeights attention;
  std::optional<MoeWeights> moe;          // layers with experts
  std::optional<kernels::ExpertMlp> mlp;  // dense layers
};

struct ModelWeights {
  const TensorView* embed = nullptr;  // [vocab, hidden]
  kernels::WeightMatrix embed_rows;   // the same, its rows converted per token
  std::vector<float> final_norm;
  kernels::WeightMatrix lm_head;  // the embedding when tied
  std::vector<LayerWeights> layers;
};

// Throws ModelError when a tensor the spec names is missing or of a type the forward pass does not
// compute with (weight_views.h), or when a tied
// model stores an lm_head.weight different from its embedding (transformers would ignore it;
// refusing keeps a mislabelled checkpoint from being evaluated as something it is not).
ModelWeights load_model_weights(const ModelSpec& spec, const TensorStore& checkpoint);

}  // namespace moeslice
