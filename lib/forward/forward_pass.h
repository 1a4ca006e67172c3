// The model-level CPU forward pass of the supported MoE families: embeddings, the decoder layers
// (pre- or post-norm attention and MoE/dense MLP sublayers), final norm and LM head. A document
// is one independent causal sequence with positions from 0; all its tokens go through each layer
// at once (batched prefill; MoE tokens grouped by expert). Documents longer than the context (or
// ForwardOptions::max_seq) are cut into windows, each an independent sequence from position 0.
//
// Numerics: weights are read from the mapped checkpoint (F32/BF16/F16) and converted to fp32
// block by block; all maths is fp32. Semantics follow tests/reference/README.md. With
// ForwardOptions::compute = kBf16, weights and activations are BF16 instead (BF16 weights used in
// place, others rounded block by block) with fp32 accumulation, as the reference's bfloat16 mode.
// The mode picks a precision policy once, at construction (forward/layer_math.h).
//
// The family's maths is made of blocks its profile chooses by kind, each built once per model
// (per MoE layer for routers, which fold in the keep plan): the attention block of its
// AttentionKind (forward/attention/) and the router of its RoutingKind (forward/routing/). This
// file holds what every family shares: the layer order (pre- or post-norm), residuals, windows.
//
// This is the API the profiler and evaluator reuse: an observer sees every MoE layer's routing.
//
// Thread safety: a ForwardPass is used by one thread at a time (it owns the thread pool and
// grows its RoPE table); the Model it reads must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/dtype.h"
#include "common/error.h"
#include "forward/forward_config.h"
#include "forward/layer_weights.h"
#include "forward/moe_block.h"
#include "kernels/matrix.h"
#include "model/keep_plan.h"
#include "model/model_spec.h"

namespace moeslice {

namespace kernels {
class RopeTable;
class ThreadPool;
}  // namespace kernels
class AttentionBlock;
class LayerMath;

struct ForwardOptions {
  size_t threads = 0;            // 0: every hardware thread
  std::optional<KeepPlan> keep;  // restricted routing
  size_t max_seq = 0;            // longest window; 0: the model's max_position_embeddings
  // Skip the final norm and LM head (DocumentResult::logits stays empty): profiling needs only
  // the routing.
  bool skip_lm_head = false;
  // Also skip every layer after the last MoE layer (implies skip_lm_head).
  bool stop_after_last_moe_layer = false;
  // kBf16 throws UnsupportedError at construction in a build without oneDNN.
  ComputeMode compute = ComputeMode::kFp32;
};

// A contiguous range of a document's tokens computed as one independent sequence.
struct Window {
  size_t begin = 0;
  size_t length = 0;
};

// What one MoE layer did on one window. Views stay valid only during the callback.
struct MoeLayerEvent {
  int64_t layer = 0;
  size_t window_begin = 0;  // document index of the window's first token (row 0 here)
  size_t tokens = 0;
  size_t experts = 0;
  size_t slots = 0;  // experts chosen per token (k, or fewer under a keep plan)
  kernels::ConstMatrixRef router_logits;  // [tokens, experts] raw, before the plan's mask
  kernels::ConstMatrixRef router_probs;   // [tokens, experts] after mask and softmax
  std::span<const int32_t> chosen;        // [tokens * slots] expert ids, top-k order
  std::span<const float> weights;         // [tokens * slots] gate weights
  // [tokens * slots] L2 norm before gate weighting; empty when the experts did not run
  // (observe_moe_batch with MoeObservation::kRouting).
  std::span<const float> expert_out_norms;
};

class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  virtual void on_moe_layer(const MoeLayerEvent& event) = 0;
};

// One window's hidden state between layers. With ForwardPass::embed, run_layer and finish a
// caller can run many windows through layer l before layer l+1 (profile --stream-layers, the
// layer-wise selector); run() is exactly embed, every layer, finish.
struct WindowState {
  Window window;           // its place in the document
  kernels::Matrix hidden;  // [window.length, hidden], the residual stream
};

// The hidden state became NaN or infinite after `layer` (-1: the embeddings; the number of layers:
// the logits of the final norm and LM head) although every weight that produced it is finite: a
// numeric overflow on this input. (Non-finite weights are a
// ModelError naming the tensor.) Callers that know the document say which (in_document).
class NonFiniteHiddenState : public InputError {
 public:
  NonFiniteHiddenState(int64_t layer, const std::string& message)
      : InputError(message), layer_(layer) {}
  int64_t layer() const { return layer_; }
  // The same error with `input` ("document 'd3'", "task 7") in front of the message.
  InputError in(std::string_view input) const;

