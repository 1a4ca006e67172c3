// MoE sublayer: routing per family and the expert computation.
#include "forward/moe_block.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "kernels/linear.h"
#include "kernels/moe.h"

namespace moeslice {
namespace {

// For a policy with kTorchTopkTies (bf16): BF16 router logits tie exactly far more often than
// fp32 ones, and on exact ties torch.topk (CPU, PyTorch 1.13) does not take the lower index
// first: it selects with std::nth_element and sorts the first k - 1 (std::partial_sort when
// k * 64 <= n), comparing values only. This replays that selection on one token's
// probabilities [0, n) and, when it picks the same values as the routing kernel (it always does;
// only tied ids can differ), takes its expert ids. Weights are unchanged: tied entries carry
// equal values.
void apply_torch_tie_order(const float* probs, size_t n, int32_t offset,
                           std::span<const uint8_t> keep, int32_t* ids, size_t picked) {
  if (picked == 0) return;
  using Elem = std::pair<double, int64_t>;  // PyTorch's accumulate type for float is double
  std::vector<Elem> queue(n);
  for (size_t i = 0; i < n; ++i) queue[i] = {probs[i], static_cast<int64_t>(i)};
  const auto larger = [](const Elem& x, const Elem& y) {
    return (std::isnan(x.first) && !std::isnan(y.first)) || x.first > y.first;
  };
  const auto k = static_cast<std::ptrdiff_t>(picked);
  if (picked * 64 <= n) {
    std::partial_sort(queue.begin(), queue.begin() + k, queue.end(), larger);
  } else {
    std::nth_element(queue.begin(), queue.begin() + k - 1, queue.end(), larger);
    std::sort(queue.begin(), queue.begin() + k - 1, larger);
  }
  for (size_t s = 0; s < picked; ++s) {
    const auto torch_id = static_cast<size_t>(queue[s].second);
    if (ids[s] < offset) return;
    const auto kernel_id = static_cast<size_t>(ids[s] - offset);
    if (!(probs[torch_id] == probs[kernel_id])) return;  // not a tie: keep the kernel's choice
    if (!keep.empty() && keep[torch_id + static_cast<size_t>(offset)] == 0) return;
  }
  for (size_t s = 0; s < picked; ++s) ids[s] = static_cast<int32_t>(queue[s].second) + offset;
}

void apply_torch_tie_order(const MoeRouting& routing, kernels::ConstMatrixRef probs,
                           kernels::Routing& chosen) {
  const size_t routed = routing.experts - routing.shared;
  for (size_t t = 0; t < chosen.tokens; ++t) {
    int32_t* ids = chosen.expert.data() + t * chosen.k;
    const float* row = probs.row(t);
    // Routed slots come first (EMO: then the shared ones, ids >= routed); empty slots are -1.
    size_t picked = 0;
    while (picked < chosen.k && ids[picked] >= 0 && static_cast<size_t>(ids[picked]) < routed)
      ++picked;
    apply_torch_tie_order(row, routed, 0, routing.keep, ids, picked);
    if (routing.shared == 0) continue;
    size_t shared = 0;
    while (picked + shared < chosen.k && ids[picked + shared] >= 0) ++shared;
    apply_torch_tie_order(row + routed, routing.shared, static_cast<int32_t>(routed), routing.keep,
                          ids + picked, shared);
  }
}

}  // namespace

MoeRouting make_moe_routing(RoutingKind kind, size_t experts, size_t top_k, size_t shared,
                            bool renormalise, const std::vector<int32_t>* kept) {
  if (kind != RoutingKind::kSoftmaxTopK && kind != RoutingKind::kSoftmaxTopKRenormalised &&
      kind != RoutingKind::kEmoSplitSoftmax)
    throw UnsupportedError(
        "this family's routing (group-limited sigmoid or top-k-then-softmax) "
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

MoeRouting layer_routing(const ModelSpec& spec, const LayerSpec& layer,
                         const std::vector<int32_t>* kept) {
  return make_moe_routing(spec.routing.kind, static_cast<size_t>(layer.num_experts),
                          static_cast<size_t>(spec.experts_per_token),
                          static_cast<size_t>(spec.shared_experts), spec.routing.renormalise, kept);
}

template <class Math>
void moe_block(const MoeWeights& weights, const MoeRouting& routing, kernels::ConstMatrixRef x,
               kernels::MatrixRef y, MoeRecord& record, kernels::ThreadPool* pool) {
  const size_t n = x.rows;
  record.router_logits = kernels::Matrix(n, routing.experts);
  kernels::matmul_xWt<Math>(x, weights.router, record.router_logits.ref(), {}, pool);
  // The routing kernels turn logits into probabilities in place; the raw logits are kept for
  // the caller (they equal a sliced model's logits on the kept columns).
  record.router_probs = record.router_logits;
  if (routing.shared > 0)
    record.routing =
        kernels::route_emo(record.router_probs.ref(), routing.slots, routing.shared, routing.keep);
  else
    record.routing = kernels::route_softmax_topk(record.router_probs.ref(), routing.slots,
                                                 routing.renormalise, routing.keep);
  if (Math::kTorchTopkTies)
    apply_torch_tie_order(routing, record.router_probs.cref(), record.routing);
  record.slot_norms.assign(n * routing.slots, 0.0f);
  kernels::moe_experts<Math>(x, record.routing, weights.experts, y, record.slot_norms, pool);
  // Qwen2-MoE: shared_expert(x) * sigmoid(x . shared_expert_gate), added after the routed sum.
  if (weights.shared)
    kernels::add_sigmoid_gated_expert<Math>(x, *weights.shared, weights.shared_gate, y, pool);
}

template void moe_block<kernels::Fp32Math>(const MoeWeights&, const MoeRouting&,
                                           kernels::ConstMatrixRef, kernels::MatrixRef, MoeRecord&,
                                           kernels::ThreadPool*);
template void moe_block<kernels::Bf16Math>(const MoeWeights&, const MoeRouting&,
                                           kernels::ConstMatrixRef, kernels::MatrixRef, MoeRecord&,
                                           kernels::ThreadPool*);

}  // namespace moeslice
