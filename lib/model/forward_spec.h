// What the CPU forward pass computes a model with, resolved from its config (eps, RoPE theta,
// clip_qkv, context length, sliding window), and whether it can compute the model at all: the
// refusals every family shares (hidden_act, rope_scaling, rope_parameters.rope_type, an odd head
// size, clip_qkv outside the families that apply it, a quantization_config other than block-scaled
// FP8) followed by the family's own
// `forward_refusals` (config_refusal.h). Decided before any token is computed, so an unsupported
// checkpoint fails fast and names the config key instead of producing wrong logits.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "model/weight_quantization.h"

namespace moeslice {

struct ModelSpec;

// A YaRN rope_scaling as the config gives it (the families whose profile computes YaRN).
struct YarnSpec {
  double factor = 1.0;
  double original_max_positions = 0;  // rope_scaling's, else max_position_embeddings
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  bool truncate = true;
  double attention_factor = 1.0;  // multiplies RoPE's cos and sin
};

struct ForwardSpec {
  float rms_norm_eps = 1e-6f;
  double rope_theta = 10000.0;    // rope_parameters.rope_theta when given (transformers v5)
  std::optional<float> clip_qkv;  // families that apply it: clamp q, k, v after the q/k norms
  std::optional<int64_t> max_positions;  // max_position_embeddings, when the config has it
  // A sliding attention window that applies (the profile's attention.sliding_window rule);
  // sequences longer than it are refused.
  std::optional<int64_t> sliding_window;
  // Under the layer_types rule (gpt-oss): per layer, the sliding window its attention computes
  // (0: full causal attention); empty for the other rules.
  std::vector<int64_t> layer_windows;
  // gpt-oss's clamped SwiGLU experts: the clamp (swiglu_limit).
  float swiglu_limit = 7.0f;
  int64_t rope_dim = 0;          // the dimensions of a head RoPE rotates (Dim::kRopeDim)
  std::optional<YarnSpec> yarn;  // rope_scaling of type yarn, in a family that computes it
  // DeepSeek MLA: the softmax scale's factor over head_dim^-0.5 (mscale^2 of
  // yarn_get_mscale(factor, mscale_all_dim) when rope_scaling sets mscale_all_dim), else 1.
  double attention_scale_factor = 1.0;
  // Block-scaled FP8 weights (config.json's quantization_config, weight_quantization.h): the
  // block shape of their `_scale_inv` companions; nullopt without that quantization_config.
  std::optional<Fp8BlockScaling> fp8;
};

// The numbers of `spec` (its config and family are resolved); never throws for a config that
// resolved. Called by resolve_model_spec.
ForwardSpec resolve_forward_spec(const ModelSpec& spec);

// Throws UnsupportedError naming the family (forward_supported false) or the config key of the
// first refusal that applies, and ModelError naming the key when rms_norm_eps, rope_theta or an
// applied sliding_window holds a value no model computes with (negative, zero, not finite).
void require_forward_support(const ModelSpec& spec);

}  // namespace moeslice
