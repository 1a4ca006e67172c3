// The GGUF slice planner: tensor kinds, plan checks, group checks and the output metadata.
#include "slice/gguf_slice_plan.h"

#include <algorithm>
#include <charconv>
#include <map>

#include <fmt/core.h>
#include <fmt/format.h>

#include "common/error.h"
#include "common/fnv1a.h"
#include "model/gguf_architecture.h"

namespace moeslice {
namespace {

std::string i32_bytes(const std::vector<int32_t>& ids) {
  std::string bytes;
  for (const int32_t id : ids)
    for (int i = 0; i < 4; ++i)
      bytes.push_back(static_cast<char>(static_cast<uint32_t>(id) >> (8 * i) & 0xff));
  return bytes;
}

// A key of an integer type rewritten in place, keeping its type.
void set_count(GgufMetadata& metadata, const std::string& key, int64_t value) {
  const GgufValue* old = metadata.find(key);
  metadata.set(key, old ? GgufValue::scalar(old->type(), static_cast<uint64_t>(value))
                        : GgufValue::of_u32(static_cast<uint32_t>(value)));
}

}  // namespace

GgufValue encode_experts_kept(const std::vector<std::vector<int32_t>>& per_block,
                              int64_t kept_count) {
  std::vector<int32_t> flat;
  for (const std::vector<int32_t>& ids : per_block) {
    if (ids.empty())
      flat.insert(flat.end(), static_cast<size_t>(kept_count), -1);
    else
      flat.insert(flat.end(), ids.begin(), ids.end());
  }
  return GgufValue::scalar_array(GgufType::kI32, i32_bytes(flat));
}

std::optional<std::vector<std::vector<int32_t>>> recorded_experts_kept(
    const GgufMetadata& metadata) {
  const GgufValue* value = metadata.find(kGgufSliceExpertsKept);
  if (!value) return std::nullopt;
  const uint64_t blocks = metadata.arch_uint("block_count").value_or(0);
  const uint64_t experts = metadata.arch_uint("expert_count").value_or(0);
  const std::string arch = metadata.architecture();
  auto bad = [&](const std::string& found) {
    return FormatError(fmt::format(
        "{}: metadata key '{}' must be an ARRAY of INT32 with '{}.block_count' x "
        "'{}.expert_count' = {} x {} elements (per block ascending expert ids, or -1s for a "
        "block without experts), found {}",
        metadata.source().string(), kGgufSliceExpertsKept, arch, arch, blocks, experts, found));
  };
  if (value->type() != GgufType::kArray || value->element_type() != GgufType::kI32 ||
      experts == 0 || value->size() != blocks * experts)
    throw bad(value->describe());
  std::vector<std::vector<int32_t>> per_block(static_cast<size_t>(blocks));
  for (uint64_t b = 0; b < blocks; ++b) {
    std::vector<int32_t>& ids = per_block[static_cast<size_t>(b)];
    int64_t missing = 0;
    for (uint64_t e = 0; e < experts; ++e) {
      const int64_t id = *value->element(b * experts + e).as_int();
      if (id == -1) {
        ++missing;
      } else if (id < 0 || (!ids.empty() && id <= ids.back())) {
        throw bad(fmt::format("{} after {} in block {}", id, ids.empty() ? -1 : ids.back(), b));
      } else {
        ids.push_back(static_cast<int32_t>(id));
      }
    }
    if (missing != 0 && !ids.empty())
      throw bad(fmt::format("block {} with both expert ids and -1s", b));
  }
  return per_block;
}

std::string gguf_fingerprint(const GgufMetadata& metadata,
                             std::span<const TensorView* const> tensors) {
  Fnv1a64 hash;
  std::string encoded;
  for (const auto& [key, value] : metadata.entries()) {
    if (key.starts_with("split.")) continue;
    encoded.clear();
    value.encode(encoded);
    hash.add(fmt::format("{}|{}|", key, static_cast<uint32_t>(value.type())));
    hash.add(encoded);
  }
  for (const TensorView* tensor : tensors)
    hash.add(fmt::format("{}|{}|{};", tensor->name, dtype_name(tensor->dtype),
                         format_shape(tensor->shape)));
  return hash.hex();
}

std::string_view gguf_expert_axis_kind(std::string_view name, int64_t& block) {
  if (!name.starts_with("blk.")) return {};
  const std::string_view rest = name.substr(4);
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  const auto [end, error] = std::from_chars(rest.data(), rest.data() + dot, block);
  if (error != std::errc() || end != rest.data() + dot) return {};
  const std::string_view after = rest.substr(dot + 1);
  const std::string_view kind = after.substr(0, after.find('.'));
  if ((kind.starts_with("ffn_") && kind.ends_with("_exps")) || kind == "ffn_gate_inp" ||
      kind == "exp_probs_b")
    return kind;
  return {};
}

GgufSlicePlan plan_gguf_slice(const GgufMetadata& metadata,
                              std::span<const TensorView* const> tensors,
                              const nlohmann::json& plan_document, const std::string& plan_source,
                              const GgufSliceSource& source) {
  const std::string file = metadata.source().string();
  const std::string arch = metadata.architecture();
  auto key_of = [&](std::string_view suffix) { return fmt::format("{}.{}", arch, suffix); };
  auto refuse = [](std::string message) { return InputError(std::move(message)); };

  const auto expert_count = metadata.arch_uint("expert_count");
  if (!expert_count || *expert_count == 0)
    throw refuse(
        fmt::format("{}: metadata key '{}' is {}: not a mixture-of-experts model, nothing to slice",
                    file, key_of("expert_count"), expert_count ? "0" : "absent"));
  const auto block_count = metadata.arch_uint("block_count");
  if (!block_count)
    throw refuse(fmt::format("{}: metadata key '{}' is absent", file, key_of("block_count")));
  const int64_t experts = static_cast<int64_t>(*expert_count);
  const int64_t blocks = static_cast<int64_t>(*block_count);
  const int64_t used = static_cast<int64_t>(metadata.arch_uint("expert_used_count").value_or(0));

  // Which blocks have experts, and which tensors are cut.
  GgufSlicePlan plan;
  std::vector<bool> has_experts(static_cast<size_t>(blocks), false);
  std::vector<int64_t> tensor_block(tensors.size(), -1);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorView& tensor = *tensors[i];
    int64_t block = -1;
    const std::string_view kind = gguf_expert_axis_kind(tensor.name, block);
    if (kind.empty()) continue;
    if (block < 0 || block >= blocks)
      throw refuse(fmt::format("{}: tensor '{}' belongs to block {}, but '{}' is {}", file,
                               tensor.name, block, key_of("block_count"), blocks));
    if (tensor.shape.empty() || tensor.shape.front() != experts)
      throw refuse(fmt::format(
          "{}: tensor '{}' {} is cut along its outermost axis, which must be '{}' = {} long; "
          "found {}",
          file, tensor.name, tensor.shape_string(), key_of("expert_count"), experts,
          tensor.shape.empty() ? std::string("no axis") : std::to_string(tensor.shape.front())));
    if (tensor.shape.size() == 1 && dtype_block(tensor.dtype))
      throw refuse(fmt::format(
          "{}: tensor '{}' is {}, whose only axis (the expert axis) is stored in blocks of {} "
          "elements: experts cannot be cut out of it",
          file, tensor.name, dtype_name(tensor.dtype), dtype_block(tensor.dtype)->elements));
    tensor_block[i] = block;
    if (kind.ends_with("_exps")) has_experts[static_cast<size_t>(block)] = true;
  }

