// Planning a slice: kept counts and their refusals, every tensor's fate, the output order, the
// sliced config, the metadata and the report's numbers.
#include "slice/slice_plan.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <tuple>

#include <fmt/core.h>

#include "common/error.h"
#include "model/sliced_config.h"

namespace moeslice {

namespace {

// Whether every layer with experts keeps the same count.
bool uniform_counts(const ModelSpec& spec, const std::vector<int64_t>& counts) {
  const int64_t largest = *std::max_element(counts.begin(), counts.end());
  return std::all_of(spec.layers.begin(), spec.layers.end(), [&](const auto& layer) {
    return !layer.has_experts || counts[static_cast<size_t>(layer.index)] == largest;
  });
}

// Per layer with experts, each original expert's new number (-1: dropped); empty for the others.
std::vector<std::vector<int64_t>> new_expert_numbers(const ModelSpec& spec, const KeepPlan& plan) {
  std::vector<std::vector<int64_t>> numbers(spec.layers.size());
  for (const auto& layer : spec.layers) {
    if (!layer.has_experts) continue;
    const auto* kept_ids = plan.kept_in(layer.index);
    if (kept_ids == nullptr)
      throw std::logic_error(
          fmt::format("{}: no kept list for layer {}", plan.source, layer.index));
    const auto& kept = *kept_ids;
    auto& number = numbers[static_cast<size_t>(layer.index)];
    number.assign(static_cast<size_t>(layer.num_experts), -1);
    for (size_t i = 0; i < kept.size(); ++i)
      number[static_cast<size_t>(kept[i])] = static_cast<int64_t>(i);
  }
  return numbers;
}

// The tensors cut along the expert axis (routers, their biases, fused experts), with the rows
// each keeps.
std::map<std::string, const std::vector<int32_t>*, std::less<>> rows_to_cut(const ModelSpec& spec,
                                                                            const KeepPlan& plan) {
  std::map<std::string, const std::vector<int32_t>*, std::less<>> cut;
  for (const auto& layer : spec.layers) {
    if (!layer.has_experts) continue;
    for (const auto& tensor : layer.tensors)
      if (tensor.expert_axis) {
        if (*tensor.expert_axis != 0)
          throw UnsupportedError(fmt::format("tensor '{}': slicing along axis {} is not supported",
                                             tensor.name, *tensor.expert_axis));
        cut[tensor.name] = plan.kept_in(layer.index);
      }
  }
  return cut;
}

PlannedTensor plan_tensor(
    const ModelSpec& spec, const TensorStore& store, const TensorView& view,
    const std::vector<std::vector<int64_t>>& new_numbers,
    const std::map<std::string, const std::vector<int32_t>*, std::less<>>& cut) {
  PlannedTensor planned;
  planned.source = &view;
  planned.output_name = view.name;
  planned.output_shape = view.shape;
  planned.range = store.file_range(view);
  const std::optional<ExpertTensor> owner = spec.expert_tensor(view.name);
  const int64_t new_number =
      owner ? new_numbers[static_cast<size_t>(owner->layer)][static_cast<size_t>(owner->expert)]
            : -1;
  if (spec.in_mtp_layer(view.name)) {
    planned.fate = TensorFate::kDroppedMtp;
    planned.output_name.clear();
  } else if (owner && new_number < 0) {
    planned.fate = TensorFate::kDropped;
    planned.output_name.clear();
  } else if (const auto rows = cut.find(view.name); rows != cut.end()) {
    planned.fate = TensorFate::kCutAlongExperts;
    planned.kept_rows = *rows->second;
    planned.output_shape[0] = static_cast<int64_t>(planned.kept_rows.size());
  } else if (owner) {
    planned.fate = TensorFate::kKeptExpert;
    planned.output_name = spec.expert_tensor_name(*owner, new_number);
  }
  return planned;
}

// Written in the order the bytes lie in the input (file, then offset; ties in name order).
std::vector<size_t> output_order(const std::vector<PlannedTensor>& tensors) {
  std::vector<size_t> order;
  for (size_t i = 0; i < tensors.size(); ++i)
    if (!tensors[i].output_name.empty()) order.push_back(i);  // not dropped
  auto position = [&](size_t i) {
    const auto& range = tensors[i].range;
    return std::make_tuple(range ? range->path.string() : std::string(), range ? range->offset : 0);
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return position(a) < position(b); });
  return order;
}

SliceSummary summarize(const ModelSpec& spec, const TensorStore& store, const SlicePlan& plan) {
  const std::vector<int64_t>& counts = plan.kept_counts;
  const int64_t kept_count = *std::max_element(counts.begin(), counts.end());
  SliceSummary summary;
  summary.bytes_before = store.total_tensor_bytes();
  for (size_t i : plan.output_order) summary.bytes_after += plan.tensors[i].output_bytes();
  summary.experts_before = spec.num_experts;
  summary.experts_after = kept_count;
  if (!uniform_counts(spec, counts))
    for (const auto& layer : spec.layers)
      if (layer.has_experts)
        summary.experts_after_each_layer.push_back(counts[static_cast<size_t>(layer.index)]);
  summary.experts_per_token_after = std::min(spec.experts_per_token, kept_count);
  summary.tensors_written = static_cast<int64_t>(plan.output_order.size());
  summary.mtp_layers_dropped = spec.mtp_layers;
  summary.mtp_tensors_dropped = std::count_if(
      plan.tensors.begin(), plan.tensors.end(),
      [](const PlannedTensor& tensor) { return tensor.fate == TensorFate::kDroppedMtp; });
  return summary;
}

// EMO's prune_keep_k: the count per layer, or the average a nonuniform plan keeps (rounded).
int64_t keep_k_of(const ModelSpec& spec, const std::vector<int64_t>& counts) {
  if (uniform_counts(spec, counts)) return *std::max_element(counts.begin(), counts.end());
  int64_t kept_total = 0, moe_layers = 0;
  for (const auto& layer : spec.layers)
    if (layer.has_experts) {
      kept_total += counts[static_cast<size_t>(layer.index)];
      ++moe_layers;
    }
  return (kept_total + moe_layers / 2) / moe_layers;
}

}  // namespace

