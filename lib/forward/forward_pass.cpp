// The decoder layer loop, windows and the LM head.
#include "forward/forward_pass.h"

#include <algorithm>
#include <limits>

#include <fmt/core.h>

#include "common/dtype.h"
#include "common/error.h"
#include "forward/attention_block.h"
#include "forward/kernels/gemm_bf16.h"
#include "forward/kernels/moe.h"
#include "forward/kernels/rms_norm.h"
#include "forward/kernels/rope.h"
#include "forward/kernels/thread_pool.h"
#include "forward/kernels/weight_matrix.h"

namespace moeslice {
namespace {

kernels::NormWeightOrder norm_order(const FamilyProfile& family) {
  return family.rms_norm_order == RmsNormOrder::kCastThenWeight
             ? kernels::NormWeightOrder::kCastThenScale
             : kernels::NormWeightOrder::kScaleThenCast;
}

void add_into(kernels::MatrixRef dst, kernels::ConstMatrixRef src) {
  for (size_t r = 0; r < dst.rows; ++r) {
    float* d = dst.row(r);
    const float* s = src.row(r);
    for (size_t c = 0; c < dst.cols; ++c) d[c] += s[c];
  }
}

// bf16 mode residual: the sum of two BF16 tensors, rounded.
void add_into_bf16(kernels::MatrixRef dst, kernels::ConstMatrixRef src) {
  for (size_t r = 0; r < dst.rows; ++r) {
    float* d = dst.row(r);
    const float* s = src.row(r);
    for (size_t c = 0; c < dst.cols; ++c) d[c] = kernels::round_bf16(d[c] + s[c]);
  }
}

void round_vector_bf16(std::vector<float>& values) {
  for (float& value : values) value = kernels::round_bf16(value);
}

// bf16 mode: the reference converts every weight to BF16, the small fp32 copies (norm weights,
// biases, the shared-expert gate) included; exact for BF16 checkpoints.
void round_small_weights_bf16(ModelWeights& weights) {
  round_vector_bf16(weights.final_norm);
  for (LayerWeights& layer : weights.layers) {
    round_vector_bf16(layer.attn_norm);
    round_vector_bf16(layer.ffn_norm);
    AttentionWeights& a = layer.attention;
    for (std::vector<float>* v : {&a.q_bias, &a.k_bias, &a.v_bias, &a.o_bias, &a.q_norm, &a.k_norm})
      round_vector_bf16(*v);
    if (layer.moe) round_vector_bf16(layer.moe->shared_gate);
  }
}

}  // namespace

ForwardPass::ForwardPass(const Model& model, ForwardOptions options)
    : spec_(model.spec),
      options_(std::move(options)),
      config_(resolve_forward_config(spec_)),
      weights_(load_model_weights(spec_, model.checkpoint)) {
  if (options_.keep && options_.keep->kept.size() != static_cast<size_t>(spec_.num_layers))
    throw InputError(fmt::format("{}: the plan has {} layers, the model {}", options_.keep->source,
                                 options_.keep->kept.size(), spec_.num_layers));
  routing_.resize(spec_.layers.size());
  for (const LayerSpec& layer : spec_.layers) {
    const std::vector<int32_t>* kept = options_.keep ? options_.keep->kept_in(layer.index) : nullptr;
    if (!layer.has_experts) {
      // parse_keep_plan refuses this too; a plan built in code gets the same check.
      if (kept != nullptr)
        throw InputError(fmt::format("{}: layer {} has no experts, so its entry must be null",
                                     options_.keep->source, layer.index));
      continue;
    }
    routing_[static_cast<size_t>(layer.index)] = make_moe_routing(
        spec_.family->routing, static_cast<size_t>(spec_.num_experts),
        static_cast<size_t>(spec_.experts_per_token), static_cast<size_t>(spec_.shared_experts),
        config_.renormalise_top_k, kept);
  }
  last_layer_ = spec_.num_layers - 1;
  if (options_.stop_after_last_moe_layer) {
    options_.skip_lm_head = true;
    const auto moe_layers = spec_.expert_layers();
    last_layer_ = moe_layers.empty() ? -1 : moe_layers.back();
  }
  max_window_ = std::numeric_limits<size_t>::max();
  if (config_.max_positions) max_window_ = static_cast<size_t>(*config_.max_positions);
  if (options_.max_seq > 0) max_window_ = std::min(max_window_, options_.max_seq);
  if (options_.compute == ComputeMode::kBf16) {
    kernels::require_bf16_gemm();
    round_small_weights_bf16(weights_);
  }
  pool_ = std::make_unique<kernels::ThreadPool>(options_.threads);
}

ForwardPass::~ForwardPass() = default;

std::vector<Window> ForwardPass::windows_for(size_t tokens) const {
  std::vector<Window> windows;
  for (size_t begin = 0; begin < tokens; begin += max_window_)
    windows.push_back({begin, std::min(max_window_, tokens - begin)});
  return windows;
}

const kernels::RopeTable& ForwardPass::rope_for(size_t positions) {
  if (!rope_ || rope_->positions() < positions) {
    // Grow geometrically so a corpus of rising lengths does not rebuild the table per document.
    size_t size = std::max<size_t>(positions, rope_ ? 2 * rope_->positions() : 256);
    size = std::min(size, std::max(positions, max_window_));
    rope_ = std::make_unique<kernels::RopeTable>(static_cast<size_t>(spec_.head_dim),
                                                 config_.rope_theta, size);
  }
  return *rope_;
}

DocumentResult ForwardPass::run(std::span<const int32_t> tokens, ForwardObserver* observer) {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= spec_.vocab)
      throw InputError(fmt::format("token {} is {}, outside the vocabulary [0, {})", i, tokens[i],
                                   spec_.vocab));
  DocumentResult result;
  result.windows = windows_for(tokens.size());
  if (!options_.skip_lm_head)
    result.logits = kernels::Matrix(tokens.size(), static_cast<size_t>(spec_.vocab));
  for (const Window& window : result.windows) {
    kernels::MatrixRef logits;
    if (!options_.skip_lm_head) logits = result.logits.ref().row_range(window.begin, window.length);
    run_window(tokens.subspan(window.begin, window.length), window.begin, observer, logits);
  }
  return result;
}

