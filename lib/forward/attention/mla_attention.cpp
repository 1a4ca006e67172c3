// The MLA attention block over a precision policy, in the modeling code's order of operations.
#include "forward/attention/mla_attention.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/precision.h"
#include "kernels/rms_norm.h"

namespace moeslice {
namespace {

// DeepseekV3RMSNorm's default: q_a_layernorm and kv_a_layernorm are built without the config's eps.
constexpr float kLatentNormEps = 1e-6f;

// Interleaved pairs (x0, x1), (x2, x3), ... re-laid as halves (x0, x2, ..., x1, x3, ...) in place,
// for every row of `part` (a [n, d] view): what apply_rotary_pos_emb_interleave does before its
// rotate-half rotation. The permutation is the same for q and k, so their dot products are those
// of the interleaved rotation.
void deinterleave(kernels::MatrixRef part) {
  const size_t d = part.cols;
  thread_local std::vector<float> pairs;
  pairs.resize(d);
  for (size_t t = 0; t < part.rows; ++t) {
    float* row = part.row(t);
    std::memcpy(pairs.data(), row, d * sizeof(float));
    for (size_t j = 0; j < d / 2; ++j) {
      row[j] = pairs[2 * j];
      row[d / 2 + j] = pairs[2 * j + 1];
    }
  }
}

template <class Math>
class MlaAttention final : public AttentionBlock {
 public:
  explicit MlaAttention(const AttentionParams& params) : params_(params) {
    assert(params.head_dim == params.qk_nope_head_dim + params.qk_rope_head_dim);
  }

  void run(const AttentionWeights& weights, kernels::ConstMatrixRef x,
           const kernels::RopeTable& rope, kernels::MatrixRef out,
           kernels::ThreadPool* pool) const override;

 private:
  // The rope part of every head of `m` ([n, heads * head_dim], rope last in each head) rotated.
  void rotate(kernels::MatrixRef m, size_t heads, size_t head_dim,
              const kernels::RopeTable& rope) const {
    const size_t nope = head_dim - params_.qk_rope_head_dim;
    const bool cast_tables = params_.rope_bf16 == RopeBf16::kCastTables;
    for (size_t h = 0; h < heads; ++h) {
      const kernels::MatrixRef part = m.columns(h * head_dim + nope, params_.qk_rope_head_dim);
      if (params_.rope_interleave) deinterleave(part);
      kernels::apply_rope<Math>(part, 1, rope, 0, cast_tables);
    }
  }

  AttentionParams params_;
};

template <class Math>
void MlaAttention<Math>::run(const AttentionWeights& weights, kernels::ConstMatrixRef x,
                             const kernels::RopeTable& rope, kernels::MatrixRef out,
                             kernels::ThreadPool* pool) const {
  const AttentionParams& p = params_;
  const size_t n = x.rows;
  const size_t heads = p.heads;
  const size_t nope = p.qk_nope_head_dim, rope_dim = p.qk_rope_head_dim, vd = p.v_head_dim;
  const size_t qk = p.head_dim;
  assert(rope.positions() >= n && rope.head_dim() == rope_dim);
  const kernels::NormWeightOrder order = p.norm_order;
  thread_local kernels::OperandMatrix<Math> x_storage;
  thread_local kernels::Matrix q, q_latent, kv_latent, compressed, kv, k, v, context;
  const kernels::ConstOperandRef<Math> xo = Math::operand(x, x_storage);

  // q [n, heads * (nope + rope)].
  q.resize(n, heads * qk);
  if (p.q_lora_rank > 0) {
    q_latent.resize(n, p.q_lora_rank);
    kernels::matmul_operand_xWt<Math>(xo, weights.q_a, q_latent.ref(), {}, pool);
    kernels::rms_norm(q_latent.cref(), weights.q_a_norm, kLatentNormEps, q_latent.ref(), order,
                      Math::kActivation, pool);
    kernels::matmul_xWt<Math>(q_latent.cref(), weights.q_b, q.ref(), {}, pool);
  } else {
    kernels::matmul_operand_xWt<Math>(xo, weights.q, q.ref(), {}, pool);
  }
  // [compressed kv | shared rope key] [n, kv_lora_rank + rope].
  kv_latent.resize(n, p.kv_lora_rank + rope_dim);
  kernels::matmul_operand_xWt<Math>(xo, weights.kv_a, kv_latent.ref(), {}, pool);
  const kernels::MatrixRef rope_key = kv_latent.ref().columns(p.kv_lora_rank, rope_dim);
  compressed.resize(n, p.kv_lora_rank);
  kernels::rms_norm(kv_latent.cref().columns(0, p.kv_lora_rank), weights.kv_a_norm, kLatentNormEps,
                    compressed.ref(), order, Math::kActivation, pool);
  // Per head [no-rope key | value] [n, heads * (nope + vd)].
  kv.resize(n, heads * (nope + vd));
  kernels::matmul_xWt<Math>(compressed.cref(), weights.kv_b, kv.ref(), {}, pool);

  rotate(q.ref(), heads, qk, rope);
  rotate(rope_key, 1, rope_dim, rope);

  // Keys [no-rope key of the head | the shared rope key], values per head.
  k.resize(n, heads * qk);
  v.resize(n, heads * vd);
  for (size_t t = 0; t < n; ++t) {
    const float* kv_row = kv.row(t);
    for (size_t h = 0; h < heads; ++h) {
      float* key = k.row(t) + h * qk;
      std::copy_n(kv_row + h * (nope + vd), nope, key);
      std::copy_n(rope_key.row(t), rope_dim, key + nope);
      std::copy_n(kv_row + h * (nope + vd) + nope, vd, v.row(t) + h * vd);
    }
  }

  context.resize(n, heads * vd);
  kernels::AttentionShape shape{heads, heads, qk};
  shape.v_head_dim = vd;
  // self.scaling = qk_head_dim ** -0.5 * mscale * mscale, in double as Python computes it.
  if (p.scale_factor != 1.0) shape.scale = std::pow(static_cast<double>(qk), -0.5) * p.scale_factor;
  kernels::causal_attention<Math>(q.cref(), k.cref(), v.cref(), shape, context.ref(), pool);
  kernels::matmul_xWt<Math>(context.cref(), weights.o, out, weights.o_bias, pool);
}

}  // namespace

template <class Math>
std::unique_ptr<AttentionBlock> make_mla_attention(const AttentionParams& params) {
  return std::make_unique<MlaAttention<Math>>(params);
}

template std::unique_ptr<AttentionBlock> make_mla_attention<kernels::Fp32Math>(
    const AttentionParams&);
template std::unique_ptr<AttentionBlock> make_mla_attention<kernels::Bf16Math>(
    const AttentionParams&);

}  // namespace moeslice
