// The decoder layer loop, windows and the LM head.
#include "forward/forward_pass.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>

#include <fmt/core.h>

#include "common/dtype.h"
#include "common/error.h"
#include "forward/attention/attention_block.h"
#include "forward/layer_math.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "kernels/thread_pool.h"

namespace moeslice {
namespace {

// The first element of `tensor` that is NaN or infinite: its index and value.
std::optional<std::pair<size_t, float>> first_non_finite(const TensorView& tensor) {
  if (!is_compute_float(tensor.dtype)) return std::nullopt;  // FP8, MXFP4 blocks: not scanned
  const size_t element_bytes = dtype_bits(tensor.dtype) / 8;
  const size_t count = tensor.bytes.size() / element_bytes;
  constexpr size_t kChunk = 4096;
  std::vector<float> values(kChunk);
  for (size_t begin = 0; begin < count; begin += kChunk) {
    const size_t n = std::min(kChunk, count - begin);
    convert_to_f32(tensor.dtype, tensor.bytes.data() + begin * element_bytes, values.data(), n);
    for (size_t i = 0; i < n; ++i)
      if (!std::isfinite(values[i])) return std::pair{begin + i, values[i]};
  }
  return std::nullopt;
}

std::string value_name(float value) {
  return std::isnan(value) ? "NaN" : value > 0 ? "+Inf" : "-Inf";
}

}  // namespace

InputError NonFiniteHiddenState::in(std::string_view input) const {
  return InputError(fmt::format("{}: {}", input, what()));
}

ForwardPass::ForwardPass(const Model& model, ForwardOptions options)
    : spec_(model.spec),
      checkpoint_(*model.checkpoint),
      options_(std::move(options)),
      config_(resolve_forward_config(spec_)),
      weights_(load_model_weights(spec_, *model.checkpoint)) {
  if (options_.keep && options_.keep->kept.size() != static_cast<size_t>(spec_.num_layers))
    throw InputError(fmt::format("{}: the plan has {} layers, the model {}", options_.keep->source,
                                 options_.keep->kept.size(), spec_.num_layers));
  for (const LayerSpec& layer : spec_.layers) {
    // parse_keep_plan refuses this too; a plan built in code gets the same check.
    if (!layer.has_experts && options_.keep && options_.keep->kept_in(layer.index) != nullptr)
      throw InputError(fmt::format("{}: layer {} has no experts, so its entry must be null",
                                   options_.keep->source, layer.index));
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
  math_ = make_layer_math(options_.compute);
  math_->prepare(weights_);
  // Routers after prepare(): they copy the router's correction bias at the compute precision.
  routing_.resize(spec_.layers.size());
  for (const LayerSpec& layer : spec_.layers)
    if (layer.has_experts)
      routing_[static_cast<size_t>(layer.index)] =
          routing_of(layer, options_.keep ? options_.keep->kept_in(layer.index) : nullptr);
  attention_ = math_->attention_block(attention_params(spec_, config_));
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
    std::optional<kernels::YarnScaling> yarn;
    if (config_.yarn)
      yarn = kernels::YarnScaling{config_.yarn->factor,    config_.yarn->original_max_positions,
                                  config_.yarn->beta_fast, config_.yarn->beta_slow,
                                  config_.yarn->truncate,  config_.yarn->attention_factor};
    rope_ = std::make_unique<kernels::RopeTable>(static_cast<size_t>(config_.rope_dim),
                                                 config_.rope_theta, size, yarn);
  }
  return *rope_;
}

void ForwardPass::check_ids(std::span<const int32_t> tokens, size_t first_index) const {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= spec_.vocab)
      throw InputError(fmt::format("token {} is {}, outside the vocabulary [0, {})",
                                   first_index + i, tokens[i], spec_.vocab));
}

WindowState ForwardPass::run_layers(std::span<const int32_t> tokens, Window window,
                                    ForwardObserver* observer) {
  WindowState state = embed(tokens, window);
  for (int64_t l = 0; l <= last_layer_; ++l) run_layer(l, state, observer);
  return state;
}

DocumentResult ForwardPass::run(std::span<const int32_t> tokens, ForwardObserver* observer) {
  check_ids(tokens, 0);
  DocumentResult result;
  result.windows = windows_for(tokens.size());
  if (!options_.skip_lm_head)
    result.logits = kernels::Matrix(tokens.size(), static_cast<size_t>(spec_.vocab));
  for (const Window& window : result.windows) {
    const WindowState state = run_layers(tokens, window, observer);
    if (!options_.skip_lm_head)
      finish(state, result.logits.ref().row_range(window.begin, window.length));
  }
  return result;
}

