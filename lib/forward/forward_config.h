// What the forward pass needs from a model beyond its weights: the compute mode, and the model's
// forward settings (ModelSpec::forward, resolved and checked in lib/model/forward_spec.h) once the
// model is known to be one the CPU forward pass implements. Everything else that differs between
// families is a kind in its profile that picks a block once per model: AttentionKind an attention
// block (forward/attention/), RoutingKind a router (forward/routing/); the compute mode picks a
// precision policy (forward/layer_math.h). No code here compares family names.
#pragma once

#include <cstdint>
#include <string_view>

#include "kernels/rms_norm.h"
#include "model/family_profile.h"
#include "model/model_spec.h"

namespace moeslice {

// The arithmetic of the forward pass. kFp32 (the default): weights converted to fp32, all maths in
// fp32. kBf16 (`--compute bf16`): BF16 weights and activations with fp32 accumulation, rounded to
// BF16 where transformers' bf16 run rounds (tests/reference/README.md, "Numerics modes"); needs a
// build with oneDNN (kernels/gemm_bf16.h).
enum class ComputeMode { kFp32, kBf16 };
// "fp32" / "bf16", as the --compute flag spells them.
std::string_view compute_mode_name(ComputeMode mode);

// The numbers the forward pass computes with (eps, RoPE theta, clip_qkv, context length, sliding
// window).
using ForwardConfig = ForwardSpec;

// `spec.forward`, after require_forward_support(spec): throws UnsupportedError naming the family
// (forward_supported == false) or the config key the forward pass does not implement.
ForwardConfig resolve_forward_config(const ModelSpec& spec);

// Where the family's RMSNorms multiply by their weight relative to the cast back to BF16.
kernels::NormWeightOrder norm_weight_order(const FamilyProfile& family);

// Throws UnsupportedError naming the sliding-window key when a sequence of `length` tokens would
// be cut by the model's sliding window.
void check_sequence_length(const ModelSpec& spec, const ForwardConfig& config, int64_t length);

}  // namespace moeslice
