// The GGUF inspect summary: metadata keys read with their types checked, tensors counted by kind.
#include "format/gguf/summary.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "format/byte_size.h"

namespace moeslice {
namespace {

// The layer N of a tensor named blk.N.REST, else -1; `rest` receives REST.
int64_t block_of(const std::string& name, std::string_view& rest) {
  constexpr std::string_view kBlock = "blk.";
  if (!name.starts_with(kBlock)) return -1;
  const char* begin = name.data() + kBlock.size();
  int64_t layer = 0;
  const auto [end, error] = std::from_chars(begin, name.data() + name.size(), layer);
  if (error != std::errc() || end == begin || *end != '.') return -1;
  rest = std::string_view(end + 1);
  return layer;
}

// The kind of a stacked expert tensor blk.N.ffn_{gate,up,down,gate_up}_exps.* or of a shared
// expert's blk.N.ffn_{gate,up,down}_shexp.*, else empty.
std::string_view ffn_kind(std::string_view rest, std::string_view suffix) {
  for (std::string_view kind : {"ffn_gate", "ffn_up", "ffn_down", "ffn_gate_up"})
    if (rest.starts_with(kind) && rest.substr(kind.size()).starts_with(suffix)) return kind;
  return {};
}

// The width of one expert from a stacked tensor of `kind` (shape outermost first: gate and up
// [experts, n_ff, n_embd], down [experts, n_embd, n_ff], gate_up [experts, 2 n_ff, n_embd]).
int64_t width_from_shape(const TensorView& view, std::string_view kind) {
  if (view.shape.size() != 3) return 0;
  if (kind == "ffn_down") return view.shape[2];
  return kind == "ffn_gate_up" ? view.shape[1] / 2 : view.shape[1];
}

// A key that is one non-negative integer (not a per-layer array), else nullopt.
std::optional<uint64_t> scalar_uint(const GgufMetadata& metadata, std::string_view suffix) {
  const GgufValue* value = metadata.find(metadata.architecture() + "." + std::string(suffix));
  if (value == nullptr || value->type() == GgufType::kArray) return std::nullopt;
  return metadata.arch_uint(suffix);
}

int64_t as_count(std::optional<uint64_t> value) {
  return value ? static_cast<int64_t>(std::min<uint64_t>(*value, INT64_MAX)) : 0;
}

}  // namespace

GgufSummary summarize_gguf(const GgufModel& model) {
  const GgufMetadata& metadata = model.metadata();
  GgufSummary s;
  s.file = model.path().string();
  s.version = model.parts().front()->version();
  s.architecture = metadata.architecture();
  s.name = metadata.get_string("general.name").value_or("");
  s.metadata_keys = static_cast<int64_t>(metadata.size());
  s.layers = as_count(metadata.arch_uint("block_count"));
  s.hidden = as_count(metadata.arch_uint("embedding_length"));
  s.experts_per_layer = as_count(metadata.arch_uint("expert_count"));
  s.experts_per_token = as_count(metadata.arch_uint("expert_used_count"));
  s.expert_groups = as_count(metadata.arch_uint("expert_group_count"));
  s.expert_groups_used = as_count(metadata.arch_uint("expert_group_used_count"));
  s.leading_dense_layers = as_count(metadata.arch_uint("leading_dense_block_count"));
  if (const GgufValue* tokens = metadata.find("tokenizer.ggml.tokens");
      tokens != nullptr && tokens->type() == GgufType::kArray)
    s.vocab = static_cast<int64_t>(tokens->size());
  else
    s.vocab = as_count(metadata.arch_uint("vocab_size"));

  std::set<int64_t> expert_layers;
  std::map<int64_t, uint64_t> expert_bytes;
  int64_t width_in_tensors = 0;
  int64_t shared_in_tensors = 0;  // 1 per shared expert matrix, or a stacked one's outer extent
  for (const auto& [name, view] : model.tensors()) {
    const std::string type(dtype_name(view->dtype));
    ++s.tensors_by_type[type];
    s.bytes_by_type[type] += view->bytes.size();
    s.total_bytes += view->bytes.size();
    ++s.tensors;
    std::string_view rest;
    const int64_t layer = block_of(name, rest);
    if (layer < 0) continue;
    if (const std::string_view kind = ffn_kind(rest, "_exps."); !kind.empty()) {
      expert_layers.insert(layer);
      expert_bytes[layer] += view->bytes.size();
      if (width_in_tensors == 0) width_in_tensors = width_from_shape(*view, kind);
    } else if (!ffn_kind(rest, "_shexp.").empty()) {
      const int64_t count = view->shape.size() == 3 ? view->shape.front() : 1;
      shared_in_tensors = std::max(shared_in_tensors, count);
    }
  }
  // llama.cpp's olmoe and llama size their experts by feed_forward_length; qwen2moe has a shared
  // expert (ffn_*_shexp) but no expert_shared_count.
  s.expert_width = as_count(metadata.arch_uint("expert_feed_forward_length"));
  if (s.expert_width == 0 && !expert_layers.empty())
    s.expert_width = as_count(scalar_uint(metadata, "feed_forward_length"));
  if (s.expert_width == 0) s.expert_width = width_in_tensors;
  s.shared_experts = as_count(metadata.arch_uint("expert_shared_count"));
  if (s.shared_experts == 0) s.shared_experts = shared_in_tensors;
  s.expert_layers.assign(expert_layers.begin(), expert_layers.end());
  if (!expert_bytes.empty() && s.experts_per_layer > 0)
    s.bytes_per_expert = expert_bytes.begin()->second / static_cast<uint64_t>(s.experts_per_layer);
  s.parts = model.tensor_files();
  return s;
}

nlohmann::json gguf_summary_to_json(const GgufSummary& s) {
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& part : s.parts)
    shards.push_back(
        {{"file", part.path.string()}, {"bytes", part.bytes}, {"tensors", part.tensors}});
  return {{"format", "gguf"},
          {"file", s.file},
          {"version", s.version},
          {"architecture", s.architecture},
          {"name", s.name},
          {"metadata_keys", s.metadata_keys},
          {"layers", s.layers},
          {"expert_layers", s.expert_layers},
          {"experts_per_layer", s.experts_per_layer},
          {"experts_per_token", s.experts_per_token},
          {"shared_experts", s.shared_experts},
          {"expert_groups", s.expert_groups},
          {"expert_groups_used", s.expert_groups_used},
          {"leading_dense_layers", s.leading_dense_layers},
          {"hidden_size", s.hidden},
          {"expert_width", s.expert_width},
          {"vocab_size", s.vocab},
          {"bytes_per_expert", s.bytes_per_expert},
          {"tensors", s.tensors},
          {"total_bytes", s.total_bytes},
          {"tensors_by_dtype", s.tensors_by_type},
          {"bytes_by_dtype", s.bytes_by_type},
          {"shards", shards}};
}

