// Building the logits file's tensors and metadata.
#include "logits_output.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <span>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

namespace moeslice {

void RouterRecorder::reset(size_t tokens) {
  tokens_ = tokens;
  layers_.clear();
}

void RouterRecorder::on_moe_layer(const MoeLayerEvent& event) {
  Layer& layer = layers_[event.layer];
  if (layer.router_logits.empty()) {
    layer.experts = event.experts;
    layer.slots = event.slots;
    layer.router_logits.resize(tokens_ * event.experts);
    layer.chosen.resize(tokens_ * event.slots);
    layer.weights.resize(tokens_ * event.slots);
    layer.out_norms.resize(tokens_ * event.slots);
  }
  for (size_t t = 0; t < event.tokens; ++t) {
    const float* row = event.router_logits.row(t);
    std::copy(row, row + event.experts,
              layer.router_logits.begin() +
                  static_cast<std::ptrdiff_t>((event.window_begin + t) * event.experts));
  }
  const auto at = static_cast<std::ptrdiff_t>(event.window_begin * event.slots);
  std::copy(event.chosen.begin(), event.chosen.end(), layer.chosen.begin() + at);
  std::copy(event.weights.begin(), event.weights.end(), layer.weights.begin() + at);
  std::copy(event.expert_out_norms.begin(), event.expert_out_norms.end(),
            layer.out_norms.begin() + at);
}

void append_document_tensors(size_t index, DocumentResult& result, RouterRecorder* router,
                             std::vector<TensorSource>& out) {
  const auto tokens = static_cast<int64_t>(result.logits.rows());
  const std::string name = fmt::format("doc.{}", index);
  const auto vocab = static_cast<int64_t>(result.logits.cols());
  // Moved, not copied: the logits are the bulk of the file.
  auto logits = std::make_shared<kernels::Matrix>(std::move(result.logits));
  result.logits = kernels::Matrix();
  TensorSource source;
  source.name = name;
  source.dtype = DType::F32;
  source.shape = {tokens, vocab};
  source.produce = [logits](const ByteSink& sink) {
    sink(std::as_bytes(std::span(logits->data(), logits->rows() * logits->cols())));
  };
  out.push_back(std::move(source));
  if (router == nullptr) return;
  for (auto& [layer, record] : router->take_layers()) {
    const std::string prefix = fmt::format("{}.layer.{}.", name, layer);
    const auto experts = static_cast<int64_t>(record.experts);
    const auto slots = static_cast<int64_t>(record.slots);
    out.push_back(TensorSource::from_floats(prefix + "router_logits", DType::F32, {tokens, experts},
                                            std::move(record.router_logits)));
    std::vector<std::byte> ids(record.chosen.size() * sizeof(int32_t));
    std::memcpy(ids.data(), record.chosen.data(), ids.size());
    out.push_back(
        TensorSource::from_bytes(prefix + "experts", DType::I32, {tokens, slots}, std::move(ids)));
    out.push_back(TensorSource::from_floats(prefix + "weights", DType::F32, {tokens, slots},
                                            std::move(record.weights)));
    out.push_back(TensorSource::from_floats(prefix + "expert_out_norm", DType::F32, {tokens, slots},
                                            std::move(record.out_norms)));
  }
}

Metadata logits_metadata(const ForwardPass& forward, const std::vector<TokenDocument>& documents,
                         const std::map<size_t, std::vector<Window>>& split_documents) {
  Metadata metadata;
  metadata["model_type"] = forward.spec().model_type;
  nlohmann::json ids = nlohmann::json::array();
  for (const auto& document : documents) ids.push_back(document.id);
  metadata["doc_ids"] = ids.dump();
  metadata["max_window"] = std::to_string(forward.max_window());
  nlohmann::json windows = nlohmann::json::object();
  for (const auto& [index, list] : split_documents) {
    nlohmann::json entries = nlohmann::json::array();
    for (const Window& window : list) entries.push_back({window.begin, window.length});
    windows[std::to_string(index)] = entries;
  }
  metadata["windows"] = windows.dump();
  const auto& keep = forward.options().keep;
  metadata["keep_plan"] = keep ? keep_plan_json(*keep) : std::string();
  return metadata;
}

}  // namespace moeslice