std::string_view fate_name(TensorFate fate) {
  switch (fate) {
    case TensorFate::kCopied:
      return "copied";
    case TensorFate::kKeptExpert:
      return "kept expert";
    case TensorFate::kCutAlongExperts:
      return "cut along experts";
    case TensorFate::kDropped:
      return "dropped";
    case TensorFate::kDroppedMtp:
      return "dropped MTP layer";
  }
  return "?";
}

uint64_t PlannedTensor::output_bytes() const {
  const auto size = tensor_byte_size(source->dtype, output_shape);
  if (!size)
    throw InputError(fmt::format("tensor '{}': shape {} of {} is too large", output_name,
                                 format_shape(output_shape), dtype_name(source->dtype)));
  return *size;
}

const PlannedTensor* SlicePlan::find(std::string_view input_name) const {
  const auto it = std::lower_bound(tensors.begin(), tensors.end(), input_name,
                                   [](const PlannedTensor& tensor, std::string_view name) {
                                     return tensor.source->name < name;
                                   });
  return it != tensors.end() && it->source->name == input_name ? &*it : nullptr;
}

std::vector<int64_t> kept_counts(const KeepPlan& plan, const ModelSpec& spec) {
  if (!spec.uniform_experts())
    throw UnsupportedError(fmt::format(
        "{}: the model already keeps different expert counts per layer; slice the full model",
        spec.config_path.string()));
  std::vector<int64_t> counts(spec.layers.size(), 0);
  int64_t first = -1;
  for (const auto& layer : spec.layers) {
    if (!layer.has_experts) continue;
    const auto* kept = plan.kept_in(layer.index);
    if (kept == nullptr)
      throw InputError(
          fmt::format("{}: layer {} has experts but no kept list; a slice needs one "
                      "for every layer with experts",
                      plan.source, layer.index));
    const auto size = static_cast<int64_t>(kept->size());
    if (first >= 0 && size != first && !spec.per_layer_expert_counts())
      throw InputError(
          fmt::format("{}: layer {} keeps {} experts but earlier layers keep {}; "
                      "standard loaders need the same count in every layer (only the emo "
                      "family's config can list per-layer counts)",
                      plan.source, layer.index, size, first));
    if (first < 0) first = size;
    counts[static_cast<size_t>(layer.index)] = size;
    check_plan_fits_routing(spec, layer, *kept, plan.source);
  }
  if (first < 0)
    throw InputError(fmt::format("{}: the model has no layer with experts", plan.source));
  if (!uniform_counts(spec, counts))
    for (const auto& layer : spec.layers)
      if (layer.has_experts && counts[static_cast<size_t>(layer.index)] < spec.experts_per_token)
        throw InputError(fmt::format(
            "{}: layer {} keeps {} experts, fewer than the {} experts per token; a slice with "
            "per-layer counts routes every layer to the same top-k, so each layer must keep at "
            "least {} (rank --nonuniform plans do)",
            plan.source, layer.index, counts[static_cast<size_t>(layer.index)],
            spec.experts_per_token, spec.experts_per_token));
  return counts;
}

std::vector<PlannedTensor> plan_tensor_fates(const ModelSpec& spec, const TensorStore& store,
                                             const KeepPlan& plan) {
  const auto new_numbers = new_expert_numbers(spec, plan);
  const auto cut = rows_to_cut(spec, plan);
  std::vector<PlannedTensor> tensors;
  tensors.reserve(store.tensors().size());
  for (const auto& [name, view] : store.tensors())
    tensors.push_back(plan_tensor(spec, store, *view, new_numbers, cut));
  return tensors;
}

SlicePlan plan_slice(const ModelSpec& spec, const TensorStore& store, const KeepPlan& plan,
                     const SliceProvenance& provenance) {
  SlicePlan slice;
  slice.keep = plan;
  slice.kept_counts = kept_counts(plan, spec);
  slice.keep_k = keep_k_of(spec, slice.kept_counts);
  slice.tensors = plan_tensor_fates(spec, store, plan);
  slice.output_order = output_order(slice.tensors);
  slice.config = sliced_config(spec, slice.kept_counts);
  slice.metadata = slice_pruning_metadata(spec, store.path(), plan, slice.keep_k, provenance);
  slice.format_metadata = {{"moeslice", "slice"}, {"prune_keep_k", std::to_string(slice.keep_k)}};
  slice.summary = summarize(spec, store, slice);
  return slice;
}

}  // namespace moeslice