std::string gguf_summary_to_text(const GgufSummary& s) {
  auto row = [](std::string_view key, const std::string& value) {
    return fmt::format("  {:<22} {}\n", key, value);
  };
  std::string text = fmt::format("{}\n", s.file);
  text +=
      row("format", fmt::format("GGUF version {}, {} metadata keys", s.version, s.metadata_keys));
  text += row("architecture", s.architecture + (s.name.empty() ? "" : " (" + s.name + ")"));
  text += row("layers", std::to_string(s.layers));
  text += row("layers with experts", static_cast<int64_t>(s.expert_layers.size()) == s.layers
                                         ? fmt::format("all {}", s.layers)
                                         : fmt::format("{} of {}: {}", s.expert_layers.size(),
                                                       s.layers, fmt::join(s.expert_layers, ",")));
  text += row("experts per layer", std::to_string(s.experts_per_layer));
  text += row("experts per token", std::to_string(s.experts_per_token));
  text += row("shared experts", std::to_string(s.shared_experts));
  if (s.expert_groups > 0)
    text += row("expert groups",
                fmt::format("{} ({} used per token)", s.expert_groups, s.expert_groups_used));
  if (s.leading_dense_layers > 0)
    text += row("leading dense layers", std::to_string(s.leading_dense_layers));
  text += row("hidden size", std::to_string(s.hidden));
  text += row("expert width", std::to_string(s.expert_width));
  text += row("vocabulary", std::to_string(s.vocab));
  text += row("bytes per expert", format_byte_size(s.bytes_per_expert));
  std::string types;
  for (const auto& [type, count] : s.tensors_by_type) {
    const uint64_t bytes = s.bytes_by_type.at(type);
    types += fmt::format(
        "{}{} x{} ({}, {:.1f}%)", types.empty() ? "" : ", ", type, count, format_byte_size(bytes),
        s.total_bytes == 0
            ? 0.0
            : 100.0 * static_cast<double>(bytes) / static_cast<double>(s.total_bytes));
  }
  text += row("tensor types", types);
  text += row("size", fmt::format("{} in {} tensors", format_byte_size(s.total_bytes), s.tensors));
  text += row("split parts", std::to_string(s.parts.size()));
  for (const auto& part : s.parts)
    text += row("", fmt::format("{} ({}, {} tensors)", part.path.string(),
                                format_byte_size(part.bytes), part.tensors));
  return text;
}

}  // namespace moeslice
