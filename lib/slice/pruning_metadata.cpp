// pruning_metadata.json: the document a slice records, and the original ids read back from it.
#include "slice/pruning_metadata.h"

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/error.h"
#include "common/fnv1a.h"
#include "common/json_parse.h"
#include "format/json_file.h"

namespace moeslice {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The earlier slice's `experts_kept_per_layer` entry for `layer`, or nullptr.
const json* earlier_ids(const json& input_metadata, size_t layer) {
  if (!input_metadata.is_object() || !input_metadata.contains("experts_kept_per_layer"))
    return nullptr;
  const json& layers = input_metadata["experts_kept_per_layer"];
  if (!layers.is_array() || layer >= layers.size() || !layers[layer].is_array()) return nullptr;
  return &layers[layer];
}

// The original-model ids of the kept experts: when the input is itself a slice, its metadata
// maps its ids back to the model it was cut from.
json original_ids(const KeepPlan& plan, const json& input_metadata) {
  json layers = json::array();
  for (size_t l = 0; l < plan.kept.size(); ++l) {
    if (!plan.kept[l]) {
      layers.push_back(nullptr);
      continue;
    }
    json ids = json::array();
    const json* mapping = earlier_ids(input_metadata, l);
    for (int32_t id : *plan.kept[l]) {
      if (mapping != nullptr && static_cast<size_t>(id) < mapping->size())
        ids.push_back((*mapping)[static_cast<size_t>(id)]);
      else
        ids.push_back(id);
    }
    layers.push_back(ids);
  }
  return layers;
}

}  // namespace

namespace {

json experts_per_layer(const ModelSpec& spec) {
  json counts = json::array();
  for (const LayerSpec& layer : spec.layers)
    counts.push_back(layer.has_experts ? json(layer.num_experts) : json(nullptr));
  return counts;
}

std::string model_fingerprint(const Model& model) {
  Fnv1a64 hash;
  for (const auto& [name, view] : model.checkpoint->tensors())
    hash.add(fmt::format("{}|{}|{};", name, dtype_name(view->dtype), format_shape(view->shape)));
  for (const LayerSpec& layer : model.spec.layers) {
    if (!layer.has_experts) continue;
    if (const TensorView* router = model.checkpoint->find(layer.name_of(TensorRole::kRouter))) {
      hash.add(router->bytes);
      model.checkpoint->release_pages(*router);
    }
    break;
  }
  return hash.hex();
}

constexpr const char* kOriginalExpertsKey = "original_experts_per_layer";
constexpr const char* kOriginalFingerprintKey = "original_fingerprint";

}  // namespace

void add_original_model_identity(json& metadata, const Model& original) {
  metadata[kOriginalExpertsKey] = experts_per_layer(original.spec);
  metadata[kOriginalFingerprintKey] = model_fingerprint(original);
}

void check_original_model_identity(const json& metadata, const fs::path& path, const Model& full) {
  if (!metadata.is_object()) return;
  const std::string full_path = full.checkpoint->path().string();
  const std::string recorded_model =
      metadata.contains("original_model") && metadata["original_model"].is_string()
          ? metadata["original_model"].get<std::string>()
          : std::string("its original model");
  if (metadata.contains(kOriginalExpertsKey) &&
      metadata[kOriginalExpertsKey] != experts_per_layer(full.spec))
    throw InputError(fmt::format(
        "{}: the slice was cut from a model with experts per layer {} ({}), but {} has {}; give "
        "the model it was sliced from",
        path.string(), metadata[kOriginalExpertsKey].dump(), recorded_model, full_path,
        experts_per_layer(full.spec).dump()));
  if (metadata.contains(kOriginalFingerprintKey)) {
    const std::string found = model_fingerprint(full);
    if (metadata[kOriginalFingerprintKey] != found)
      throw InputError(fmt::format(
          "{}: the slice was cut from a model with fingerprint {} ({}), but {} has {}: another "
          "model (other weights or tensors); give the model it was sliced from",
          path.string(), metadata[kOriginalFingerprintKey].dump(), recorded_model, full_path,
          found));
  }
}

json read_input_pruning_metadata(const TensorStore& store) {
  const fs::path path = store.path() / kPruningMetadataFileName;
  return fs::exists(path) ? read_json_file(path) : json();
}

json slice_pruning_metadata(const ModelSpec& spec, const fs::path& input_path, const KeepPlan& plan,
                            int64_t keep_k, const SliceProvenance& provenance) {
  const json& earlier = provenance.input_metadata;
  const std::string input = normalized_absolute_path(input_path);
  std::string original_model = input;
  if (earlier.is_object() && earlier.contains("original_model") &&
      earlier["original_model"].is_string())
    original_model = earlier["original_model"].get<std::string>();
  json metadata = provenance.plan_document.is_object() ? provenance.plan_document : json::object();
  metadata["experts_kept_per_layer"] = original_ids(plan, earlier);
  metadata["original_model"] = original_model;
  metadata["sliced_from"] = input;
  metadata["prune_keep_k"] = keep_k;
  metadata["num_shared_experts"] = spec.shared_experts;
  // A slice of a slice was cut, in the end, from the first one's original model.
  for (const char* key : {kOriginalExpertsKey, kOriginalFingerprintKey})
    if (earlier.is_object() && earlier.contains(key)) metadata[key] = earlier[key];
  if (!metadata.contains("pruning_method")) metadata["pruning_method"] = "moeslice";
  metadata["moeslice_version"] = MOESLICE_VERSION;
  return metadata;
}

KeepPlan read_slice_keep_plan(const Model& full, const Model& sliced) {
  const fs::path path = sliced.checkpoint->path() / kPruningMetadataFileName;
  const json metadata = read_json_file(path);
  check_original_model_identity(metadata, path, full);
  const json* layers = metadata.is_object() && metadata.contains("experts_kept_per_layer")
                           ? &metadata["experts_kept_per_layer"]
                           : nullptr;
  if (layers == nullptr || !layers->is_array() ||
      layers->size() != static_cast<size_t>(full.spec.num_layers))
    throw FormatError(fmt::format("{}: expected 'experts_kept_per_layer' with {} entries",
                                  path.string(), full.spec.num_layers));
  KeepPlan kept;
  kept.source = path.string();
  kept.kept.resize(layers->size());
  for (const auto& layer : full.spec.layers) {
    if (!layer.has_experts) continue;
    const json& entry = (*layers)[static_cast<size_t>(layer.index)];
    const int64_t sliced_count =
        sliced.spec.layers.at(static_cast<size_t>(layer.index)).num_experts;
    if (!entry.is_array() || entry.size() != static_cast<size_t>(sliced_count))
      throw FormatError(
          fmt::format("{}: layer {} must list {} expert ids (the sliced model's "
                      "count), found {}",
                      path.string(), layer.index, sliced_count, json_excerpt(entry)));
    auto& ids = kept.kept[static_cast<size_t>(layer.index)].emplace();
    for (const auto& id : entry) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() >= layer.num_experts ||
          (!ids.empty() && id.get<int64_t>() <= ids.back()))
        throw FormatError(
            fmt::format("{}: layer {}: ids must be ascending integers in [0, {}), "
                        "found {}",
                        path.string(), layer.index, layer.num_experts, json_excerpt(entry)));
      ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
  }
  return kept;
}

}  // namespace moeslice
