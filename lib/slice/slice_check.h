// The check run before a slice is published: the same random hidden states go through every MoE
// layer of both models, and each sliced layer must equal the full layer with its router
// restricted to the kept experts (1e-5 relative: GEMM shapes differ, a wrong expert is O(1)).
// Both models are read through their TensorStore (Model), so a slice written in any format is
// checked by reading it back. The full model's half reads only the input, so the slicer runs it
// while the slice is written.
#pragma once

#include <vector>

#include "kernels/matrix.h"
#include "model/keep_plan.h"
#include "model/model_spec.h"

namespace moeslice {

struct RestrictedOutputs {
  kernels::Matrix x;               // [tokens, hidden]
  std::vector<kernels::Matrix> y;  // per layer; empty for layers without experts
};
// The full model's MoE layers on fixed random inputs, each restricted to `plan`'s kept experts.
// Releases each layer's pages after use (a full model may be larger than memory).
RestrictedOutputs restricted_layer_outputs(const Model& full, const KeepPlan& plan);
// Returns the largest relative difference; throws Error naming the first layer over the bar.
double check_sliced_layers(const Model& sliced, const RestrictedOutputs& expected);

}  // namespace moeslice
