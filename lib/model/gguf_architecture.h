// The GGUF architecture names (`general.architecture`) of the MoE families moeslice has a profile
// for, so that a plan made on a Hugging Face checkpoint (which records its moeslice family) is
// checked against the GGUF of the same model; and llama.cpp's tensor names of each tensor role,
// the one table by which a GGUF's tensors take their places in a ModelSpec (gguf_checkpoint.h).
#pragma once

#include <string_view>

#include "model/model_vocabulary.h"

namespace moeslice {

// The moeslice family of a llama.cpp architecture ("qwen3moe" -> "qwen3_moe", "llama" ->
// "mixtral"); "" for an architecture moeslice has no family for (a plan's family is then not
// checked).
std::string_view family_of_gguf_architecture(std::string_view architecture);

// How a tensor role is stored in llama.cpp's GGUF layout: its name template ("blk.{layer}." is
// prepended for layer tensors) and whether it is a stack of every expert's matrix, the expert
// index outermost (`ffn_gate_exps.weight`, ggml ne {in, out, experts}).
struct GgufTensorName {
  std::string_view name;  // "attn_q.weight", "token_embd.weight"; "" when GGUF has no such role
  bool stacked_experts = false;
};
// The same for every architecture llama.cpp names with its common tensor map (olmoe, qwen2moe,
// qwen3moe, llama): the expert roles (gate/up/down of an expert) are the stacked tensors.
GgufTensorName gguf_tensor_name(TensorRole role, bool expert);
// gpt-oss (llama.cpp's LLM_ARCH_OPENAI_MOE, convert_hf_to_gguf's GptOssModel): the post-attention
// norm is `post_attention_norm`, the sinks `attn_sinks.weight`, the router and expert biases
// `.bias`, the experts llama.cpp's split stacks (roles gate_exps, up_exps, down_exps, each a whole
// layer tensor). gate_up_proj_bias and the fused forms have no tensor of their own ("").
GgufTensorName gpt_oss_gguf_tensor_name(TensorRole role);

// The same for one architecture: the names llama.cpp gives only some architectures first
// (glm4moe's post-attention norm `post_attention_norm`, the sigmoid routers' correction bias
// `exp_probs_b.bias`, deepseek2's MLA projections `attn_q_a`, `attn_kv_a_mqa`, ... and the unsplit
// `attn_kv_b` of older files), then the common table.
GgufTensorName gguf_tensor_name(std::string_view architecture, TensorRole role, bool expert);

}  // namespace moeslice
