// Attention sublayer; the order of operations follows tests/reference/README.md.
#include "forward/attention_block.h"

#include <algorithm>
#include <cassert>
#include <vector>

#include "kernels/attention.h"
#include "kernels/gemm_bf16.h"
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

// bf16 mode RoPE on x [n, heads * hd] holding BF16 values. Llama style (cast_tables):
// x * bf16(cos) + rotate_half(x) * bf16(sin), each product and the sum rounded. OLMo2 style:
// the fp32 rotation against fp32 cos/sin, rounded once.
void apply_rope_bf16(kernels::MatrixRef x, size_t heads, const kernels::RopeTable& table,
                     bool cast_tables) {
  using kernels::round_bf16;
  const size_t d = table.head_dim();
  const size_t half = d / 2;
  assert(x.cols == heads * d && x.rows <= table.positions());
  std::vector<float> cos_b(half), sin_b(half);
  for (size_t t = 0; t < x.rows; ++t) {
    const float* c = table.cos(t);
    const float* s = table.sin(t);
    if (cast_tables) {
      for (size_t j = 0; j < half; ++j) {
        cos_b[j] = round_bf16(c[j]);
        sin_b[j] = round_bf16(s[j]);
      }
    }
    float* row = x.row(t);
    for (size_t h = 0; h < heads; ++h) {
      float* lo = row + h * d;
      float* hi = lo + half;
      for (size_t j = 0; j < half; ++j) {
        const float a = lo[j];
        const float b = hi[j];
        if (cast_tables) {
          lo[j] = round_bf16(round_bf16(a * cos_b[j]) - round_bf16(b * sin_b[j]));
          hi[j] = round_bf16(round_bf16(b * cos_b[j]) + round_bf16(a * sin_b[j]));
        } else {
          lo[j] = round_bf16(a * c[j] - b * s[j]);
          hi[j] = round_bf16(b * c[j] + a * s[j]);
        }
      }
    }
  }
}

// attention_block in bf16 mode: same steps, BF16 GEMMs and the rounding of a bf16 run.
void attention_block_bf16(const AttentionWeights& weights, const AttentionParams& params,
                          kernels::ConstMatrixRef x, const kernels::RopeTable& rope,
                          kernels::MatrixRef out, kernels::ThreadPool* pool) {
  const size_t n = x.rows;
  const size_t hd = params.head_dim;
  const DType bf16 = DType::BF16;
  // Scratch reused per calling thread (every element is overwritten): fresh multi-megabyte
  // buffers per layer measured ~5% of a bf16 pass in page faults and zeroing.
  thread_local kernels::Bf16Matrix xb;
  thread_local kernels::Matrix q, k, v, context;
  xb.resize(n, x.cols);
  kernels::f32_to_bf16(x, xb.data());
  q.resize(n, params.heads * hd);
  k.resize(n, params.kv_heads * hd);
  v.resize(n, params.kv_heads * hd);
  kernels::matmul_xWt_bf16(xb.cref(), weights.q, q.ref(), weights.q_bias, pool);
  kernels::matmul_xWt_bf16(xb.cref(), weights.k, k.ref(), weights.k_bias, pool);
  kernels::matmul_xWt_bf16(xb.cref(), weights.v, v.ref(), weights.v_bias, pool);

  const float eps = params.rms_norm_eps;
  const kernels::NormWeightOrder order = params.norm_order;
  switch (params.qk_norm) {
    case QkNorm::kNone:
      break;
    case QkNorm::kWholeVector:
      kernels::rms_norm(q.cref(), weights.q_norm, eps, q.ref(), order, bf16);
      kernels::rms_norm(k.cref(), weights.k_norm, eps, k.ref(), order, bf16);
      break;
    case QkNorm::kPerHead: {
      const kernels::MatrixRef q_heads(q.data(), n * params.heads, hd);
      const kernels::MatrixRef k_heads(k.data(), n * params.kv_heads, hd);
      kernels::rms_norm(q_heads, weights.q_norm, eps, q_heads, order, bf16);
      kernels::rms_norm(k_heads, weights.k_norm, eps, k_heads, order, bf16);
      break;
    }
  }
  if (params.clip_qkv) {
    // torch.clamp on a bf16 tensor takes its bounds as bf16.
    const float limit = kernels::round_bf16(*params.clip_qkv);
    clamp(q.ref(), limit);
    clamp(k.ref(), limit);
    clamp(v.ref(), limit);
  }
  const bool cast_tables = params.rope_bf16 == RopeBf16::kCastTables;
  apply_rope_bf16(q.ref(), params.heads, rope, cast_tables);
  apply_rope_bf16(k.ref(), params.kv_heads, rope, cast_tables);

  context.resize(n, params.heads * hd);
  kernels::causal_attention_bf16(q.cref(), k.cref(), v.cref(), {params.heads, params.kv_heads, hd},
                                 context.ref(), pool);
  kernels::matmul_xWt_bf16(context.cref(), weights.o, out, weights.o_bias, pool);
}

}  // namespace

void attention_block(const AttentionWeights& weights, const AttentionParams& params,
                     kernels::ConstMatrixRef x, const kernels::RopeTable& rope,
                     kernels::MatrixRef out, kernels::ThreadPool* pool) {
  if (params.compute == ComputeMode::kBf16)
    return attention_block_bf16(weights, params, x, rope, out, pool);
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