void ForwardPass::run_window(std::span<const int32_t> tokens, size_t window_begin,
                             ForwardObserver* observer, kernels::MatrixRef logits) {
  const size_t n = tokens.size();
  const size_t hidden = static_cast<size_t>(spec_.hidden);
  check_sequence_length(spec_, config_, static_cast<int64_t>(n));
  kernels::ThreadPool* pool = pool_.get();
  const kernels::RopeTable& rope = rope_for(n);
  const kernels::NormWeightOrder order = norm_order(*spec_.family);
  const float eps = config_.rms_norm_eps;
  const bool post_norm = spec_.family->norm_placement == NormPlacement::kPost;
  const ComputeMode compute = options_.compute;
  const bool bf16 = compute == ComputeMode::kBf16;
  // Activations are rounded to this after every op (F32: never).
  const DType act = bf16 ? DType::BF16 : DType::F32;
  const auto residual = bf16 ? add_into_bf16 : add_into;
  const AttentionParams attention{static_cast<size_t>(spec_.heads),
                                  static_cast<size_t>(spec_.kv_heads),
                                  static_cast<size_t>(spec_.head_dim),
                                  spec_.family->qk_norm,
                                  eps,
                                  config_.clip_qkv,
                                  compute,
                                  order};

  // Embedding rows, converted per token.
  kernels::Matrix h(n, hidden);
  const TensorView& embed = *weights_.embed;
  const size_t row_bytes = hidden * dtype_bits(embed.dtype) / 8;
  for (size_t t = 0; t < n; ++t)
    convert_to_f32(embed.dtype, embed.bytes.data() + static_cast<size_t>(tokens[t]) * row_bytes,
                   h.row(t), hidden);
  if (bf16) kernels::round_bf16(h.ref());

  kernels::Matrix normed(n, hidden);
  kernels::Matrix sublayer(n, hidden);
  MoeRecord record;
  for (int64_t l = 0; l <= last_layer_; ++l) {
    const LayerWeights& layer = weights_.layers[static_cast<size_t>(l)];
    // Attention: pre-norm h += attn(norm(h)); post-norm (FlexOlmo) h += norm(attn(h)).
    if (post_norm) {
      attention_block(layer.attention, attention, h.cref(), rope, sublayer.ref(), pool);
      kernels::rms_norm(sublayer.cref(), layer.attn_norm, eps, sublayer.ref(), order, act);
    } else {
      kernels::rms_norm(h.cref(), layer.attn_norm, eps, normed.ref(), order, act);
      attention_block(layer.attention, attention, normed.cref(), rope, sublayer.ref(), pool);
    }
    residual(h.ref(), sublayer.cref());

    // MLP or MoE, same placement rule.
    kernels::ConstMatrixRef mlp_input = h.cref();
    if (!post_norm) {
      kernels::rms_norm(h.cref(), layer.ffn_norm, eps, normed.ref(), order, act);
      mlp_input = normed.cref();
    }
    if (layer.moe) {
      const MoeRouting& routing = *routing_[static_cast<size_t>(l)];
      moe_block(*layer.moe, routing, mlp_input, sublayer.ref(), record, pool, compute);
      if (observer != nullptr) {
        MoeLayerEvent event;
        event.layer = l;
        event.window_begin = window_begin;
        event.tokens = n;
        event.experts = routing.experts;
        event.slots = routing.slots;
        event.router_logits = record.router_logits.cref();
        event.router_probs = record.router_probs.cref();
        event.chosen = record.routing.expert;
        event.weights = record.routing.weight;
        event.expert_out_norms = record.slot_norms;
        observer->on_moe_layer(event);
      }
    } else if (bf16) {
      kernels::expert_mlp_bf16(mlp_input, *layer.mlp, sublayer.ref(), pool);
    } else {
      kernels::expert_mlp(mlp_input, *layer.mlp, sublayer.ref(), pool);
    }
    if (post_norm)
      kernels::rms_norm(sublayer.cref(), layer.ffn_norm, eps, sublayer.ref(), order, act);
    residual(h.ref(), sublayer.cref());
  }

  if (options_.skip_lm_head) return;
  kernels::rms_norm(h.cref(), weights_.final_norm, eps, normed.ref(), order, act);
  if (bf16)
    kernels::matmul_xWt_bf16(normed.cref(), weights_.lm_head, logits, {}, pool);
  else
    kernels::matmul_xWt(normed.cref(), weights_.lm_head, logits, {}, pool);
}

}  // namespace moeslice
