// MoE sublayer: routing per family and the expert computation.
#include "forward/moe_block.h"

#include <algorithm>
#include <cassert>
#include <string>

#include "common/error.h"
#include "forward/kernels/elementwise.h"
#include "forward/kernels/moe.h"
#include "forward/kernels/weight_matrix.h"

namespace moeslice {

MoeRouting make_moe_routing(RoutingKind kind, size_t experts, size_t top_k, size_t shared,
                            bool renormalise, const std::vector<int32_t>* kept) {
  if (kind != RoutingKind::kSoftmaxTopK && kind != RoutingKind::kSoftmaxTopKRenormalised &&
      kind != RoutingKind::kEmoSplitSoftmax)
    throw UnsupportedError("this family's routing (group-limited sigmoid or top-k-then-softmax) "
                           "is not implemented by the forward pass");
  MoeRouting routing;
  routing.kind = kind;
  routing.experts = experts;
  routing.shared = kind == RoutingKind::kEmoSplitSoftmax ? shared : 0;
  routing.renormalise = renormalise || kind == RoutingKind::kSoftmaxTopKRenormalised;
  size_t kept_count = experts;
  if (kept != nullptr) {
    routing.keep.assign(experts, 0);
    for (int32_t id : *kept) routing.keep.at(static_cast<size_t>(id)) = 1;
    kept_count = kept->size();
  }
  if (routing.shared > 0) {
    // The plan keeps every shared expert (validated in keep_plan), so kept - S are routed ones.
    assert(kept_count >= routing.shared && top_k > routing.shared);
    routing.slots = std::min(top_k - routing.shared, kept_count - routing.shared) + routing.shared;
  } else {
    routing.slots = std::min(top_k, kept_count);
  }
  return routing;
}

void moe_block(const MoeWeights& weights, const MoeRouting& routing, kernels::ConstMatrixRef x,
               kernels::MatrixRef y, MoeRecord& record, kernels::ThreadPool* pool) {
  const size_t n = x.rows;
  record.router_logits = kernels::Matrix(n, routing.experts);
  kernels::matmul_xWt(x, weights.router, record.router_logits.ref(), {}, pool);
  // The routing kernels turn logits into probabilities in place; the raw logits are kept for
  // the caller (they equal a sliced model's logits on the kept columns).
  record.router_probs = record.router_logits;
  if (routing.shared > 0)
    record.routing = kernels::route_emo(record.router_probs.ref(), routing.slots, routing.shared,
                                        routing.keep);
  else
    record.routing = kernels::route_softmax_topk(record.router_probs.ref(), routing.slots,
                                                 routing.renormalise, routing.keep);
  record.slot_norms.assign(n * routing.slots, 0.0f);
  kernels::moe_experts(x, record.routing, weights.experts, y, record.slot_norms, pool);

  if (weights.shared) {
    // Qwen2-MoE: shared_expert(x) * sigmoid(x . shared_expert_gate), added after the routed sum.
    kernels::Matrix shared(n, x.cols);
    kernels::expert_mlp(x, *weights.shared, shared.ref(), pool);
    kernels::scale_by_sigmoid_gate(x, weights.shared_gate.data(), shared.ref());
    for (size_t t = 0; t < n; ++t) {
      float* dst = y.row(t);
      const float* src = shared.row(t);
      for (size_t c = 0; c < x.cols; ++c) dst[c] += src[c];
    }
  }
}

}  // namespace moeslice
