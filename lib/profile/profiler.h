// The profiler: runs the forward pass over a corpus (without the LM head, stopping after the last
// MoE layer) and accumulates each document's expert usage into a UsageProfile.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "forward/forward_pass.h"
#include "forward/run_settings.h"
#include "profile/usage_profile.h"
#include "text/corpus.h"

namespace moeslice {

// Adds every MoE layer event it sees into one document's block of a profile: counts (chosen
// slots), router probability mass and gate weight x expert output norm.
class UsageAccumulator : public ForwardObserver {
 public:
  UsageAccumulator(UsageProfile& profile, int64_t document)
      : profile_(profile), document_(document) {}
  void on_moe_layer(const MoeLayerEvent& event) override;

 private:
  UsageProfile& profile_;
  int64_t document_;
};

// The order documents and layers are computed in. The profile is bit-identical in every order
// (each window's values are computed by the same kernels; layer-major order pools the windows'
// tokens per expert where that keeps every bit, ForwardPass::run_layer_batch); only memory and
// speed differ.
enum class ProfileOrder {
  // Layer-major (kLayers): since its windows share expert GEMMs it is the faster order even for a
  // corpus smaller than one block, whose activations it then holds at once.
  kAuto,
  // Each document through every layer in turn: memory holds one window's activations.
  kDocuments,
  // Layer-major: a block of documents (up to block_tokens tokens, at least one document) goes
  // through layer l, whose mapped pages are then released, before layer l+1, so resident memory
  // holds about one layer's weights plus the block's activations, and each layer's weights are
  // read once per block instead of once per document.
  kLayers,
};

struct ProfileOptions {
  RunSettings run;
  std::optional<KeepPlan> keep;
  ProfileOrder order = ProfileOrder::kAuto;
  size_t block_tokens = 32768;
  // Called after each document (after each block in layer-major order) with (documents done,
  // tokens done).
  std::function<void(int64_t, int64_t)> progress;
};

// A usage profile with no documents, its metadata filled from the model and options.
UsageProfile empty_usage_profile(const Model& model, const ProfileOptions& options);

// Windows of documents taken through the layers together (layer-major profiling, the layer-wise
// selector): each window's state, and a UsageAccumulator on its document's profile row, in the
// form ForwardPass's batch steps take.
class DocumentWindows {
 public:
  explicit DocumentWindows(UsageProfile& profile) : profile_(profile) {}
  DocumentWindows(const DocumentWindows&) = delete;
  DocumentWindows& operator=(const DocumentWindows&) = delete;

  void add(int64_t document, WindowState state);
  bool empty() const { return states_.empty(); }
  std::span<WindowState* const> states() const { return states_; }
  std::span<ForwardObserver* const> observers() const { return observers_; }
  // check_layer_output on every window, naming its document when one fails.
  void check_layer_output(const ForwardPass& forward, int64_t layer) const;

 private:
  UsageProfile& profile_;
  std::vector<int64_t> documents_;
  std::vector<std::unique_ptr<WindowState>> owned_;
  std::vector<std::unique_ptr<UsageAccumulator>> accumulators_;
  std::vector<WindowState*> states_;
  std::vector<ForwardObserver*> observers_;
};

// Profiles `documents` into `profile` (appending). `domains` is parallel to documents or empty.
void profile_documents(const Model& model, std::span<const TokenDocument> documents,
                       std::span<const std::string> domains, const ProfileOptions& options,
                       UsageProfile& profile);

// Pulls documents from `next` until it returns nullopt and profiles them in options.order,
// recording each document's own `domain`: memory holds one document (one block of documents in
// layer-major order) at a time, plus the growing profile.
using DocumentSource = std::function<std::optional<TokenDocument>()>;
void profile_documents(const Model& model, const DocumentSource& next,
                       const ProfileOptions& options, UsageProfile& profile);

}  // namespace moeslice
