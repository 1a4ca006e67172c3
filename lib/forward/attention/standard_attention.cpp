// The standard attention block over a precision policy; the order of operations follows
// tests/reference/README.md.
#include "forward/attention/standard_attention.h"

#include <algorithm>
#include <cassert>
#include <cstddef>

#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/precision.h"
#include "kernels/rms_norm.h"
#include "kernels/thread_pool.h"

namespace moeslice {
namespace {

void clamp(kernels::MatrixRef values, float limit) {
  for (size_t r = 0; r < values.rows; ++r) {
    float* row = values.row(r);
    for (size_t c = 0; c < values.cols; ++c) row[c] = std::clamp(row[c], -limit, limit);
  }
}

template <class Math>
class StandardAttention final : public AttentionBlock {
 public:
  explicit StandardAttention(const AttentionParams& params) : params_(params) {}

  void run(const AttentionWeights& weights, kernels::ConstMatrixRef x,
           const kernels::RopeTable& rope, kernels::MatrixRef out,
           kernels::ThreadPool* pool) const override;

 private:
  AttentionParams params_;
};

template <class Math>
void StandardAttention<Math>::run(const AttentionWeights& weights, kernels::ConstMatrixRef x,
                                  const kernels::RopeTable& rope, kernels::MatrixRef out,
                                  kernels::ThreadPool* pool) const {
  const AttentionParams& params = params_;
  const size_t n = x.rows;
  const size_t hd = params.head_dim;
  assert(rope.positions() >= n && rope.head_dim() <= hd);
  // Scratch reused per calling thread (every element is overwritten): fresh multi-megabyte
  // buffers per layer measured ~5% of a bf16 pass in page faults and zeroing.
  thread_local kernels::OperandMatrix<Math> x_storage;
  thread_local kernels::Matrix q, k, v, context;
  // x as the GEMM operand once for the three projections (no copy in fp32).
  const kernels::ConstOperandRef<Math> xo = Math::operand(x, x_storage);
  q.resize(n, params.heads * hd);
  k.resize(n, params.kv_heads * hd);
  v.resize(n, params.kv_heads * hd);
  kernels::matmul_operand_xWt<Math>(xo, weights.q, q.ref(), weights.q_bias, pool);
  kernels::matmul_operand_xWt<Math>(xo, weights.k, k.ref(), weights.k_bias, pool);
  kernels::matmul_operand_xWt<Math>(xo, weights.v, v.ref(), weights.v_bias, pool);

  const float eps = params.rms_norm_eps;
  const kernels::NormWeightOrder order = params.norm_order;
  switch (weights.q_norm.empty() ? QkNorm::kNone : params.qk_norm) {
    case QkNorm::kNone:
      break;
    case QkNorm::kWholeVector:
      // OLMoE / FlexOlmo normalise the whole projected vector, before the head split.
      kernels::rms_norm(q.cref(), weights.q_norm, eps, q.ref(), order, Math::kActivation, pool);
      kernels::rms_norm(k.cref(), weights.k_norm, eps, k.ref(), order, Math::kActivation, pool);
      break;
    case QkNorm::kPerHead: {
      // Qwen3: one [head_dim] norm per head; q and k are dense, so heads are rows of length hd.
      const kernels::MatrixRef q_heads(q.data(), n * params.heads, hd);
      const kernels::MatrixRef k_heads(k.data(), n * params.kv_heads, hd);
      kernels::rms_norm(q_heads, weights.q_norm, eps, q_heads, order, Math::kActivation, pool);
      kernels::rms_norm(k_heads, weights.k_norm, eps, k_heads, order, Math::kActivation, pool);
      break;
    }
  }
  if (params.clip_qkv) {
    // OLMoE clamps after the norms and before RoPE, and clamps v too. torch.clamp on a bf16
    // tensor takes its bounds as bf16.
    const float limit = Math::round(*params.clip_qkv);
    clamp(q.ref(), limit);
    clamp(k.ref(), limit);
    clamp(v.ref(), limit);
  }
  const bool cast_tables = params.rope_bf16 == RopeBf16::kCastTables;
  // Row t rotates by position t: rows [begin, begin + count) start at position begin. The tasks
  // run on other threads: they reach q and k through these views, never the thread_local names.
  const kernels::MatrixRef q_all = q.ref(), k_all = k.ref();
  kernels::parallel_rows(pool, n, [&](size_t begin, size_t count) {
    const kernels::MatrixRef q_rows = q_all.row_range(begin, count);
    const kernels::MatrixRef k_rows = k_all.row_range(begin, count);
    if (rope.head_dim() == hd) {
      kernels::apply_rope<Math>(q_rows, params.heads, rope, begin, cast_tables);
      kernels::apply_rope<Math>(k_rows, params.kv_heads, rope, begin, cast_tables);
      return;
    }
    // Partial rotary (GLM-4.5): the first rope.head_dim() dimensions of each head rotate.
    for (size_t h = 0; h < params.heads; ++h)
      kernels::apply_rope<Math>(q_rows.columns(h * hd, rope.head_dim()), 1, rope, begin,
                                cast_tables);
    for (size_t h = 0; h < params.kv_heads; ++h)
      kernels::apply_rope<Math>(k_rows.columns(h * hd, rope.head_dim()), 1, rope, begin,
                                cast_tables);
  });

  context.resize(n, params.heads * hd);
  kernels::AttentionShape shape{params.heads, params.kv_heads, hd};
  shape.window = weights.window;  // this layer's sliding window (0: none)
  shape.sinks = weights.sinks.empty() ? nullptr : weights.sinks.data();
  kernels::causal_attention<Math>(q.cref(), k.cref(), v.cref(), shape, context.ref(), pool);
  kernels::matmul_xWt<Math>(context.cref(), weights.o, out, weights.o_bias, pool);
}

}  // namespace

template <class Math>
std::unique_ptr<AttentionBlock> make_standard_attention(const AttentionParams& params) {
  return std::make_unique<StandardAttention<Math>>(params);
}

template std::unique_ptr<AttentionBlock> make_standard_attention<kernels::Fp32Math>(
    const AttentionParams&);
template std::unique_ptr<AttentionBlock> make_standard_attention<kernels::Bf16Math>(
    const AttentionParams&);

}  // namespace moeslice
