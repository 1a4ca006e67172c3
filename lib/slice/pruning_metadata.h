// pruning_metadata.json, the file a slice carries beside its weights (EMO's tools write and read
// the same): the plan's keys, `experts_kept_per_layer` as ids of the original model (null for
// layers without experts), `original_model` and `sliced_from` (absolute paths), `prune_keep_k`,
// `num_shared_experts`, `pruning_method` and `moeslice_version`, and what identifies the original
// model (`original_experts_per_layer`, `original_fingerprint`). Slicing writes it; slicing a
// slice and unslicing read it back.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/tensor_store.h"
#include "model/keep_plan.h"
#include "model/model_spec.h"

namespace moeslice {

inline constexpr const char* kPruningMetadataFileName = "pruning_metadata.json";

// What pruning_metadata.json records beyond the kept ids: the plan file's document (its other
// keys are kept) and, when the input is itself a slice, its own pruning_metadata.json, which maps
// its expert ids back to the model it was cut from.
struct SliceProvenance {
  nlohmann::json plan_document = nlohmann::json::object();
  nlohmann::json input_metadata;  // null when the input is not a slice
};

// The pruning_metadata.json beside `store`'s files, or null when there is none (the store is not
// a slice). Throws FormatError naming the file when it is not valid JSON.
nlohmann::json read_input_pruning_metadata(const TensorStore& store);

// The document of a slice of `spec`'s model (read from `input_path`) by `plan`, keeping `keep_k`
// experts per layer (EMO's prune_keep_k). Kept ids are mapped back through
// `provenance.input_metadata` when the input is itself a slice, and its original_model is kept.
nlohmann::json slice_pruning_metadata(const ModelSpec& spec,
                                      const std::filesystem::path& input_path, const KeepPlan& plan,
                                      int64_t keep_k, const SliceProvenance& provenance);

// Records what identifies `original` (the model a slice is cut from, not itself a slice) in
// `metadata`: `original_experts_per_layer` (each layer's expert count, null without experts) and
// `original_fingerprint` ("fnv1a64:" + hex over every tensor's name, dtype and shape and the bytes
// of the first MoE layer's router). Reads one router's bytes, not the model.
void add_original_model_identity(nlohmann::json& metadata, const Model& original);

// Throws InputError when the slice metadata at `path` records an original model other than
// `full` (another expert count per layer, another fingerprint); metadata without these keys
// (written by other tools or earlier versions) is not checked.
void check_original_model_identity(const nlohmann::json& metadata,
                                   const std::filesystem::path& path, const Model& full);

// The experts `sliced` kept, as a keep plan over `full` (original ids, a list for every layer
// with experts), from the sliced model's pruning_metadata.json (the plan's source). Throws
// FormatError naming the file when it is missing a layer, lists a count other than the sliced
// model's, or ids that are not ascending integers below the full model's count.
KeepPlan read_slice_keep_plan(const Model& full, const Model& sliced);

}  // namespace moeslice
