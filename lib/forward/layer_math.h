// The steps of the forward pass whose arithmetic depends on the compute mode, bound once to a
// precision policy (kernels/precision.h): ForwardPass creates one at construction and calls it, so
// no step tests the mode. The attention block (chosen by the profile's attention kind) is built
// here once per model for the same policy. What the steps are and their order (pre- or post-norm,
// residuals, observers) stays in ForwardPass, written once.
//
// Thread safety: stateless; the ops keep their scratch per calling thread.
#pragma once

#include <memory>
#include <span>

#include "forward/attention/attention_block.h"
#include "forward/forward_config.h"
#include "forward/layer_weights.h"
#include "forward/moe_block.h"
#include "kernels/matrix.h"
#include "kernels/moe.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "kernels/weight_matrix.h"

namespace moeslice {

namespace kernels {
class ThreadPool;
}

class LayerMath {
 public:
  virtual ~LayerMath() = default;

  // Throws UnsupportedError when this build or CPU cannot compute in this mode; brings the small
  // fp32 copies of weights (norms, biases, the shared-expert gate) to its precision (bf16 rounds
  // them, as the reference converts every weight to BF16; exact for BF16 checkpoints).
  virtual void prepare(ModelWeights& weights) const = 0;
  // Embedding rows to the activation precision, in place.
  virtual void round_activations(kernels::MatrixRef x) const = 0;
  // Row-wise steps (the norm, the residual add) spread their rows over `pool` (same results).
  virtual void rms_norm(kernels::ConstMatrixRef x, std::span<const float> weight, float eps,
                        kernels::MatrixRef y, kernels::NormWeightOrder order,
                        kernels::ThreadPool* pool) const = 0;
  // The attention block of params.kind over this precision (forward/attention/attention_block.h);
  // throws UnsupportedError naming a kind the forward pass does not implement.
  virtual std::unique_ptr<AttentionBlock> attention_block(const AttentionParams& params) const = 0;
  // moe_block (forward/moe_block.h), segments included.
  virtual void moe(const MoeWeights& weights, const MoeRouting& routing, kernels::ConstMatrixRef x,
                   kernels::MatrixRef y, MoeRecord& record, kernels::ThreadPool* pool,
                   std::span<const size_t> segment_lengths) const = 0;
  // moe_routing (forward/moe_block.h): the router alone.
  virtual void moe_routing(const MoeWeights& weights, const MoeRouting& routing,
                           kernels::ConstMatrixRef x, MoeRecord& record, kernels::ThreadPool* pool,
                           std::span<const size_t> segment_lengths) const = 0;
  virtual void dense_mlp(const kernels::ExpertMlp& mlp, kernels::ConstMatrixRef x,
                         kernels::MatrixRef y, kernels::ThreadPool* pool) const = 0;
  // h += sublayer (rounded in bf16).
  virtual void add_residual(kernels::MatrixRef h, kernels::ConstMatrixRef sublayer,
                            kernels::ThreadPool* pool) const = 0;
  virtual void lm_head(kernels::ConstMatrixRef x, const kernels::WeightMatrix& head,
                       kernels::MatrixRef logits, kernels::ThreadPool* pool) const = 0;
};

// kFp32: kernels::Fp32Math; kBf16: kernels::Bf16Math.
std::unique_ptr<LayerMath> make_layer_math(ComputeMode mode);

}  // namespace moeslice
