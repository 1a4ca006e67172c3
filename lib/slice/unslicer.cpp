// Merging a sliced model's experts back into the full checkpoint.
#include "slice/unslicer.h"

#include <algorithm>
#include <map>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/error.h"
#include "format/format_registry.h"
#include "format/json_file.h"
#include "slice/slicer.h"

namespace moeslice {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Kept original ids per layer from the sliced model's pruning_metadata.json, validated against
// both models.
std::vector<std::vector<int32_t>> read_kept_ids(const Model& full, const Model& sliced) {
  const fs::path path = sliced.checkpoint->path() / kPruningMetadataFileName;
  const json metadata = read_json_file(path);
  const json* layers = metadata.is_object() && metadata.contains("experts_kept_per_layer")
                           ? &metadata["experts_kept_per_layer"]
                           : nullptr;
  if (layers == nullptr || !layers->is_array() ||
      layers->size() != static_cast<size_t>(full.spec.num_layers))
    throw FormatError(fmt::format("{}: expected 'experts_kept_per_layer' with {} entries",
                                  path.string(), full.spec.num_layers));
  std::vector<std::vector<int32_t>> kept(layers->size());
  for (const auto& layer : full.spec.layers) {
    if (!layer.has_experts) continue;
    const json& entry = (*layers)[static_cast<size_t>(layer.index)];
    const int64_t sliced_count =
        sliced.spec.layers.at(static_cast<size_t>(layer.index)).num_experts;
    if (!entry.is_array() || entry.size() != static_cast<size_t>(sliced_count))
      throw FormatError(
          fmt::format("{}: layer {} must list {} expert ids (the sliced model's "
                      "count), found {}",
                      path.string(), layer.index, sliced_count, entry.dump()));
    for (const auto& id : entry) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() >= layer.num_experts ||
          (!kept[static_cast<size_t>(layer.index)].empty() &&
           id.get<int64_t>() <= kept[static_cast<size_t>(layer.index)].back()))
        throw FormatError(
            fmt::format("{}: layer {}: ids must be ascending integers in [0, {}), "
                        "found {}",
                        path.string(), layer.index, layer.num_experts, entry.dump()));
      kept[static_cast<size_t>(layer.index)].push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
  }
  return kept;
}

// Rows of a full-model tensor, with the kept ones taken from the sliced model's tensor.
TensorSource merged_rows(const TensorView& full, const TensorView& sliced,
                         const std::vector<int32_t>& kept) {
  TensorSource source;
  source.name = full.name;
  source.dtype = full.dtype;
  source.shape = full.shape;
  const size_t row_bytes = full.bytes.size() / static_cast<size_t>(full.shape[0]);
  std::vector<int64_t> from_sliced(static_cast<size_t>(full.shape[0]), -1);
  for (size_t i = 0; i < kept.size(); ++i)
    from_sliced[static_cast<size_t>(kept[i])] = static_cast<int64_t>(i);
  const auto full_bytes = full.bytes;
  const auto sliced_bytes = sliced.bytes;
  source.produce = [=](const ByteSink& sink) {
    for (size_t row = 0; row < from_sliced.size(); ++row)
      sink(
          from_sliced[row] < 0
              ? full_bytes.subspan(row * row_bytes, row_bytes)
              : sliced_bytes.subspan(static_cast<size_t>(from_sliced[row]) * row_bytes, row_bytes));
  };
  return source;
}

}  // namespace

