// Building the inspect summary from a checkpoint and its resolved spec.
#include "model/model_summary.h"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "common/json_parse.h"
#include "format/byte_size.h"

namespace moeslice {
namespace {

std::string shared_kind_name(SharedExpertKind kind) {
  switch (kind) {
    case SharedExpertKind::kNone:
      return "none";
    case SharedExpertKind::kLastRouted:
      return "last routed experts, weight 1.0";
    case SharedExpertKind::kSeparateGated:
      return "separate MLP, sigmoid-gated";
    case SharedExpertKind::kSeparate:
      return "separate MLP";
  }
  return "unknown";
}

std::string layer_list(const std::vector<int64_t>& layers, int64_t total) {
  if (static_cast<int64_t>(layers.size()) == total) return fmt::format("all {}", total);
  return fmt::format("{} of {}: {}", layers.size(), total, fmt::join(layers, ","));
}

}  // namespace

ExpertFootprint expert_footprint(const TensorStore& checkpoint, const ModelSpec& spec,
                                 const LayerSpec& layer) {
  ExpertFootprint footprint;
  if (!layer.has_experts || layer.num_experts == 0) return footprint;
  if (!spec.expert_naming.empty()) {
    // Every tensor expert 0 owns, so FP8 scales and biases count too.
    const std::string prefix = spec.expert_naming.prefix(layer.index, 0);
    for (auto it = checkpoint.tensors().lower_bound(prefix);
         it != checkpoint.tensors().end() && it->first.compare(0, prefix.size(), prefix) == 0;
         ++it) {
      footprint.parameters += it->second->numel();
      footprint.bytes += it->second->bytes.size();
    }
    return footprint;
  }
  // Fused storage: a 1/E share of every tensor indexed by expert, except the router's.
  for (const auto& tensor : layer.tensors) {
    if (!tensor.expert_axis || is_router_part(tensor.role)) continue;
    const TensorView* view = checkpoint.find(tensor.name);
    if (view == nullptr) continue;
    footprint.parameters += view->numel() / layer.num_experts;
    footprint.bytes += view->bytes.size() / static_cast<uint64_t>(layer.num_experts);
  }
  return footprint;
}

ModelSummary summarize_model(const Model& model) {
  const auto& spec = model.spec;
  const TensorStore& checkpoint = *model.checkpoint;
  ModelSummary summary;
  summary.family = spec.family->family;
  summary.model_type = spec.model_type;
  summary.directory = checkpoint.path().string();
  summary.layers = spec.num_layers;
  summary.hidden = spec.hidden;
  summary.heads = spec.heads;
  summary.kv_heads = spec.kv_heads;
  summary.head_dim = spec.head_dim;
  summary.vocab = spec.vocab;
  summary.expert_layers = spec.expert_layers();
  summary.experts_per_layer = spec.num_experts;
  if (!spec.uniform_experts())
    for (const auto& layer : spec.layers)
      if (layer.has_experts) summary.experts_in_each_layer.push_back(layer.num_experts);
  summary.experts_per_token = spec.experts_per_token;
  summary.shared_experts = spec.shared_experts;
  summary.shared_expert_kind = shared_kind_name(spec.family->shared_expert_kind);
  summary.expert_width = spec.expert_width;
  summary.forward_supported = spec.family->forward_supported;
  summary.mtp_layers = spec.mtp_layers;
  if (spec.forward.fp8)
    summary.quantization = fmt::format("block-scaled FP8 ({}x{})", spec.forward.fp8->block_rows,
                                       spec.forward.fp8->block_cols);
  else if (spec.config.contains("quantization_config") &&
           !spec.config["quantization_config"].is_null())
    summary.quantization =
        json_excerpt(spec.config["quantization_config"].is_object() &&
                             spec.config["quantization_config"].contains("quant_method")
                         ? spec.config["quantization_config"]["quant_method"]
                         : spec.config["quantization_config"]);
  for (const auto& [name, view] : checkpoint.tensors()) {
    if (spec.in_mtp_layer(name)) {
      ++summary.mtp_tensors;
      summary.mtp_bytes += view->bytes.size();
    }
    summary.total_parameters += view->numel();
    summary.total_bytes += view->bytes.size();
    const std::string dtype(dtype_name(view->dtype));
    summary.tensors_by_dtype[dtype] += 1;
    summary.bytes_by_dtype[dtype] += view->bytes.size();
  }
  // Active per token: everything except the experts a token does not use. EMO's top-k counts
  // its shared experts, so k experts of E are active in every family.
  int64_t inactive = 0;
  for (const auto& layer : spec.layers) {
    if (!layer.has_experts) continue;
    const ExpertFootprint footprint = expert_footprint(checkpoint, spec, layer);
    if (summary.bytes_per_expert == 0) summary.bytes_per_expert = footprint.bytes;
    summary.expert_parameters += footprint.parameters * layer.num_experts;
    inactive += footprint.parameters * (layer.num_experts - spec.experts_per_token);
  }
  summary.active_parameters = summary.total_parameters - inactive;
  for (const TensorFile& file : checkpoint.tensor_files())
    summary.shards.push_back({file.path.filename().string(), file.bytes, file.tensors});
  return summary;
}

nlohmann::json summary_to_json(const ModelSummary& s) {
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& shard : s.shards)
    shards.push_back({{"file", shard.file}, {"bytes", shard.bytes}, {"tensors", shard.tensors}});
  return {
      {"family", s.family},
      {"model_type", s.model_type},
      {"directory", s.directory},
      {"layers", s.layers},
      {"expert_layers", s.expert_layers},
      {"experts_per_layer", s.experts_per_layer},
      {"experts_in_each_layer", s.experts_in_each_layer.empty()
                                    ? nlohmann::json()
                                    : nlohmann::json(s.experts_in_each_layer)},
      {"experts_per_token", s.experts_per_token},
      {"shared_experts", s.shared_experts},
      {"shared_expert_kind", s.shared_expert_kind},
      {"hidden_size", s.hidden},
      {"expert_width", s.expert_width},
      {"attention_heads", s.heads},
      {"kv_heads", s.kv_heads},
      {"head_dim", s.head_dim},
      {"vocab_size", s.vocab},
      {"total_parameters", s.total_parameters},
      {"active_parameters", s.active_parameters},
      {"expert_parameters", s.expert_parameters},
      {"bytes_per_expert", s.bytes_per_expert},
      {"total_bytes", s.total_bytes},
      {"tensors_by_dtype", s.tensors_by_dtype},
      {"bytes_by_dtype", s.bytes_by_dtype},
      {"shards", shards},
      {"forward_supported", s.forward_supported},
      {"mtp_layers", s.mtp_layers},
      {"mtp_tensors", s.mtp_tensors},
      {"quantization", s.quantization.empty() ? nlohmann::json() : nlohmann::json(s.quantization)}};
}