  // The plan, block by block: one count for every MoE block.
  if (!plan_document.is_object() || !plan_document.contains("experts_kept_per_layer"))
    throw refuse(fmt::format("{}: expected an object with 'experts_kept_per_layer'", plan_source));
  const std::string family(family_of_gguf_architecture(arch));
  check_plan_target(plan_document, {family, experts, 0, file}, plan_source);
  const nlohmann::json& layers = plan_document["experts_kept_per_layer"];
  // A plan made on the Hugging Face checkpoint lists the decoder layers only: the blocks after
  // them are llama.cpp's multi-token-prediction layers (nextn_predict_layers, glm4moe), whose
  // entries are then null (kept whole).
  const auto nextn = static_cast<int64_t>(metadata.arch_uint("nextn_predict_layers").value_or(0));
  const bool decoder_layers_only = nextn > 0 && nextn < blocks && layers.is_array() &&
                                   layers.size() == static_cast<size_t>(blocks - nextn);
  if (!layers.is_array() || (layers.size() != static_cast<size_t>(blocks) && !decoder_layers_only))
    throw refuse(fmt::format(
        "{}: 'experts_kept_per_layer' must have one entry per block ({}: '{}' = {}), found {}",
        plan_source, file, key_of("block_count"), blocks,
        layers.is_array() ? std::to_string(layers.size()) + " entries"
                          : std::string(layers.type_name())));
  plan.keep.source = plan_source;
  plan.keep.kept.resize(static_cast<size_t>(blocks));
  std::vector<int32_t> all(static_cast<size_t>(experts));
  for (int64_t e = 0; e < experts; ++e) all[static_cast<size_t>(e)] = static_cast<int32_t>(e);
  int64_t kept_count = -1;
  int64_t first_block = -1;
  for (int64_t b = 0; b < blocks; ++b) {
    static const nlohmann::json kWhole;  // null
    const nlohmann::json& entry =
        static_cast<size_t>(b) < layers.size() ? layers[static_cast<size_t>(b)] : kWhole;
    if (!has_experts[static_cast<size_t>(b)]) {
      if (!entry.is_null())
        throw refuse(fmt::format(
            "{}: block {} of {} has no expert tensors (blk.{}.ffn_*_exps), so its entry must "
            "be null",
            plan_source, b, file, b));
      continue;
    }
    std::vector<int32_t> ids =
        entry.is_null() ? all : parse_kept_ids(entry, b, experts, plan_source);
    const auto count = static_cast<int64_t>(ids.size());
    if (kept_count >= 0 && count != kept_count)
      throw refuse(fmt::format(
          "{}: block {} keeps {} experts but block {} keeps {}; llama.cpp has one expert count "
          "('{}') for every block, so a GGUF slice must keep the same number in each",
          plan_source, b, count, first_block, kept_count, key_of("expert_count")));
    kept_count = count;
    first_block = first_block < 0 ? b : first_block;
    plan.keep.kept[static_cast<size_t>(b)] = std::move(ids);
  }
  if (kept_count < 0)
    throw refuse(
        fmt::format("{}: no tensor blk.N.ffn_*_exps.*: no block has experts to slice", file));

