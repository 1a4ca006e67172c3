// Building the per-layer weight views from a ModelSpec and its checkpoint.
#include "forward/layer_weights.h"

#include <algorithm>
#include <cstring>

#include <fmt/core.h>

#include "common/dtype.h"
#include "common/error.h"
#include "forward/fused_experts.h"
#include "forward/weight_views.h"

namespace moeslice {
namespace {

class Loader {
 public:
  Loader(const ModelSpec& spec, const TensorStore& checkpoint)
      : spec_(spec), checkpoint_(checkpoint) {}

  const TensorView& tensor(const std::string& name) const { return checkpoint_.tensor(name); }

  // A weight matrix, FP8 ones with their block scales.
  kernels::WeightMatrix weight(const TensorView& view) const {
    return weight_matrix(view, checkpoint_, spec_.forward.fp8);
  }

  kernels::WeightMatrix matrix(const LayerSpec& layer, TensorRole role) const {
    return weight(tensor(required(layer, role)));
  }

  // A 1-D tensor as fp32, or empty when the layer has no tensor of this role.
  std::vector<float> optional_vector(const LayerSpec& layer, TensorRole role) const {
    const ResolvedTensor* resolved = layer.find(role);
    if (resolved == nullptr || checkpoint_.find(resolved->name) == nullptr) return {};
    const TensorView& view = tensor(resolved->name);
    return vector_to_f32(view, static_cast<size_t>(view.numel()));
  }

  std::vector<float> vector(const LayerSpec& layer, TensorRole role) const {
    const TensorView& view = tensor(required(layer, role));
    return vector_to_f32(view, static_cast<size_t>(view.numel()));
  }

  // Any-shaped F32/BF16/F16 tensor flattened to fp32 (the [1, hidden] shared-expert gate).
  std::vector<float> flattened(const std::string& name) const {
    const TensorView& view = tensor(name);
    if (!is_compute_float(view.dtype))
      throw ModelError(
          fmt::format("tensor '{}' has dtype {}; the forward pass computes with "
                      "F32, BF16 or F16 weights only",
                      name, dtype_name(view.dtype)));
    std::vector<float> out(static_cast<size_t>(view.numel()));
    convert_to_f32(view.dtype, view.bytes.data(), out.data(), out.size());
    return out;
  }

  kernels::ExpertMlp mlp(const LayerSpec& layer, TensorRole gate, TensorRole up,
                         TensorRole down) const {
    return {matrix(layer, gate), matrix(layer, up), matrix(layer, down)};
  }

  kernels::ExpertMlp expert(const LayerSpec& layer, int64_t e) const {
    auto get = [&](TensorRole role) {
      const ResolvedTensor* resolved = layer.find_expert(e, role);
      if (resolved == nullptr)
        throw ModelError(fmt::format("layer {} expert {}: the {} profile names no '{}' tensor",
                                     layer.index, e, spec_.family->family, name(role)));
      return weight(tensor(resolved->name));
    };
    return {get(TensorRole::kGateProj), get(TensorRole::kUpProj), get(TensorRole::kDownProj)};
  }

 private:
  std::string required(const LayerSpec& layer, TensorRole role) const {
    const ResolvedTensor* resolved = layer.find(role);
    if (resolved == nullptr)
      throw ModelError(fmt::format("layer {}: the {} profile names no '{}' tensor", layer.index,
                                   spec_.family->family, name(role)));
    return resolved->name;
  }