 private:
  int64_t layer_;
};

// Runs `compute`; a NonFiniteHiddenState it throws is rethrown naming `input` (as in()).
template <class F>
decltype(auto) naming_input(std::string_view input, F&& compute) {
  try {
    return compute();
  } catch (const NonFiniteHiddenState& error) {
    throw error.in(input);
  }
}
// The same for a corpus document, by its id.
template <class F>
decltype(auto) naming_document(std::string_view document_id, F&& compute) {
  return naming_input("document '" + std::string(document_id) + "'", std::forward<F>(compute));
}

struct DocumentResult {
  kernels::Matrix logits;  // [tokens, vocab]; empty with skip_lm_head
  std::vector<Window> windows;
};

class ForwardPass {
 public:
  // Throws UnsupportedError for a family or config feature the forward pass does not implement
  // (see forward_config.h), ModelError for unusable tensors, InputError for a plan that does not
  // fit the model.
  ForwardPass(const Model& model, ForwardOptions options);
  ~ForwardPass();
  ForwardPass(const ForwardPass&) = delete;
  ForwardPass& operator=(const ForwardPass&) = delete;

  const ModelSpec& spec() const { return spec_; }
  const ForwardConfig& config() const { return config_; }
  const ForwardOptions& options() const { return options_; }
  // The longest sequence run at once (windows are at most this long).
  size_t max_window() const { return max_window_; }
  // How a document of `tokens` tokens is cut into windows.
  std::vector<Window> windows_for(size_t tokens) const;

  // Runs one document (token ids in [0, vocab), checked: InputError otherwise). The hidden state
  // is checked after the embeddings and after each layer, and the logits after the LM head: a
  // NaN or infinity there throws ModelError naming the first weight tensor of that layer (or of
  // the embeddings, final norm and LM head) that holds one, or, when every weight is finite,
  // NonFiniteHiddenState (so do embed() and run_mlp()).
  DocumentResult run(std::span<const int32_t> tokens, ForwardObserver* observer = nullptr);
  // One window of a document through every layer, the final norm and the LM head: its logits
  // [window.length, vocab] in a buffer of this pass that the next call reuses (no allocation, no
  // zeroing, once it is large enough), valid until then. Checks as run() does. Scoring a
  // document window by window keeps memory at one window's logits whatever the document's length.
  kernels::ConstMatrixRef window_logits(std::span<const int32_t> tokens, Window window,
                                        ForwardObserver* observer = nullptr);

  // ---- one layer at a time ----
  // Throws InputError for an id outside [0, vocab) (`document` is the whole document's ids).
  WindowState embed(std::span<const int32_t> document, Window window) const;
  // The layers run are 0..last_layer() (all, or up to the last MoE layer when
  // ForwardOptions::stop_after_last_moe_layer).
  int64_t last_layer() const { return last_layer_; }
  // A decoder layer: run_attention, then run_mlp (the MoE or dense MLP sublayer).
  void run_layer(int64_t layer, WindowState& state, ForwardObserver* observer = nullptr);
  void run_attention(int64_t layer, WindowState& state);
  void run_mlp(int64_t layer, WindowState& state, ForwardObserver* observer = nullptr);

  // ---- many windows through one layer at once (layer-major order) ----
  // The same as run_layer and run_mlp on each of `states` in turn, and bit for bit the same
  // results, but a MoE layer's routed experts see the tokens of many windows at once
  // (moe_block's segments: fewer weight blocks dequantized, larger GEMMs), up to kPooledTokens
  // tokens per call. observers[i] (empty span: none; an entry may be null) sees window i. The
  // hidden states are not checked for NaN or infinity: call check_layer_output per window, so
  // that the caller can name the window's document.
  static constexpr size_t kPooledTokens = 4096;
  void run_layer_batch(int64_t layer, std::span<WindowState* const> states,
                       std::span<ForwardObserver* const> observers = {});
  void run_mlp_batch(int64_t layer, std::span<WindowState* const> states,
                     std::span<ForwardObserver* const> observers = {});
  // Routes a MoE layer on `states` (after run_attention) as run_mlp_batch would, or with every
  // expert allowed when `unrestricted`, runs its experts unless `observed` is kRouting, and
  // reports each window to its observer; the states are not changed. The layer-wise selector
  // measures a layer this way before choosing its experts. Throws InputError for a layer without
  // experts, as restrict_layer does.
  enum class MoeObservation {
    kRouting,                // router logits, probabilities, choices and gate weights
    kRoutingAndExpertNorms,  // also every chosen expert's output norm (the experts run)
  };
  void observe_moe_batch(int64_t layer, std::span<WindowState* const> states,
                         std::span<ForwardObserver* const> observers, bool unrestricted,
                         MoeObservation observed = MoeObservation::kRoutingAndExpertNorms);
  // Throws as run_mlp does when `state`'s hidden state after `layer` holds a NaN or infinity.
  void check_layer_output(int64_t layer, const WindowState& state) const;