  // Group-limited routing: llama.cpp splits the experts into equal consecutive groups.
  const int64_t groups = static_cast<int64_t>(metadata.arch_uint("expert_group_count").value_or(0));
  const int64_t used_after = std::min(used, kept_count);
  if (groups > 1) {
    if (experts % groups != 0)
      throw refuse(fmt::format("{}: '{}' = {} is not a multiple of '{}' = {}", file,
                               key_of("expert_count"), experts, key_of("expert_group_count"),
                               groups));
    const int64_t group_size = experts / groups;
    for (int64_t b = 0; b < blocks; ++b) {
      const auto* ids = plan.keep.kept_in(b);
      if (!ids) continue;
      std::vector<int64_t> per_group(static_cast<size_t>(groups), 0);
      for (const int32_t id : *ids) ++per_group[static_cast<size_t>(id / group_size)];
      const auto [low, high] = std::minmax_element(per_group.begin(), per_group.end());
      if (*low != *high || *low < 2)
        throw refuse(fmt::format(
            "{}: block {} keeps [{}] experts of the {} groups of {} ('{}' = {}); llama.cpp's "
            "group-limited routing needs every group to keep the same number, at least 2 (it "
            "scores a group by its top 2 experts)",
            plan_source, b, fmt::join(per_group, ", "), groups, group_size,
            key_of("expert_group_count"), groups));
    }
    const auto groups_used = metadata.arch_uint("expert_group_used_count");
    const int64_t per_group = kept_count / groups;
    if (groups_used && static_cast<int64_t>(*groups_used) * per_group < used_after)
      throw refuse(fmt::format(
          "{}: the slice keeps {} experts per group and routes to '{}' = {} groups, fewer "
          "experts than the {} per token ('{}'); llama.cpp would pick masked experts",
          plan_source, per_group, key_of("expert_group_used_count"), *groups_used, used_after,
          key_of("expert_used_count")));
  }