kernels::ConstMatrixRef ForwardPass::window_logits(std::span<const int32_t> tokens, Window window,
                                                   ForwardObserver* observer) {
  if (options_.skip_lm_head)
    throw std::logic_error("ForwardPass::window_logits on a pass that skips the LM head");
  return logits_of(run_layers(tokens, window, observer));
}

kernels::ConstMatrixRef ForwardPass::logits_of(const WindowState& state) {
  if (options_.skip_lm_head)
    throw std::logic_error("ForwardPass::logits_of on a pass that skips the LM head");
  window_logits_.resize(state.hidden.rows(), static_cast<size_t>(spec_.vocab));
  finish(state, window_logits_.ref());
  return window_logits_.cref();
}

WindowState ForwardPass::embed(std::span<const int32_t> document, Window window) const {
  const std::span<const int32_t> tokens = document.subspan(window.begin, window.length);
  check_ids(tokens, window.begin);
  check_sequence_length(spec_, config_, static_cast<int64_t>(tokens.size()));
  const size_t hidden = static_cast<size_t>(spec_.hidden);
  WindowState state{window, kernels::Matrix(tokens.size(), hidden)};
  // Embedding rows, converted per token.
  for (size_t t = 0; t < tokens.size(); ++t)
    weights_.embed_rows.rows_to_f32(static_cast<size_t>(tokens[t]), 1, state.hidden.row(t));
  math_->round_activations(state.hidden.ref());
  check_finite(state.hidden.cref(), -1, window);
  return state;
}

bool ForwardPass::post_norm() const { return spec_.family->norm_placement == NormPlacement::kPost; }

void ForwardPass::run_layer(int64_t l, WindowState& state, ForwardObserver* observer) {
  run_attention(l, state);
  run_mlp(l, state, observer);
}

void ForwardPass::run_attention(int64_t l, WindowState& state) {
  kernels::Matrix& h = state.hidden;
  const kernels::RopeTable& rope = rope_for(h.rows());
  const kernels::NormWeightOrder order = norm_weight_order(*spec_.family);
  const float eps = config_.rms_norm_eps;
  const LayerWeights& layer = weights_.layers[static_cast<size_t>(l)];
  // Scratch kept across calls: fresh multi-megabyte buffers per layer cost page faults.
  normed_.resize(h.rows(), h.cols());
  sublayer_.resize(h.rows(), h.cols());
  // Pre-norm h += attn(norm(h)); post-norm (FlexOlmo) h += norm(attn(h)).
  if (post_norm()) {
    attention_->run(layer.attention, h.cref(), rope, sublayer_.ref(), pool_.get());
    math_->rms_norm(sublayer_.cref(), layer.attn_norm, eps, sublayer_.ref(), order, pool_.get());
  } else {
    math_->rms_norm(h.cref(), layer.attn_norm, eps, normed_.ref(), order, pool_.get());
    attention_->run(layer.attention, normed_.cref(), rope, sublayer_.ref(), pool_.get());
  }
  math_->add_residual(h.ref(), sublayer_.cref(), pool_.get());
}

kernels::ConstMatrixRef ForwardPass::mlp_input(int64_t l, const kernels::Matrix& h) {
  normed_.resize(h.rows(), h.cols());
  sublayer_.resize(h.rows(), h.cols());
  if (post_norm()) return h.cref();  // the norm comes after the MLP
  math_->rms_norm(h.cref(), weights_.layers[static_cast<size_t>(l)].ffn_norm, config_.rms_norm_eps,
                  normed_.ref(), norm_weight_order(*spec_.family), pool_.get());
  return normed_.cref();
}

void ForwardPass::route_experts(int64_t l, const WindowState& state, const MoeRouting& routing,
                                kernels::ConstMatrixRef input, ForwardObserver* observer) {
  math_->moe(*weights_.layers[static_cast<size_t>(l)].moe, routing, input, sublayer_.ref(), record_,
             pool_.get(), {});
  if (observer != nullptr) report_moe(l, state, routing, 0, *observer);
}

void ForwardPass::report_moe(int64_t l, const WindowState& state, const MoeRouting& routing,
                             size_t first_row, ForwardObserver& observer) const {
  const size_t n = state.hidden.rows();
  const size_t slots = routing.slots;
  MoeLayerEvent event;
  event.layer = l;
  event.window_begin = state.window.begin;
  event.tokens = n;
  event.experts = routing.experts;
  event.slots = slots;
  event.router_logits = record_.router_logits.cref().row_range(first_row, n);
  event.router_probs = record_.router_probs.cref().row_range(first_row, n);
  event.chosen =
      std::span<const int32_t>(record_.routing.expert).subspan(first_row * slots, n * slots);
  event.weights =
      std::span<const float>(record_.routing.weight).subspan(first_row * slots, n * slots);
  if (!record_.slot_norms.empty())  // empty when only the router ran (MoeObservation::kRouting)
    event.expert_out_norms =
        std::span<const float>(record_.slot_norms).subspan(first_row * slots, n * slots);
  observer.on_moe_layer(event);
}

