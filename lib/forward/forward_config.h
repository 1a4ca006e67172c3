// What the forward pass needs from a model beyond its ModelSpec: the numbers it computes with
// (eps, RoPE theta, clip_qkv, context length) and the refusals of config features it does not
// implement. Everything here is decided once per model, before any token is computed, so an
// unsupported checkpoint fails fast and names the config key instead of producing wrong logits.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "model/model_spec.h"

namespace moeslice {

// The arithmetic of the forward pass. kFp32 (the default): weights converted to fp32, all maths in
// fp32. kBf16 (`--compute bf16`): BF16 weights and activations with fp32 accumulation, rounded to
// BF16 where transformers' bf16 run rounds (tests/reference/README.md, "Numerics modes"); needs a
// build with oneDNN (kernels/gemm_bf16.h).
enum class ComputeMode { kFp32, kBf16 };
// "fp32" / "bf16", as the --compute flag spells them.
std::string_view compute_mode_name(ComputeMode mode);

struct ForwardConfig {
  float rms_norm_eps = 1e-6f;
  double rope_theta = 10000.0;
  std::optional<float> clip_qkv;         // olmoe only: clamp q, k, v after the q/k norms
  std::optional<int64_t> max_positions;  // max_position_embeddings, when the config has it
  // A sliding attention window that applies; sequences longer than it are refused.
  std::optional<int64_t> sliding_window;
};

// Checks `spec` against what the CPU forward pass implements and returns its numbers. Throws
// UnsupportedError naming the family (forward_supported == false) or the config key (hidden_act,
// rope_scaling, rope_parameters.rope_type, clip_qkv outside olmoe, attention_bias for mixtral,
// EMO's always_active_experts / ghost_extend_eval / dense_mlp_bias / varying shared counts,
// norm_topk_prob together with EMO shared experts, an olmoe head_dim other than hidden / heads).
ForwardConfig resolve_forward_config(const ModelSpec& spec);

// Throws UnsupportedError naming the sliding-window key when a sequence of `length` tokens would
// be cut by the model's sliding window.
void check_sequence_length(const ModelSpec& spec, const ForwardConfig& config, int64_t length);

}  // namespace moeslice