  // Fates and sizes.
  plan.tensors.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorView& tensor = *tensors[i];
    GgufPlannedTensor planned;
    planned.source = &tensor;
    planned.output_shape = tensor.shape;
    const uint64_t bytes = tensor_byte_size(tensor.dtype, tensor.shape).value_or(0);
    planned.output_bytes = bytes;
    const auto* ids = tensor_block[i] >= 0 ? plan.keep.kept_in(tensor_block[i]) : nullptr;
    if (ids) {
      planned.fate = TensorFate::kCutAlongExperts;
      planned.kept_rows = *ids;
      planned.output_shape.front() = kept_count;
      planned.output_bytes =
          bytes / static_cast<uint64_t>(experts) * static_cast<uint64_t>(kept_count);
    } else if (tensor_block[i] >= 0) {
      throw refuse(fmt::format(
          "{}: tensor '{}' has an expert axis, but block {} has no stacked expert tensors "
          "(blk.{}.ffn_*_exps)",
          file, tensor.name, tensor_block[i], tensor_block[i]));
    }
    plan.summary.bytes_before += bytes;
    plan.summary.bytes_after += planned.output_bytes;
    plan.tensors.push_back(std::move(planned));
  }

  // The output metadata: the input's, two counts rewritten, the moeslice.* keys set.
  plan.metadata = metadata;
  const auto recorded = recorded_experts_kept(metadata);
  std::vector<std::vector<int32_t>> original_ids(static_cast<size_t>(blocks));
  for (int64_t b = 0; b < blocks; ++b) {
    const auto* kept = plan.keep.kept_in(b);
    if (!kept) continue;
    const std::vector<int32_t>* earlier = recorded ? &(*recorded)[static_cast<size_t>(b)] : nullptr;
    if (earlier && earlier->empty())
      throw FormatError(fmt::format(
          "{}: metadata key '{}' records no experts for block {}, which has expert tensors", file,
          kGgufSliceExpertsKept, b));
    for (const int32_t id : *kept)
      original_ids[static_cast<size_t>(b)].push_back(earlier ? (*earlier)[static_cast<size_t>(id)]
                                                             : id);
  }
  set_count(plan.metadata, key_of("expert_count"), kept_count);
  if (metadata.contains(key_of("expert_used_count")))
    set_count(plan.metadata, key_of("expert_used_count"), used_after);
  if (!recorded) {
    plan.metadata.set(std::string(kGgufSliceOriginalExpertCount),
                      GgufValue::of_u32(static_cast<uint32_t>(experts)));
    plan.metadata.set(std::string(kGgufSliceOriginalExpertUsedCount),
                      GgufValue::of_u32(static_cast<uint32_t>(used)));
    plan.metadata.set(std::string(kGgufSliceSource), GgufValue::of_string(source.name));
    plan.metadata.set(std::string(kGgufSliceSourceFingerprint),
                      GgufValue::of_string(source.fingerprint));
  }
  plan.metadata.set(std::string(kGgufSliceExpertsKept),
                    encode_experts_kept(original_ids, kept_count));
  plan.metadata.set(std::string(kGgufSlicePlan), GgufValue::of_string(plan_document.dump()));

  plan.summary.experts_before = experts;
  plan.summary.experts_after = kept_count;
  plan.summary.used_before = used;
  plan.summary.used_after = used_after;
  return plan;
}

}  // namespace moeslice