void ForwardPass::add_mlp_output(int64_t l, kernels::MatrixRef h, kernels::MatrixRef sublayer) {
  if (post_norm())
    math_->rms_norm(sublayer, weights_.layers[static_cast<size_t>(l)].ffn_norm,
                    config_.rms_norm_eps, sublayer, norm_weight_order(*spec_.family), pool_.get());
  math_->add_residual(h, sublayer, pool_.get());
}

void ForwardPass::run_mlp(int64_t l, WindowState& state, ForwardObserver* observer) {
  kernels::Matrix& h = state.hidden;
  const LayerWeights& layer = weights_.layers[static_cast<size_t>(l)];
  const kernels::ConstMatrixRef input = mlp_input(l, h);
  if (layer.moe)
    route_experts(l, state, *routing_[static_cast<size_t>(l)], input, observer);
  else
    math_->dense_mlp(*layer.mlp, input, sublayer_.ref(), pool_.get());
  add_mlp_output(l, h.ref(), sublayer_.ref());
  check_finite(h.cref(), l, state.window);
}

template <class F>
void ForwardPass::for_each_pool(std::span<WindowState* const> states,
                                std::span<ForwardObserver* const> observers, F&& f) {
  assert(observers.empty() || observers.size() == states.size());
  size_t begin = 0;
  while (begin < states.size()) {
    size_t end = begin, tokens = 0;
    while (end < states.size() &&
           (end == begin || tokens + states[end]->hidden.rows() <= kPooledTokens))
      tokens += states[end++]->hidden.rows();
    f(states.subspan(begin, end - begin),
      observers.empty() ? observers : observers.subspan(begin, end - begin));
    begin = end;
  }
}

void ForwardPass::pooled_moe(int64_t l, std::span<WindowState* const> states,
                             const MoeRouting& routing, std::span<ForwardObserver* const> observers,
                             MoeObservation observed) {
  const size_t hidden = states.front()->hidden.cols();
  std::vector<size_t> lengths;
  size_t total = 0;
  for (const WindowState* state : states) {
    lengths.push_back(state->hidden.rows());
    total += state->hidden.rows();
  }
  pooled_input_.resize(total, hidden);
  size_t row = 0;
  for (const WindowState* state : states) {
    const kernels::ConstMatrixRef input = mlp_input(l, state->hidden);
    const kernels::MatrixRef pooled = pooled_input_.ref().row_range(row, input.rows);
    kernels::parallel_rows(pool_.get(), input.rows, [&](size_t begin, size_t count) {
      for (size_t t = begin; t < begin + count; ++t)
        std::copy_n(input.row(t), hidden, pooled.row(t));
    });
    row += input.rows;
  }
  const MoeWeights& weights = *weights_.layers[static_cast<size_t>(l)].moe;
  if (observed == MoeObservation::kRouting) {
    math_->moe_routing(weights, routing, pooled_input_.cref(), record_, pool_.get(), lengths);
  } else {
    pooled_output_.resize(total, hidden);
    math_->moe(weights, routing, pooled_input_.cref(), pooled_output_.ref(), record_, pool_.get(),
               lengths);
  }
  row = 0;
  for (size_t i = 0; i < states.size(); ++i) {
    if (!observers.empty() && observers[i] != nullptr)
      report_moe(l, *states[i], routing, row, *observers[i]);
    row += states[i]->hidden.rows();
  }
}

void ForwardPass::run_layer_batch(int64_t l, std::span<WindowState* const> states,
                                  std::span<ForwardObserver* const> observers) {
  for (WindowState* state : states) run_attention(l, *state);
  run_mlp_batch(l, states, observers);
}

void ForwardPass::run_mlp_batch(int64_t l, std::span<WindowState* const> states,
                                std::span<ForwardObserver* const> observers) {
  const LayerWeights& layer = weights_.layers[static_cast<size_t>(l)];
  if (!layer.moe) {  // a dense MLP: nothing to pool
    for (WindowState* state : states) {
      const kernels::ConstMatrixRef input = mlp_input(l, state->hidden);
      math_->dense_mlp(*layer.mlp, input, sublayer_.ref(), pool_.get());
      add_mlp_output(l, state->hidden.ref(), sublayer_.ref());
    }
    return;
  }
  for_each_pool(states, observers, [&](auto pool_states, auto pool_observers) {
    pooled_moe(l, pool_states, *routing_[static_cast<size_t>(l)], pool_observers);
    size_t row = 0;
    for (WindowState* state : pool_states) {
      const size_t n = state->hidden.rows();
      add_mlp_output(l, state->hidden.ref(), pooled_output_.ref().row_range(row, n));
      row += n;
    }
  });
}

