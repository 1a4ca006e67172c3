// The layer-by-layer driver: the decoder layer steps of forward_pass.cpp's run_window, applied to
// every calibration window before moving to the next layer.
#include "rank/layerwise_select.h"

#include <algorithm>
#include <memory>
#include <numeric>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/dtype.h"
#include "common/error.h"
#include "forward/attention_block.h"
#include "forward/forward_pass.h"
#include "forward/kernels/moe.h"
#include "forward/kernels/rms_norm.h"
#include "forward/kernels/rope.h"
#include "forward/kernels/thread_pool.h"
#include "forward/layer_weights.h"
#include "forward/moe_block.h"
#include "profile/profiler.h"

namespace moeslice {
namespace {

// One window of one document: an independent sequence whose hidden state moves layer by layer.
struct WindowState {
  int64_t document = 0;
  kernels::Matrix h;  // [tokens, hidden]
};

void add_into(kernels::MatrixRef dst, kernels::ConstMatrixRef src) {
  for (size_t r = 0; r < dst.rows; ++r) {
    float* d = dst.row(r);
    const float* s = src.row(r);
    for (size_t c = 0; c < dst.cols; ++c) d[c] += s[c];
  }
}

// Adds one window's routing at `layer` into document `document`'s block, as the profiler does.
void accumulate(UsageProfile& usage, int64_t document, int64_t layer, const MoeRecord& record,
                size_t tokens, size_t slots) {
  const size_t base = usage.index(document, layer, 0);
  int32_t* counts = &usage.counts[base];
  float* mass = &usage.mass[base];
  float* gate_norm = &usage.gate_norm[base];
  const size_t experts = static_cast<size_t>(usage.experts);
  for (size_t t = 0; t < tokens; ++t) {
    const float* probabilities = record.router_probs.row(t);
    for (size_t e = 0; e < experts; ++e) mass[e] += probabilities[e];
    for (size_t s = 0; s < slots; ++s) {
      const size_t slot = t * slots + s;
      const int32_t expert = record.routing.expert[slot];
      if (expert < 0) continue;
      counts[expert] += 1;
      gate_norm[expert] += record.routing.weight[slot] * record.slot_norms[slot];
    }
  }
}

// Everything one layer step needs, fixed for the whole run.
struct LayerStepper {
  const ModelSpec& spec;
  const ForwardConfig& config;
  const ModelWeights& weights;
  const kernels::RopeTable& rope;
  kernels::ThreadPool* pool;
  AttentionParams attention;
  kernels::NormWeightOrder order;
  bool post_norm;
  kernels::Matrix normed, sublayer;  // scratch

  // h += attention sublayer (pre- or post-norm).
  void attend(const LayerWeights& layer, kernels::Matrix& h) {
    const size_t n = h.rows();
    normed.resize(n, h.cols());
    sublayer.resize(n, h.cols());
    if (post_norm) {
      attention_block(layer.attention, attention, h.cref(), rope, sublayer.ref(), pool);
      kernels::rms_norm(sublayer.cref(), layer.attn_norm, config.rms_norm_eps, sublayer.ref(),
                        order);
    } else {
      kernels::rms_norm(h.cref(), layer.attn_norm, config.rms_norm_eps, normed.ref(), order);
      attention_block(layer.attention, attention, normed.cref(), rope, sublayer.ref(), pool);
    }
    add_into(h.ref(), sublayer.cref());
  }

  // The MLP/MoE input: h itself (post-norm) or its normalised copy in `normed`. Also shapes
  // `sublayer` for the MLP output of this window (windows differ in length).
  kernels::ConstMatrixRef mlp_input(const LayerWeights& layer, const kernels::Matrix& h) {
    sublayer.resize(h.rows(), h.cols());
    if (post_norm) return h.cref();
    normed.resize(h.rows(), h.cols());
    kernels::rms_norm(h.cref(), layer.ffn_norm, config.rms_norm_eps, normed.ref(), order);
    return normed.cref();
  }

