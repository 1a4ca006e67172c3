// The profiler: runs the forward pass over a corpus (without the LM head, stopping after the last
// MoE layer) and accumulates each document's expert usage into a UsageProfile.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

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

struct ProfileOptions {
  RunSettings run;
  std::optional<KeepPlan> keep;
  // Layer-major order: a block of documents (up to stream_block_tokens tokens, at least one
  // document) goes through layer l, whose mapped pages are then released, before layer l+1, so
  // resident memory holds about one layer's weights plus the block's activations. The profile is
  // bit-identical to the document-by-document order.
  bool stream_layers = false;
  size_t stream_block_tokens = 32768;
  // Called after each document with (documents done, tokens done).
  std::function<void(int64_t, int64_t)> progress;
};

// A usage profile with no documents, its metadata filled from the model and options.
UsageProfile empty_usage_profile(const Model& model, const ProfileOptions& options);

// Profiles `documents` into `profile` (appending). `domains` is parallel to documents or empty.
void profile_documents(const Model& model, std::span<const TokenDocument> documents,
                       std::span<const std::string> domains, const ProfileOptions& options,
                       UsageProfile& profile);

// Pulls documents from `next` until it returns nullopt and profiles each as it comes, recording
// its own `domain`: memory holds one document at a time (plus the growing profile).
using DocumentSource = std::function<std::optional<TokenDocument>()>;
void profile_documents(const Model& model, const DocumentSource& next,
                       const ProfileOptions& options, UsageProfile& profile);

}  // namespace moeslice
