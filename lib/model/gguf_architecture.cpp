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

namespace {

// glm4moe's and deepseek2's own names (llama.cpp's LLM_TENSOR_ATTN_POST_NORM, FFN_EXP_PROBS_B and
// the MLA tensors); "" where the common table applies.
std::string_view group_routed_name(std::string_view architecture, TensorRole role) {
  const bool glm = architecture == "glm4moe";
  const bool deepseek = architecture == "deepseek2";
  if (!glm && !deepseek) return {};
  switch (role) {
    case TensorRole::kRouterCorrectionBias:
      return "exp_probs_b.bias";
    case TensorRole::kFfnNorm:
      return glm ? "post_attention_norm.weight" : "";
    case TensorRole::kQAProj:
      return deepseek ? "attn_q_a.weight" : "";
    case TensorRole::kQALayernorm:
      return deepseek ? "attn_q_a_norm.weight" : "";
    case TensorRole::kQBProj:
      return deepseek ? "attn_q_b.weight" : "";
    case TensorRole::kKvAProjWithMqa:
      return deepseek ? "attn_kv_a_mqa.weight" : "";
    case TensorRole::kKvALayernorm:
      return deepseek ? "attn_kv_a_norm.weight" : "";
    case TensorRole::kKvBProj:
      return deepseek ? "attn_kv_b.weight" : "";
    default:
      return {};
  }
}

}  // namespace

GgufTensorName gguf_tensor_name(std::string_view architecture, TensorRole role, bool expert) {
  if (!expert)
    if (const std::string_view own = group_routed_name(architecture, role); !own.empty())
      return {own};
  return gguf_tensor_name(role, expert);
}

GgufTensorName gpt_oss_gguf_tensor_name(TensorRole role) {
  switch (role) {
    case TensorRole::kFfnNorm:
      return {"post_attention_norm.weight"};
    case TensorRole::kSinks:
      return {"attn_sinks.weight"};
    case TensorRole::kRouterBias:
      return {"ffn_gate_inp.bias"};
    case TensorRole::kGateExps:
      return {"ffn_gate_exps.weight"};
    case TensorRole::kUpExps:
      return {"ffn_up_exps.weight"};
    case TensorRole::kDownExps:
      return {"ffn_down_exps.weight"};
    case TensorRole::kDownProjBias:
      return {"ffn_down_exps.bias"};
    case TensorRole::kGateProj:
    case TensorRole::kUpProj:
    case TensorRole::kDownProj:
    case TensorRole::kGateUpProj:
    case TensorRole::kGateUpProjBias:
    case TensorRole::kGateUpProjBlocks:
    case TensorRole::kGateUpProjScales:
    case TensorRole::kDownProjBlocks:
    case TensorRole::kDownProjScales:
      return {};
    default:
      return gguf_tensor_name(role, false);
  }
}

}  // namespace moeslice