  const ModelSpec& spec_;
  const TensorStore& checkpoint_;
};

const TensorView& model_tensor(const ModelSpec& spec, const TensorStore& checkpoint,
                               TensorRole role) {
  const ResolvedTensor* resolved = spec.find_model_tensor(role);
  if (resolved == nullptr)
    throw ModelError(
        fmt::format("the {} profile names no '{}' tensor", spec.family->family, name(role)));
  return checkpoint.tensor(resolved->name);
}

// A stored head under tie_word_embeddings must be the embedding itself.
void check_tied_head(const TensorStore& checkpoint, const TensorView& embed) {
  const TensorView* head = checkpoint.find("lm_head.weight");
  if (head == nullptr) return;
  bool same = head->shape == embed.shape;
  if (same && head->dtype == embed.dtype) {
    same = std::memcmp(head->bytes.data(), embed.bytes.data(), embed.bytes.size()) == 0;
  } else if (same && is_compute_float(head->dtype) && is_compute_float(embed.dtype)) {
    const size_t cols = static_cast<size_t>(embed.shape[1]);
    const kernels::WeightMatrix a = weight_matrix(embed), b = weight_matrix(*head);
    std::vector<float> row_a(cols), row_b(cols);
    for (size_t r = 0; same && r < a.rows(); ++r) {
      a.rows_to_f32(r, 1, row_a.data());
      b.rows_to_f32(r, 1, row_b.data());
      same = row_a == row_b;
    }
  }
  if (!same)
    throw ModelError(fmt::format(
        "{}: config.json sets tie_word_embeddings but the checkpoint's lm_head.weight differs "
        "from model.embed_tokens.weight; fix the config or drop the stored head",
        checkpoint.path().string()));
}

}  // namespace

ModelWeights load_model_weights(const ModelSpec& spec, const TensorStore& checkpoint) {
  const Loader load(spec, checkpoint);
  ModelWeights weights;
  weights.embed = &model_tensor(spec, checkpoint, TensorRole::kEmbed);
  weights.embed_rows = load.weight(*weights.embed);
  const TensorView& final_norm = model_tensor(spec, checkpoint, TensorRole::kFinalNorm);
  weights.final_norm = vector_to_f32(final_norm, static_cast<size_t>(spec.hidden));
  if (spec.flag(Flag::kTieWordEmbeddings)) {
    check_tied_head(checkpoint, *weights.embed);
    weights.lm_head = load.weight(*weights.embed);
  } else {
    weights.lm_head = load.weight(model_tensor(spec, checkpoint, TensorRole::kLmHead));
  }

  // Reserved: fused experts' ExpertMlp point into their layer's bias vectors, which must not move.
  weights.layers.reserve(spec.layers.size());
  for (const LayerSpec& layer : spec.layers) {
    LayerWeights out;
    out.index = layer.index;
    out.attn_norm = load.vector(layer, TensorRole::kAttnNorm);
    out.ffn_norm = load.vector(layer, TensorRole::kFfnNorm);
    AttentionWeights& attention = out.attention;
    if (spec.family->attention == AttentionKind::kMla) {
      if (spec.flag(Flag::kQLora)) {
        attention.q_a = load.matrix(layer, TensorRole::kQAProj);
        attention.q_a_norm = load.vector(layer, TensorRole::kQALayernorm);
        attention.q_b = load.matrix(layer, TensorRole::kQBProj);
      } else {
        attention.q = load.matrix(layer, TensorRole::kQProj);
      }
      attention.kv_a = load.matrix(layer, TensorRole::kKvAProjWithMqa);
      attention.kv_a_norm = load.vector(layer, TensorRole::kKvALayernorm);
      attention.kv_b = load.matrix(layer, TensorRole::kKvBProj);
    } else {
      attention.q = load.matrix(layer, TensorRole::kQProj);
      attention.k = load.matrix(layer, TensorRole::kKProj);
      attention.v = load.matrix(layer, TensorRole::kVProj);
    }
    attention.o = load.matrix(layer, TensorRole::kOProj);
    attention.q_bias = load.optional_vector(layer, TensorRole::kQBias);
    attention.k_bias = load.optional_vector(layer, TensorRole::kKBias);
    attention.v_bias = load.optional_vector(layer, TensorRole::kVBias);
    attention.o_bias = load.optional_vector(layer, TensorRole::kOBias);
    if (spec.family->attention_sinks) attention.sinks = load.vector(layer, TensorRole::kSinks);
    if (!spec.forward.layer_windows.empty())
      attention.window =
          static_cast<size_t>(spec.forward.layer_windows.at(static_cast<size_t>(layer.index)));
    // The family's q/k norms, where the layer has them (GLM-4.5 only with use_qk_norm).
    if (spec.family->qk_norm != QkNorm::kNone && layer.find(TensorRole::kQNorm) != nullptr) {
      attention.q_norm = load.vector(layer, TensorRole::kQNorm);
      attention.k_norm = load.vector(layer, TensorRole::kKNorm);
    }
    if (layer.has_experts) {
      MoeWeights moe;
      moe.router = load.matrix(layer, TensorRole::kRouter);
      moe.router_choice_bias = load.optional_vector(layer, TensorRole::kRouterCorrectionBias);
      moe.router_bias = load.optional_vector(layer, TensorRole::kRouterBias);
      if (spec.family->expert_storage == ExpertStorage::kFused) {
        load_fused_experts(spec, checkpoint, layer, moe);
      } else {
        moe.experts.reserve(static_cast<size_t>(layer.num_experts));
        for (int64_t e = 0; e < layer.num_experts; ++e)
          moe.experts.push_back(load.expert(layer, e));
      }
      if (spec.family->shared_expert_kind == SharedExpertKind::kSeparateGated) {
        moe.shared = load.mlp(layer, TensorRole::kSharedGateProj, TensorRole::kSharedUpProj,
                              TensorRole::kSharedDownProj);
        moe.shared_gate = load.flattened(layer.name_of(TensorRole::kSharedExpertGate));
        if (moe.shared_gate.size() != static_cast<size_t>(spec.hidden))
          throw ModelError(fmt::format("tensor '{}' has {} elements, expected {}",
                                       layer.name_of(TensorRole::kSharedExpertGate),
                                       moe.shared_gate.size(), spec.hidden));
      } else if (spec.family->shared_expert_kind == SharedExpertKind::kSeparate &&
                 spec.shared_experts > 0) {
        moe.shared = load.mlp(layer, TensorRole::kSharedGateProj, TensorRole::kSharedUpProj,
                              TensorRole::kSharedDownProj);
      }
      out.moe = std::move(moe);
    } else {
      out.mlp = load.mlp(layer, TensorRole::kGateProj, TensorRole::kUpProj, TensorRole::kDownProj);
    }
    weights.layers.push_back(std::move(out));
  }
  return weights;
}

}  // namespace moeslice
