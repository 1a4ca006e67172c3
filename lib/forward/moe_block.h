// The MoE sublayer: router logits, the layer's router (forward/routing/: the family's routing kind
// under an optional keep plan), the batched experts, and the shared expert (Qwen2-MoE's
// sigmoid-gated one, or DeepSeek's unweighted shared experts).
// Also records what the profiler and the logits command report per layer (raw router logits,
// probabilities, choices, weights, expert output norms).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "forward/layer_weights.h"
#include "forward/routing/router.h"
#include "kernels/matrix.h"
#include "kernels/precision.h"
#include "kernels/routing.h"

namespace moeslice {

namespace kernels {
class ThreadPool;
}

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
// stays fp32, with torch.topk's order among tied experts: Math::kTorchTopkTies) and y is BF16.
//
// segment_lengths (summing to n; empty: one) makes x several independent sequences computed at
// once, as layer-major profiling runs the windows of a block: the router and shared expert run per
// segment, the routed experts pool the segments (kernels::moe_experts); y and record equal, bit
// for bit, one call per segment stacked.
template <class Math = kernels::Fp32Math>
void moe_block(const MoeWeights& weights, const MoeRouting& routing, kernels::ConstMatrixRef x,
               kernels::MatrixRef y, MoeRecord& record, kernels::ThreadPool* pool,
               std::span<const size_t> segment_lengths = {});

// moe_block's first step alone: fills record's router logits, probabilities and routing, and
// empties its slot norms; no expert runs. The layer-wise selector measures a layer this way when
// its metric needs no expert output (router mass, counts, coverage).
template <class Math = kernels::Fp32Math>
void moe_routing(const MoeWeights& weights, const MoeRouting& routing, kernels::ConstMatrixRef x,
                 MoeRecord& record, kernels::ThreadPool* pool,
                 std::span<const size_t> segment_lengths = {});

}  // namespace moeslice