UnsliceReport unslice_checkpoint(const Model& full, const Model& sliced, const fs::path& out_dir,
                                 uint64_t max_shard_bytes, bool overwrite) {
  std::vector<fs::path> inputs = full.checkpoint->input_paths();
  for (const fs::path& path : sliced.checkpoint->input_paths()) inputs.push_back(path);
  check_output_outside_inputs(out_dir, inputs);
  if (full.spec.family != sliced.spec.family)
    throw InputError(fmt::format("{} is a {} model but {} is {}",
                                 sliced.checkpoint->path().string(), sliced.spec.family->family,
                                 full.checkpoint->path().string(), full.spec.family->family));
  const auto kept = read_kept_ids(full, sliced);

  UnsliceReport report;
  std::vector<TensorSource> tensors;
  auto require_same_layout = [&](const TensorView& a, const TensorView& b) {
    if (a.dtype != b.dtype || a.shape.size() != b.shape.size() ||
        !std::equal(a.shape.begin() + 1, a.shape.end(), b.shape.begin() + 1))
      throw ModelError(
          fmt::format("tensor '{}': {} {} in the sliced model does not match {} {} in "
                      "the full model",
                      a.name, dtype_name(b.dtype), format_shape(b.shape), dtype_name(a.dtype),
                      format_shape(a.shape)));
  };
  std::map<std::string, bool> handled;
  for (const auto& layer : full.spec.layers) {
    if (!layer.has_experts) continue;
    const auto& ids = kept[static_cast<size_t>(layer.index)];
    for (const auto& tensor : layer.tensors) {
      if (!tensor.expert_axis) continue;
      const TensorView* full_view = full.checkpoint->find(tensor.name);
      if (full_view == nullptr) continue;
      const TensorView& sliced_view = sliced.checkpoint->tensor(tensor.name);
      require_same_layout(*full_view, sliced_view);
      tensors.push_back(merged_rows(*full_view, sliced_view, ids));
      handled[tensor.name] = true;
      ++report.tensors_merged;
    }
  }
  for (const auto& [name, view] : full.checkpoint->tensors()) {
    if (handled.count(name)) continue;
    // A tensor of one expert (companions included): the sliced model's when the expert was kept,
    // under its renumbered name.
    if (const std::optional<ExpertTensor> owner = full.spec.expert_tensor(name)) {
      const auto& ids = kept[static_cast<size_t>(owner->layer)];
      const auto position =
          std::lower_bound(ids.begin(), ids.end(), static_cast<int32_t>(owner->expert));
      if (position == ids.end() || *position != owner->expert) {
        tensors.push_back(TensorSource::copy_of(*view));
        ++report.tensors_from_full;
        continue;
      }
      const TensorView& source =
          sliced.checkpoint->tensor(full.spec.expert_tensor_name(*owner, position - ids.begin()));
      if (source.dtype != view->dtype || source.shape != view->shape)
        require_same_layout(*view, source);
      tensors.push_back(TensorSource::copy_of(source, name));
      ++report.tensors_from_sliced;
      continue;
    }
    // Shared tensors (attention, norms, embeddings, dense layers) come from the sliced model.
    const TensorView* source = sliced.checkpoint->find(name);
    if (source == nullptr) {
      tensors.push_back(TensorSource::copy_of(*view));
      ++report.tensors_from_full;
      continue;
    }
    if (source->dtype != view->dtype || source->shape != view->shape)
      throw ModelError(
          fmt::format("tensor '{}': {} {} in the sliced model does not match {} {} in "
                      "the full model",
                      name, dtype_name(source->dtype), format_shape(source->shape),
                      dtype_name(view->dtype), format_shape(view->shape)));
    tensors.push_back(TensorSource::copy_of(*source));
    ++report.tensors_from_sliced;
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorSource& a, const TensorSource& b) { return a.name < b.name; });
  for (const auto& tensor : tensors) report.bytes += tensor.byte_size();

  AtomicOutputDir output(out_dir, overwrite);
  checkpoint_format(full.checkpoint->format_name())
      .writer->write(output.staging(), full.checkpoint->config(), tensors,
                     {{"moeslice", "unslice"}}, {.max_shard_bytes = max_shard_bytes});
  copy_side_files(full.checkpoint->path(), output.staging());
  open_model(output.staging());
  output.commit();
  return report;
}

}  // namespace moeslice