void ForwardPass::observe_moe_batch(int64_t l, std::span<WindowState* const> states,
                                    std::span<ForwardObserver* const> observers, bool unrestricted,
                                    MoeObservation observed) {
  const LayerSpec& layer = spec_.layers.at(static_cast<size_t>(l));
  if (!layer.has_experts) throw InputError(fmt::format("layer {} has no experts to observe", l));
  std::optional<MoeRouting> full;
  if (unrestricted) full = routing_of(layer, nullptr);
  const MoeRouting& routing = full ? *full : *routing_[static_cast<size_t>(l)];
  for_each_pool(states, observers, [&](auto pool_states, auto pool_observers) {
    pooled_moe(l, pool_states, routing, pool_observers, observed);
  });
}

void ForwardPass::check_layer_output(int64_t l, const WindowState& state) const {
  check_finite(state.hidden.cref(), l, state.window);
}

void ForwardPass::check_finite(kernels::ConstMatrixRef values, int64_t layer, Window window) const {
  // One pass over the [tokens, hidden] (or [tokens, vocab]) floats just computed: negligible
  // beside the layer (or LM head) that computed them.
  std::atomic<bool> finite = true;
  kernels::parallel_rows(pool_.get(), values.rows, [&](size_t begin, size_t count) {
    for (size_t r = begin; r < begin + count && finite.load(std::memory_order_relaxed); ++r) {
      const float* row = values.row(r);
      float sum = 0;  // NaN as soon as one element is NaN or infinite
      for (size_t c = 0; c < values.cols; ++c) sum += row[c] * 0.0f;
      if (sum != 0) finite.store(false, std::memory_order_relaxed);
    }
  });
  if (finite) return;
  // Only now: blame a weight that produced it, if one holds a NaN or infinity.
  const auto blame = [&](const ResolvedTensor& resolved) {
    const TensorView* tensor = checkpoint_.find(resolved.name);
    if (tensor == nullptr) return;
    if (const auto bad = first_non_finite(*tensor))
      throw ModelError(fmt::format(
          "tensor '{}' holds {} at element {} ({}); the forward pass cannot compute with it",
          tensor->name, value_name(bad->second), bad->first, checkpoint_.path().string()));
  };
  const bool in_layer = layer >= 0 && layer < spec_.num_layers;
  if (in_layer)
    spec_.layers.at(static_cast<size_t>(layer)).for_each_tensor(blame);
  else
    for (const ResolvedTensor& tensor : spec_.model_tensors) blame(tensor);
  const std::string where = in_layer    ? fmt::format("the hidden state after layer {}", layer)
                            : layer < 0 ? std::string("the hidden state after the embeddings")
                                        : std::string("the output of the LM head");
  throw NonFiniteHiddenState(
      layer, fmt::format("{} (tokens {} to {}) holds NaN or Inf although the weights that "
                         "computed it are finite: a numeric overflow on this input",
                         where, window.begin, window.begin + window.length - 1));
}

void ForwardPass::restrict_layer(int64_t l, const std::vector<int32_t>& kept) {
  const LayerSpec& layer = spec_.layers.at(static_cast<size_t>(l));
  if (!layer.has_experts) throw InputError(fmt::format("layer {} has no experts to restrict", l));
  routing_[static_cast<size_t>(l)] = routing_of(layer, &kept);
}

MoeRouting ForwardPass::routing_of(const LayerSpec& layer, const std::vector<int32_t>* kept) const {
  const LayerWeights& weights = weights_.layers.at(static_cast<size_t>(layer.index));
  return layer_routing(spec_, layer, kept, weights.moe->router_choice_bias);
}

void ForwardPass::finish(const WindowState& state, kernels::MatrixRef logits) {
  if (options_.skip_lm_head)
    throw std::logic_error("ForwardPass::finish called with skip_lm_head set");
  const kernels::Matrix& h = state.hidden;
  normed_.resize(h.rows(), h.cols());
  math_->rms_norm(h.cref(), weights_.final_norm, config_.rms_norm_eps, normed_.ref(),
                  norm_weight_order(*spec_.family), pool_.get());
  math_->lm_head(normed_.cref(), weights_.lm_head, logits, pool_.get());
  check_finite(logits, spec_.num_layers, state.window);
}

void ForwardPass::release_layer(int64_t layer) const {
  release_layer_pages(checkpoint_, spec_.layers.at(static_cast<size_t>(layer)));
}

}  // namespace moeslice
