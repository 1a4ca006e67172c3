// Attention sublayer; the order of operations follows tests/reference/README.md.
#include "forward/attention_block.h"

#include <algorithm>
#include <cassert>

#include "forward/kernels/attention.h"
#include "forward/kernels/rms_norm.h"
#include "forward/kernels/thread_pool.h"

namespace moeslice {
namespace {

void clamp(kernels::MatrixRef values, float limit) {
  for (size_t r = 0; r < values.rows; ++r) {
    float* row = values.row(r);
    for (size_t c = 0; c < values.cols; ++c) row[c] = std::clamp(row[c], -limit, limit);
  }
}

}  // namespace

void attention_block(const AttentionWeights& weights, const AttentionParams& params,
                     kernels::ConstMatrixRef x, const kernels::RopeTable& rope,
                     kernels::MatrixRef out, kernels::ThreadPool* pool) {
  const size_t n = x.rows;
  const size_t hd = params.head_dim;
  assert(rope.positions() >= n && rope.head_dim() == hd);
  kernels::Matrix q(n, params.heads * hd);
  kernels::Matrix k(n, params.kv_heads * hd);
  kernels::Matrix v(n, params.kv_heads * hd);
  kernels::matmul_xWt(x, weights.q, q.ref(), weights.q_bias, pool);
  kernels::matmul_xWt(x, weights.k, k.ref(), weights.k_bias, pool);
  kernels::matmul_xWt(x, weights.v, v.ref(), weights.v_bias, pool);

  switch (params.qk_norm) {
    case QkNorm::kNone:
      break;
    case QkNorm::kWholeVector:
      // OLMoE / FlexOlmo normalise the whole projected vector, before the head split.
      kernels::rms_norm(q.cref(), weights.q_norm, params.rms_norm_eps, q.ref());
      kernels::rms_norm(k.cref(), weights.k_norm, params.rms_norm_eps, k.ref());
      break;
    case QkNorm::kPerHead: {
      // Qwen3: one [head_dim] norm per head; q and k are dense, so heads are rows of length hd.
      const kernels::MatrixRef q_heads(q.data(), n * params.heads, hd);
      const kernels::MatrixRef k_heads(k.data(), n * params.kv_heads, hd);
      kernels::rms_norm(q_heads, weights.q_norm, params.rms_norm_eps, q_heads);
      kernels::rms_norm(k_heads, weights.k_norm, params.rms_norm_eps, k_heads);
      break;
    }
  }
  if (params.clip_qkv) {
    // OLMoE clamps after the norms and before RoPE, and clamps v too.
    clamp(q.ref(), *params.clip_qkv);
    clamp(k.ref(), *params.clip_qkv);
    clamp(v.ref(), *params.clip_qkv);
  }
  kernels::apply_rope(q.ref(), params.heads, rope);
  kernels::apply_rope(k.ref(), params.kv_heads, rope);

  kernels::Matrix context(n, params.heads * hd);
  kernels::causal_attention(q.cref(), k.cref(), v.cref(), {params.heads, params.kv_heads, hd},
                            context.ref(), pool);
  kernels::matmul_xWt(context.cref(), weights.o, out, weights.o_bias, pool);
}

}  // namespace moeslice
