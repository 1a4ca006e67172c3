// Slicing: a complete checkpoint, in the input's format, holding only the experts a plan keeps.
// slice_plan.h decides every tensor's fate; this carries a plan out through the format's
// CheckpointWriter (kept tensors copied disk to disk by the range-copy engine, cut tensors
// streamed row by row), writes pruning_metadata.json and the small files beside the weights, and
// reads the result back through the format registry to check it (slice_check.h) before the
// output appears.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/byte_size.h"
#include "format/tensor_source.h"
#include "model/keep_plan.h"
#include "model/model_spec.h"
#include "slice/pruning_metadata.h"
#include "slice/slice_check.h"
#include "slice/slice_plan.h"

namespace moeslice {

struct SliceOptions {
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  bool overwrite = false;
  bool verify = true;  // compare each sliced MoE layer with the restricted full layer
};

struct SliceReport : SliceSummary {
  double verify_max_relative_error = -1;  // < 0 when not verified
};

// The tensors `plan` writes, in its output order, reading from `store` (the store it was planned
// on): copied and kept-expert tensors carry their file range, cut ones produce their kept rows.
std::vector<TensorSource> slice_tensor_sources(const TensorStore& store, const SlicePlan& plan);

// Copies the small files beside a checkpoint's weights (tokenizer, generation config, ...) into
// directory `to`: the store's side_files() except a slice's pruning_metadata.json.
void copy_side_files(const TensorStore& from, const std::filesystem::path& to);

// Carries out `plan`, made by plan_slice() for `model`, into `out_dir` (atomic): the check runs
// when options.verify is set and the family's forward pass is supported. Throws InputError when
// out_dir overlaps the input or exists (without options.overwrite), Error when the check fails.
SliceReport write_slice(const Model& model, const SlicePlan& plan,
                        const std::filesystem::path& out_dir, const SliceOptions& options);

// Plans and writes a slice of `model` by `plan` into `out_dir`. `plan_document` is the plan
// file's JSON, stored in pruning_metadata.json.
SliceReport slice_checkpoint(const Model& model, const KeepPlan& plan,
                             const nlohmann::json& plan_document,
                             const std::filesystem::path& out_dir, const SliceOptions& options);

}  // namespace moeslice