  // From now on route MoE layer `layer` over `kept` only (ascending ids), as a keep plan would.
  void restrict_layer(int64_t layer, const std::vector<int32_t>& kept);
  // Final norm and LM head into logits [window.length, vocab]; not with skip_lm_head.
  void finish(const WindowState& state, kernels::MatrixRef logits);
  // The same into the buffer window_logits() returns (reused, valid until the next call), checked
  // as run() checks the logits: a window run through every layer by the batch steps is scored
  // without holding its logits anywhere else.
  kernels::ConstMatrixRef logits_of(const WindowState& state);
  // Drops this process's mapped pages of a layer's weights (they stay in the page cache): after
  // streaming every window through a layer, resident memory need not hold it any more.
  void release_layer(int64_t layer) const;

 private:
  void check_ids(std::span<const int32_t> tokens, size_t first_index) const;
  // One window embedded and through every layer run (before the final norm).
  WindowState run_layers(std::span<const int32_t> tokens, Window window, ForwardObserver* observer);
  // Throws as run() describes when `values`, computed for `window` by `layer` (-1: embed(); the
  // number of layers: finish()), hold a NaN or infinity.
  void check_finite(kernels::ConstMatrixRef values, int64_t layer, Window window) const;
  bool post_norm() const;
  // The MLP sublayer's input (normalised into normed_, or h itself when post-norm); also sizes
  // sublayer_ for its output.
  kernels::ConstMatrixRef mlp_input(int64_t layer, const kernels::Matrix& h);
  void route_experts(int64_t layer, const WindowState& state, const MoeRouting& routing,
                     kernels::ConstMatrixRef input, ForwardObserver* observer);
  // Window i's MoeLayerEvent from rows [first_row, first_row + state.rows) of record_.
  void report_moe(int64_t layer, const WindowState& state, const MoeRouting& routing,
                  size_t first_row, ForwardObserver& observer) const;
  // The MoE sublayer of `layer` over `states` (at most kPooledTokens tokens in all) into
  // pooled_output_ (rows in window order), each window reported to its observer; with kRouting
  // only the router runs and pooled_output_ is left as it was.
  void pooled_moe(int64_t layer, std::span<WindowState* const> states, const MoeRouting& routing,
                  std::span<ForwardObserver* const> observers,
                  MoeObservation observed = MoeObservation::kRoutingAndExpertNorms);
  // Calls f(states, observers) for consecutive groups of windows of at most kPooledTokens tokens
  // (at least one window each).
  template <class F>
  void for_each_pool(std::span<WindowState* const> states,
                     std::span<ForwardObserver* const> observers, F&& f);
  // The MLP sublayer's output `sublayer` (post-norm: normalised first) added to h.
  void add_mlp_output(int64_t layer, kernels::MatrixRef h, kernels::MatrixRef sublayer);
  const kernels::RopeTable& rope_for(size_t positions);
  // The routing of MoE layer `layer` under `kept` (all when null), with its correction bias.
  MoeRouting routing_of(const LayerSpec& layer, const std::vector<int32_t>* kept) const;

  const ModelSpec& spec_;
  const TensorStore& checkpoint_;
  ForwardOptions options_;
  ForwardConfig config_;
  ModelWeights weights_;
  std::vector<std::optional<MoeRouting>> routing_;  // per layer
  int64_t last_layer_ = 0;                          // the last layer run
  size_t max_window_ = 0;
  std::unique_ptr<LayerMath> math_;            // the compute mode's arithmetic, chosen once
  std::unique_ptr<AttentionBlock> attention_;  // the family's attention kind, chosen once
  std::unique_ptr<kernels::ThreadPool> pool_;
  std::unique_ptr<kernels::RopeTable> rope_;
  kernels::Matrix normed_, sublayer_;             // per-layer scratch, reused
  kernels::Matrix window_logits_;                 // window_logits()'s result, reused
  kernels::Matrix pooled_input_, pooled_output_;  // pooled_moe's scratch, reused
  MoeRecord record_;
};

}  // namespace moeslice
