// MoE sublayer: the router and the expert computation (moe_routing is the router alone).
#include "forward/moe_block.h"

#include <cassert>
#include <cstddef>
#include <span>

#include "kernels/linear.h"
#include "kernels/moe.h"

namespace moeslice {

namespace {

// Calls f(begin, count) for each segment's rows of an n-row input (the whole input when there are
// no segments): the GEMMs whose kernel depends on the row count run per segment.
template <class F>
void for_each_segment(size_t n, std::span<const size_t> segment_lengths, F&& f) {
  if (segment_lengths.empty()) return f(size_t{0}, n);
  size_t begin = 0;
  for (const size_t count : segment_lengths) {
    f(begin, count);
    begin += count;
  }
  assert(begin == n);
}

}  // namespace

template <class Math>
void moe_routing(const MoeWeights& weights, const MoeRouting& routing, kernels::ConstMatrixRef x,
                 MoeRecord& record, kernels::ThreadPool* pool,
                 std::span<const size_t> segment_lengths) {
  const size_t n = x.rows;
  record.router_logits = kernels::Matrix(n, routing.experts);
  for_each_segment(n, segment_lengths, [&](size_t begin, size_t count) {
    const kernels::ConstMatrixRef rows = x.row_range(begin, count);
    const kernels::MatrixRef logits = record.router_logits.ref().row_range(begin, count);
    if (routing.router->fp32_logits())
      kernels::matmul_xWt<kernels::Fp32Math>(rows, weights.router, logits, weights.router_bias,
                                             pool);
    else
      kernels::matmul_xWt<Math>(rows, weights.router, logits, weights.router_bias, pool);
  });
  // The router turns logits into probabilities in place; the raw logits are kept for
  // the caller (they equal a sliced model's logits on the kept columns).
  record.router_probs = record.router_logits;
  record.routing = routing.router->route(
      record.router_probs.ref(),
      Math::kTorchTopkTies ? TopKTies::kTorchTopk : TopKTies::kLowerIndexFirst);
  record.slot_norms.clear();
}

template <class Math>
void moe_block(const MoeWeights& weights, const MoeRouting& routing, kernels::ConstMatrixRef x,
               kernels::MatrixRef y, MoeRecord& record, kernels::ThreadPool* pool,
               std::span<const size_t> segment_lengths) {
  const size_t n = x.rows;
  moe_routing<Math>(weights, routing, x, record, pool, segment_lengths);
  record.slot_norms.assign(n * routing.slots, 0.0f);
  kernels::moe_experts<Math>(x, record.routing, weights.experts, y, record.slot_norms, pool,
                             segment_lengths);
  if (!weights.shared) return;
  for_each_segment(n, segment_lengths, [&](size_t begin, size_t count) {
    const kernels::ConstMatrixRef rows = x.row_range(begin, count);
    const kernels::MatrixRef out = y.row_range(begin, count);
    if (!weights.shared_gate.empty()) {
      // Qwen2-MoE: shared_expert(x) * sigmoid(x . shared_expert_gate), added after the routed sum.
      kernels::add_sigmoid_gated_expert<Math>(rows, *weights.shared, weights.shared_gate, out,
                                              pool);
    } else {
      // DeepSeek-V3: the shared experts' MLP, unweighted, added after the routed sum.
      thread_local kernels::Matrix shared;
      shared.resize(count, x.cols);
      kernels::expert_mlp<Math>(rows, *weights.shared, shared.ref(), pool);
      kernels::add_into<Math>(out, shared.cref());
    }
  });
}

template void moe_block<kernels::Fp32Math>(const MoeWeights&, const MoeRouting&,
                                           kernels::ConstMatrixRef, kernels::MatrixRef, MoeRecord&,
                                           kernels::ThreadPool*, std::span<const size_t>);
template void moe_block<kernels::Bf16Math>(const MoeWeights&, const MoeRouting&,
                                           kernels::ConstMatrixRef, kernels::MatrixRef, MoeRecord&,
                                           kernels::ThreadPool*, std::span<const size_t>);
template void moe_routing<kernels::Fp32Math>(const MoeWeights&, const MoeRouting&,
                                             kernels::ConstMatrixRef, MoeRecord&,
                                             kernels::ThreadPool*, std::span<const size_t>);
template void moe_routing<kernels::Bf16Math>(const MoeWeights&, const MoeRouting&,
                                             kernels::ConstMatrixRef, MoeRecord&,
                                             kernels::ThreadPool*, std::span<const size_t>);

}  // namespace moeslice
