// The attention sublayer as a block chosen by the profile's AttentionKind: the interface every
// attention kind implements, the settings it is built from, and the factory that maps a kind to
// its block (one file per kind beside this one: standard_attention.h, mla_attention.h). The
// forward pass builds the block once per model, bound to its precision policy
// (forward/layer_math.h), and calls it per layer.
//
// Thread safety: a block is immutable after construction; its ops keep their scratch per calling
// thread.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>

#include "forward/forward_config.h"
#include "forward/layer_weights.h"
#include "kernels/matrix.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "model/family_profile.h"
#include "model/model_spec.h"

namespace moeslice {

namespace kernels {
class ThreadPool;
}

struct AttentionParams {
  AttentionKind kind = AttentionKind::kStandard;
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
  // MLA (mla_attention.h): head_dim = qk_nope_head_dim + qk_rope_head_dim; q through q_lora_rank
  // when set (0: q_proj); the softmax scale head_dim^-0.5 times scale_factor (YaRN's mscale^2).
  size_t q_lora_rank = 0;
  size_t kv_lora_rank = 0;
  size_t qk_nope_head_dim = 0;
  size_t qk_rope_head_dim = 0;
  size_t v_head_dim = 0;
  bool rope_interleave = false;
  double scale_factor = 1.0;
};

// The attention settings of `spec` (its family's kinds and its sizes) computed with `config`.
AttentionParams attention_params(const ModelSpec& spec, const ForwardConfig& config);

class AttentionBlock {
 public:
  virtual ~AttentionBlock() = default;
  // out [n, hidden] = attention(x [n, hidden]) for one sequence whose first token has position
  // 0. `rope` must cover n positions. out must not overlap x. In bf16, x holds BF16 values and
  // so does out.
  virtual void run(const AttentionWeights& weights, kernels::ConstMatrixRef x,
                   const kernels::RopeTable& rope, kernels::MatrixRef out,
                   kernels::ThreadPool* pool) const = 0;
};

// The block of params.kind over precision policy Math (kernels/precision.h; instantiated for
// Fp32Math and Bf16Math). Throws UnsupportedError naming the kind when the forward pass does not
// implement it.
template <class Math>
std::unique_ptr<AttentionBlock> make_attention_block(const AttentionParams& params);

}  // namespace moeslice
