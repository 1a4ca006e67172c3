// The attention sublayer of every supported family: q/k/v projections (with biases where the
// model has them), the family's q/k RMSNorm (whole projected vector: olmoe, flex_olmo; per head:
// qwen3_moe), olmoe's clip_qkv, rotate-half RoPE, causal GQA attention and the output projection.
// Written once over a precision policy (kernels/precision.h), instantiated for Fp32Math and
// Bf16Math.
#pragma once

#include <cstddef>
#include <optional>

#include "forward/layer_weights.h"
#include "kernels/matrix.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "model/family_profile.h"

namespace moeslice {

namespace kernels {
class ThreadPool;
}

struct AttentionParams {
  size_t heads = 0;
  size_t kv_heads = 0;
  size_t head_dim = 0;
  QkNorm qk_norm = QkNorm::kNone;
  float rms_norm_eps = 1e-6f;
  std::optional<float> clip_qkv;
  // Where a bf16 run rounds: the family's norm order applies to the q/k norms, and its profile
  // says how RoPE rounds (Llama style casts cos/sin to BF16 before rotating, OLMo2 style rotates
  // in fp32 and rounds once). No difference in fp32.
  kernels::NormWeightOrder norm_order = kernels::NormWeightOrder::kCastThenScale;
  RopeBf16 rope_bf16 = RopeBf16::kCastTables;
};

// out [n, hidden] = attention(x [n, hidden]) for one sequence whose first token has position 0.
// `rope` must cover n positions. out must not overlap x. In bf16, x holds BF16 values and so does
// out.
template <class Math>
void attention_block(const AttentionWeights& weights, const AttentionParams& params,
                     kernels::ConstMatrixRef x, const kernels::RopeTable& rope,
                     kernels::MatrixRef out, kernels::ThreadPool* pool);

}  // namespace moeslice
