// The MoE sublayer: router logits, the family's routing rule under an optional keep plan, the
// batched experts, and Qwen2-MoE's sigmoid-gated shared expert. Also records what the profiler
// and the logits command report per layer (raw router logits, probabilities, choices, weights,
// expert output norms).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "forward/forward_config.h"
#include "forward/layer_weights.h"
#include "kernels/matrix.h"
#include "kernels/precision.h"
#include "kernels/routing.h"
#include "model/family_profile.h"

namespace moeslice {

namespace kernels {
class ThreadPool;
}

// One MoE layer's routing rule with the keep plan folded in.
struct MoeRouting {
  RoutingKind kind = RoutingKind::kSoftmaxTopK;
  size_t experts = 0;
  size_t shared = 0;  // EMO: the last `shared` experts, always chosen
  bool renormalise = false;
  std::vector<uint8_t> keep;  // one flag per expert; empty = all kept
  // Slots per token: top_k, or fewer when the plan keeps fewer experts (reference README:
  // min(k, kept); EMO: min(k - S, kept routed) + S).
  size_t slots = 0;
};

// Throws UnsupportedError for routing kinds the forward pass does not implement (DeepSeek,
// gpt-oss). `kept` is the plan's ascending ids for this layer, or nullptr.
MoeRouting make_moe_routing(RoutingKind kind, size_t experts, size_t top_k, size_t shared,
                            bool renormalise, const std::vector<int32_t>* kept);

// The routing of MoE layer `layer` of `spec` (its own expert count, the model's top-k and
// spec.routing) over `kept` experts (all when null). The forward pass and the slicer's check
// both route through here.
MoeRouting layer_routing(const ModelSpec& spec, const LayerSpec& layer,
                         const std::vector<int32_t>* kept);

// What one MoE layer computed for a sequence of n tokens.
struct MoeRecord {
  kernels::Matrix router_logits;  // [n, experts] raw x . W_router^T, before the plan's mask
  kernels::Matrix router_probs;   // [n, experts] after mask and softmax (EMO: two softmaxes)
  kernels::Routing routing;       // [n, slots] chosen experts (top-k order) and gate weights
  std::vector<float> slot_norms;  // [n * slots] L2 norm of each chosen expert's output
};

// y [n, hidden] = MoE(x [n, hidden]); fills `record`. y must not overlap x. Written once over a
// precision policy (kernels/precision.h; fp32 unless told), instantiated for Fp32Math and
// Bf16Math. In bf16 x holds BF16 values, the router logits are rounded to BF16 (routing itself
// stays fp32, with torch.topk's order among tied experts) and y is BF16.
template <class Math = kernels::Fp32Math>
void moe_block(const MoeWeights& weights, const MoeRouting& routing, kernels::ConstMatrixRef x,
               kernels::MatrixRef y, MoeRecord& record, kernels::ThreadPool* pool);

}  // namespace moeslice
