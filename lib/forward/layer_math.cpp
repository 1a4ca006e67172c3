// LayerMath over each precision policy: every step forwards to the op instantiated for it.
#include "forward/layer_math.h"

#include <vector>

#include "kernels/linear.h"
#include "kernels/precision.h"
#include "kernels/thread_pool.h"

namespace moeslice {
namespace {

template <class Math>
void round_values(std::vector<float>& values) {
  for (float& value : values) value = Math::round(value);
}

template <class Math>
class LayerMathFor final : public LayerMath {
 public:
  void prepare(ModelWeights& weights) const override {
    Math::require_available();
    if constexpr (Math::kRoundsResults) {
      round_values<Math>(weights.final_norm);
      for (LayerWeights& layer : weights.layers) {
        round_values<Math>(layer.attn_norm);
        round_values<Math>(layer.ffn_norm);
        AttentionWeights& a = layer.attention;
        for (std::vector<float>* v : {&a.q_bias, &a.k_bias, &a.v_bias, &a.o_bias, &a.q_norm,
                                      &a.k_norm, &a.q_a_norm, &a.kv_a_norm, &a.sinks})
          round_values<Math>(*v);
        if (layer.moe) {
          round_values<Math>(layer.moe->shared_gate);
          round_values<Math>(layer.moe->router_choice_bias);
          round_values<Math>(layer.moe->router_bias);
        }
      }
    }
  }

  void round_activations(kernels::MatrixRef x) const override {
    kernels::round_activations<Math>(x);
  }

  void rms_norm(kernels::ConstMatrixRef x, std::span<const float> weight, float eps,
                kernels::MatrixRef y, kernels::NormWeightOrder order,
                kernels::ThreadPool* pool) const override {
    kernels::rms_norm(x, weight, eps, y, order, Math::kActivation, pool);
  }

  std::unique_ptr<AttentionBlock> attention_block(const AttentionParams& params) const override {
    return make_attention_block<Math>(params);
  }

  void moe(const MoeWeights& weights, const MoeRouting& routing, kernels::ConstMatrixRef x,
           kernels::MatrixRef y, MoeRecord& record, kernels::ThreadPool* pool,
           std::span<const size_t> segment_lengths) const override {
    moe_block<Math>(weights, routing, x, y, record, pool, segment_lengths);
  }

  void moe_routing(const MoeWeights& weights, const MoeRouting& routing, kernels::ConstMatrixRef x,
                   MoeRecord& record, kernels::ThreadPool* pool,
                   std::span<const size_t> segment_lengths) const override {
    moeslice::moe_routing<Math>(weights, routing, x, record, pool, segment_lengths);
  }

  void dense_mlp(const kernels::ExpertMlp& mlp, kernels::ConstMatrixRef x, kernels::MatrixRef y,
                 kernels::ThreadPool* pool) const override {
    kernels::expert_mlp<Math>(x, mlp, y, pool);
  }

  void add_residual(kernels::MatrixRef h, kernels::ConstMatrixRef sublayer,
                    kernels::ThreadPool* pool) const override {
    kernels::parallel_rows(pool, h.rows, [&](size_t begin, size_t count) {
      kernels::add_into<Math>(h.row_range(begin, count), sublayer.row_range(begin, count));
    });
  }

  void lm_head(kernels::ConstMatrixRef x, const kernels::WeightMatrix& head,
               kernels::MatrixRef logits, kernels::ThreadPool* pool) const override {
    kernels::matmul_xWt<Math>(x, head, logits, {}, pool);
  }
};

}  // namespace

std::unique_ptr<LayerMath> make_layer_math(ComputeMode mode) {
  switch (mode) {
    case ComputeMode::kFp32:
      return std::make_unique<LayerMathFor<kernels::Fp32Math>>();
    case ComputeMode::kBf16:
      return std::make_unique<LayerMathFor<kernels::Bf16Math>>();
  }
  return std::make_unique<LayerMathFor<kernels::Fp32Math>>();
}

}  // namespace moeslice
