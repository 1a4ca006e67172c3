// The table of GGUF architectures and moeslice families.
#include "model/gguf_architecture.h"

#include <array>
#include <utility>

namespace moeslice {

std::string_view family_of_gguf_architecture(std::string_view architecture) {
  // llama.cpp converts Mixtral to "llama" with experts, DeepSeek V2/V3 to "deepseek2".
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kTable{{
      {"deepseek2", "deepseek_v3"},
      {"glm4moe", "glm4_moe"},
      {"gpt-oss", "gpt_oss"},
      {"llama", "mixtral"},
      {"olmoe", "olmoe"},
      {"qwen2moe", "qwen2_moe"},
      {"qwen3moe", "qwen3_moe"},
  }};
  for (const auto& [gguf, family] : kTable)
    if (gguf == architecture) return family;
  return {};
}

GgufTensorName gguf_tensor_name(TensorRole role, bool expert) {
  if (expert) {
    switch (role) {
      case TensorRole::kGateProj:
        return {"ffn_gate_exps.weight", true};
      case TensorRole::kUpProj:
        return {"ffn_up_exps.weight", true};
      case TensorRole::kDownProj:
        return {"ffn_down_exps.weight", true};
      default:
        return {};
    }
  }
  switch (role) {
    case TensorRole::kEmbed:
      return {"token_embd.weight"};
    case TensorRole::kFinalNorm:
      return {"output_norm.weight"};
    case TensorRole::kLmHead:
      return {"output.weight"};
    case TensorRole::kAttnNorm:
      return {"attn_norm.weight"};
    case TensorRole::kFfnNorm:
      return {"ffn_norm.weight"};
    case TensorRole::kQProj:
      return {"attn_q.weight"};
    case TensorRole::kKProj:
      return {"attn_k.weight"};
    case TensorRole::kVProj:
      return {"attn_v.weight"};
    case TensorRole::kOProj:
      return {"attn_output.weight"};
    case TensorRole::kQBias:
      return {"attn_q.bias"};
    case TensorRole::kKBias:
      return {"attn_k.bias"};
    case TensorRole::kVBias:
      return {"attn_v.bias"};
    case TensorRole::kOBias:
      return {"attn_output.bias"};
    case TensorRole::kQNorm:
      return {"attn_q_norm.weight"};
    case TensorRole::kKNorm:
      return {"attn_k_norm.weight"};
    case TensorRole::kRouter:
      return {"ffn_gate_inp.weight"};
    case TensorRole::kSharedGateProj:
      return {"ffn_gate_shexp.weight"};
    case TensorRole::kSharedUpProj:
      return {"ffn_up_shexp.weight"};
    case TensorRole::kSharedDownProj:
      return {"ffn_down_shexp.weight"};
    case TensorRole::kSharedExpertGate:
      return {"ffn_gate_inp_shexp.weight"};
    case TensorRole::kGateProj:
      return {"ffn_gate.weight"};
    case TensorRole::kUpProj:
      return {"ffn_up.weight"};
    case TensorRole::kDownProj:
      return {"ffn_down.weight"};
    default:
      return {};
  }
}

}  // namespace moeslice