std::string summary_to_text(const ModelSummary& s) {
  auto row = [](std::string_view key, const std::string& value) {
    return fmt::format("  {:<22} {}\n", key, value);
  };
  auto params = [](int64_t count) {
    const double value = static_cast<double>(count);
    if (value >= 1e9) return fmt::format("{} ({:.2f} B)", count, value / 1e9);
    if (value >= 1e6) return fmt::format("{} ({:.2f} M)", count, value / 1e6);
    return fmt::format("{} ({:.1f} K)", count, value / 1e3);
  };
  std::string text = fmt::format("{}\n", s.directory);
  text += row("family", s.family + (s.model_type != s.family ? " (" + s.model_type + ")" : ""));
  text += row("layers", std::to_string(s.layers));
  text += row("layers with experts", layer_list(s.expert_layers, s.layers));
  text +=
      row("experts per layer", s.experts_in_each_layer.empty()
                                   ? std::to_string(s.experts_per_layer)
                                   : fmt::format("{} at most, per layer: {}", s.experts_per_layer,
                                                 fmt::join(s.experts_in_each_layer, ",")));
  text += row("experts per token", std::to_string(s.experts_per_token));
  text += row("shared experts", fmt::format("{} ({})", s.shared_experts, s.shared_expert_kind));
  text += row("hidden size", std::to_string(s.hidden));
  text += row("expert width", std::to_string(s.expert_width));
  text += row("attention heads",
              fmt::format("{} (kv {}, head dim {})", s.heads, s.kv_heads, s.head_dim));
  text += row("vocabulary", std::to_string(s.vocab));
  text += row("parameters", params(s.total_parameters));
  text += row("active per token", params(s.active_parameters));
  text += row("in experts", params(s.expert_parameters));
  text += row("bytes per expert", format_byte_size(s.bytes_per_expert));
  std::string dtypes;
  for (const auto& [dtype, count] : s.tensors_by_dtype)
    dtypes += fmt::format("{}{} x{} ({})", dtypes.empty() ? "" : ", ", dtype, count,
                          format_byte_size(s.bytes_by_dtype.at(dtype)));
  text += row("dtypes", dtypes);
  text += row("size", format_byte_size(s.total_bytes));
  text += row("shards", std::to_string(s.shards.size()));
  for (const auto& shard : s.shards)
    text += row("", fmt::format("{} ({}, {} tensors)", shard.file, format_byte_size(shard.bytes),
                                shard.tensors));
  if (!s.quantization.empty()) text += row("quantization", s.quantization);
  if (s.mtp_layers > 0)
    text += row("MTP layers",
                fmt::format("{} (layer {}{}: {} tensors, {}), not computed; slice drops them",
                            s.mtp_layers, s.layers,
                            s.mtp_layers > 1 ? fmt::format("-{}", s.layers + s.mtp_layers - 1)
                                             : std::string(),
                            s.mtp_tensors, format_byte_size(s.mtp_bytes)));
  text += row("forward pass", s.forward_supported ? "supported" : "not supported (slice only)");
  return text;
}

}  // namespace moeslice