  // h += the MLP output in `sublayer` (normalised first when post-norm).
  void add_mlp_output(const LayerWeights& layer, kernels::Matrix& h) {
    if (post_norm)
      kernels::rms_norm(sublayer.cref(), layer.ffn_norm, config.rms_norm_eps, sublayer.ref(),
                        order);
    add_into(h.ref(), sublayer.cref());
  }
};

kernels::NormWeightOrder norm_order(const FamilyProfile& family) {
  return family.rms_norm_order == RmsNormOrder::kCastThenWeight
             ? kernels::NormWeightOrder::kCastThenScale
             : kernels::NormWeightOrder::kScaleThenCast;
}

}  // namespace

SelectResult select_experts(const Model& model, std::span<const TokenDocument> documents,
                            const SelectOptions& options) {
  if (options.rank.domain)
    throw InputError("select ranks the whole calibration corpus; a domain filter does not apply");
  if (options.rank.nonuniform)
    throw InputError(
        "select chooses layer by layer and cannot spend a global budget "
        "(nonuniform); use rank --nonuniform on a profile");
  if (documents.empty()) throw InputError("the calibration corpus holds no document");
  const ModelSpec& spec = model.spec;

  SelectResult result;
  RankedPlan& plan = result.plan;
  plan.layout = layout_from_spec(spec, normalized_absolute_path(model.checkpoint.dir()));
  plan.options = options.rank;
  plan.method = fmt::format("moeslice-select-{}", metric_name(options.rank.metric));
  const ExpertLayout& layout = plan.layout;
  plan.keep_count = resolve_keep_count(options.rank.keep, layout.experts,
                                       static_cast<int64_t>(layout.shared.size()));

  // Windows exactly as the forward pass cuts them (and its refusals of unsupported models).
  ProfileOptions profile_options;
  profile_options.threads = options.threads;
  profile_options.max_seq = options.max_seq;
  UsageProfile& usage = result.usage;
  usage = empty_usage_profile(model, profile_options);
  std::vector<WindowState> windows;
  std::vector<std::vector<int32_t>> window_tokens;
  {
    ForwardOptions forward_options;
    forward_options.threads = 1;
    forward_options.max_seq = options.max_seq;
    forward_options.stop_after_last_moe_layer = true;
    const ForwardPass probe(model, forward_options);
    for (const TokenDocument& document : documents) {
      for (size_t i = 0; i < document.tokens.size(); ++i)
        if (document.tokens[i] < 0 || document.tokens[i] >= spec.vocab)
          throw InputError(
              fmt::format("document {}: token {} is {}, outside the vocabulary "
                          "[0, {})",
                          document.id, i, document.tokens[i], spec.vocab));
      const int64_t index = usage.add_document({document.id, document.domain});
      usage.tokens[static_cast<size_t>(index)] = static_cast<int64_t>(document.tokens.size());
      for (const Window& window : probe.windows_for(document.tokens.size())) {
        windows.push_back({index, kernels::Matrix()});
        window_tokens.emplace_back(
            document.tokens.begin() + static_cast<std::ptrdiff_t>(window.begin),
            document.tokens.begin() + static_cast<std::ptrdiff_t>(window.begin + window.length));
      }
    }
  }
  const ForwardConfig config = resolve_forward_config(spec);
  const ModelWeights weights = load_model_weights(spec, model.checkpoint);
  kernels::ThreadPool pool(options.threads);
  const size_t hidden = static_cast<size_t>(spec.hidden);
  size_t longest = 1;
  for (const auto& tokens : window_tokens) {
    check_sequence_length(spec, config, static_cast<int64_t>(tokens.size()));
    longest = std::max(longest, tokens.size());
  }
  const kernels::RopeTable rope(static_cast<size_t>(spec.head_dim), config.rope_theta, longest);

  // Embeddings.
  const TensorView& embed = *weights.embed;
  const size_t row_bytes = hidden * dtype_bits(embed.dtype) / 8;
  for (size_t w = 0; w < windows.size(); ++w) {
    const std::vector<int32_t>& tokens = window_tokens[w];
    windows[w].h = kernels::Matrix(tokens.size(), hidden);
    for (size_t t = 0; t < tokens.size(); ++t)
      convert_to_f32(embed.dtype, embed.bytes.data() + static_cast<size_t>(tokens[t]) * row_bytes,
                     windows[w].h.row(t), hidden);
  }
  window_tokens.clear();

  AttentionParams attention;
  attention.heads = static_cast<size_t>(spec.heads);
  attention.kv_heads = static_cast<size_t>(spec.kv_heads);
  attention.head_dim = static_cast<size_t>(spec.head_dim);
  attention.qk_norm = spec.family->qk_norm;
  attention.rms_norm_eps = config.rms_norm_eps;
  attention.clip_qkv = config.clip_qkv;
  attention.norm_order = norm_order(*spec.family);
  LayerStepper step{spec,
                    config,
                    weights,
                    rope,
                    &pool,
                    attention,
                    norm_order(*spec.family),
                    spec.family->norm_placement == NormPlacement::kPost,
                    {},
                    {}};

  std::vector<int64_t> all_documents(static_cast<size_t>(usage.document_count()));
  std::iota(all_documents.begin(), all_documents.end(), int64_t{0});
  for (int64_t d : all_documents) plan.tokens += usage.tokens[static_cast<size_t>(d)];
  plan.documents = usage.document_count();
  plan.layers.resize(static_cast<size_t>(layout.layers));

  const int64_t last_moe_layer = layout.expert_layers.back();
  const int64_t moe_layers = static_cast<int64_t>(layout.expert_layers.size());
  int64_t moe_done = 0;
  MoeRecord record;
  for (int64_t l = 0; l <= last_moe_layer; ++l) {
    const LayerWeights& layer = weights.layers[static_cast<size_t>(l)];
    if (!layer.moe) {
      for (WindowState& window : windows) {
        step.attend(layer, window.h);
        const kernels::ConstMatrixRef input = step.mlp_input(layer, window.h);
        kernels::expert_mlp(input, *layer.mlp, step.sublayer.ref(), &pool);
        step.add_mlp_output(layer, window.h);
      }
      continue;
    }
    // Measure with this layer unrestricted (earlier layers already are as chosen).
    const auto routing = [&](const std::vector<int32_t>* kept) {
      return make_moe_routing(spec.family->routing, static_cast<size_t>(spec.num_experts),
                              static_cast<size_t>(spec.experts_per_token),
                              static_cast<size_t>(spec.shared_experts), config.renormalise_top_k,
                              kept);
    };
    const MoeRouting full = routing(nullptr);
    for (WindowState& window : windows) {
      step.attend(layer, window.h);
      const kernels::ConstMatrixRef input = step.mlp_input(layer, window.h);
      moe_block(*layer.moe, full, input, step.sublayer.ref(), record, &pool);
      accumulate(usage, window.document, l, record, window.h.rows(), full.slots);
    }
    // Choose, exactly as rank does from a profile.
    LayerChoice choice = score_layer(usage, l, all_documents, options.rank);
    std::vector<int32_t> kept = top_experts(choice.scores, plan.keep_count, layout.shared);
    set_kept(choice, std::move(kept), usage, l, all_documents, layout, options.rank.weighting);
    // Carry the hidden states through the restricted layer.
    const MoeRouting restricted = routing(&choice.kept);
    for (WindowState& window : windows) {
      const kernels::ConstMatrixRef input = step.mlp_input(layer, window.h);
      moe_block(*layer.moe, restricted, input, step.sublayer.ref(), record, &pool);
      step.add_mlp_output(layer, window.h);
    }
    plan.layers[static_cast<size_t>(l)] = std::move(choice);
    if (options.progress) options.progress(++moe_done, moe_layers);
  }
  usage.info["layerwise_select"] = nlohmann::json::parse(keep_plan_json(to_keep_plan(plan)));
  plan.source = {{"max_seq", usage.info.value("max_seq", nlohmann::json())}};
  return result;
}

}  // namespace moeslice
