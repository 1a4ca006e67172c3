// The `moeslice logits` output file: per document its logits and, optionally, what every MoE
// layer's router did, in the tensor names and dtypes of tests/reference (doc.<i>,
// doc.<i>.layer.<l>.{router_logits,experts,weights,expert_out_norm}), plus metadata (document
// ids, windows, keep plan). A file in this form can be compared with the PyTorch reference's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "format/safetensors/writer.h"
#include "forward/forward_pass.h"
#include "text/corpus.h"

namespace moeslice {

// Collects one document's MoE-layer events, windows concatenated in token order.
class RouterRecorder : public ForwardObserver {
 public:
  // Starts a new document of `tokens` tokens.
  void reset(size_t tokens);
  void on_moe_layer(const MoeLayerEvent& event) override;

  struct Layer {
    size_t experts = 0;
    size_t slots = 0;
    std::vector<float> router_logits;  // [tokens * experts]
    std::vector<int32_t> chosen;       // [tokens * slots]
    std::vector<float> weights;        // [tokens * slots]
    std::vector<float> out_norms;      // [tokens * slots]
  };
  const std::map<int64_t, Layer>& layers() const { return layers_; }
  // Moves the recorded layers out (the recorder is empty afterwards).
  std::map<int64_t, Layer> take_layers() { return std::exchange(layers_, {}); }

 private:
  size_t tokens_ = 0;
  std::map<int64_t, Layer> layers_;
};

// Appends document `index`'s tensors (moving the logits and recorded vectors out).
void append_document_tensors(size_t index, DocumentResult& result, RouterRecorder* router,
                             std::vector<TensorSource>& out);

// Metadata of a logits file: model_type, doc_ids (JSON list), max_window, windows (JSON object
// from document index to its [begin, length] windows, only for documents that were split), and
// keep_plan (JSON, "" without a plan).
Metadata logits_metadata(const ForwardPass& forward, const std::vector<TokenDocument>& documents,
                         const std::map<size_t, std::vector<Window>>& split_documents);

}  // namespace moeslice
