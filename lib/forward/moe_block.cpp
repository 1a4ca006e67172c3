// MoE sublayer: the router and the expert computation.
#include "forward/moe_block.h"

#include <cstddef>

#include "kernels/linear.h"
#include "kernels/moe.h"

namespace moeslice {

template <class Math>
void moe_block(const MoeWeights& weights, const MoeRouting& routing, kernels::ConstMatrixRef x,
               kernels::MatrixRef y, MoeRecord& record, kernels::ThreadPool* pool) {
  const size_t n = x.rows;
  record.router_logits = kernels::Matrix(n, routing.experts);
  if (routing.router->fp32_logits())
    kernels::matmul_xWt<kernels::Fp32Math>(x, weights.router, record.router_logits.ref(),
                                           weights.router_bias, pool);
  else
    kernels::matmul_xWt<Math>(x, weights.router, record.router_logits.ref(), weights.router_bias,
                              pool);
  // The router turns logits into probabilities in place; the raw logits are kept for
  // the caller (they equal a sliced model's logits on the kept columns).
  record.router_probs = record.router_logits;
  record.routing = routing.router->route(
      record.router_probs.ref(),
      Math::kTorchTopkTies ? TopKTies::kTorchTopk : TopKTies::kLowerIndexFirst);
  record.slot_norms.assign(n * routing.slots, 0.0f);
  kernels::moe_experts<Math>(x, record.routing, weights.experts, y, record.slot_norms, pool);
  if (!weights.shared) return;
  if (!weights.shared_gate.empty()) {
    // Qwen2-MoE: shared_expert(x) * sigmoid(x . shared_expert_gate), added after the routed sum.
    kernels::add_sigmoid_gated_expert<Math>(x, *weights.shared, weights.shared_gate, y, pool);
  } else {
    // DeepSeek-V3: the shared experts' MLP, unweighted, added after the routed sum.
    thread_local kernels::Matrix shared;
    shared.resize(x.rows, x.cols);
    kernels::expert_mlp<Math>(x, *weights.shared, shared.ref(), pool);
    kernels::add_into<Math>(y, shared.cref());
  }
}

template void moe_block<kernels::Fp32Math>(const MoeWeights&, const MoeRouting&,
                                           kernels::ConstMatrixRef, kernels::MatrixRef, MoeRecord&,
                                           kernels::ThreadPool*);
template void moe_block<kernels::Bf16Math>(const MoeWeights&, const MoeRouting&,
                                           kernels::ConstMatrixRef, kernels::MatrixRef, MoeRecord&,
                                           kernels::ThreadPool*);

}  // namespace moeslice
