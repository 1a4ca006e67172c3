// Slicing: a complete Hugging Face checkpoint holding only the experts a plan keeps. Kept experts
// are renumbered 0..K-1 in ascending original order (EMO's shared experts, the highest ids, stay
// last); their tensors are copied byte for byte from the mapped input whatever their dtype
// (FP8 with its scales included); router rows, router bias and correction bias, and fused expert
// tensors are cut along the expert axis; every other tensor is copied unchanged. config.json gets
// the family's expert keys rewritten, small files beside the weights are copied, and
// pruning_metadata.json records the plan and the source model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "format/byte_size.h"
#include "kernels/matrix.h"
#include "model/keep_plan.h"
#include "model/model_spec.h"

namespace moeslice {

inline constexpr const char* kPruningMetadataFileName = "pruning_metadata.json";

struct SliceOptions {
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  bool overwrite = false;
  bool verify = true;  // compare each sliced MoE layer with the restricted full layer
};

struct SliceReport {
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
  int64_t experts_before = 0;  // per layer
  int64_t experts_after = 0;   // per layer (the largest layer when counts differ)
  std::vector<int64_t> experts_after_each_layer;  // per MoE layer when counts differ, else empty
  int64_t experts_per_token_after = 0;
  int64_t tensors_written = 0;
  double verify_max_relative_error = -1;  // < 0 when not verified
};

// What a plan keeps per layer ([L], 0 for layers without experts). Throws InputError when a
// layer with experts has no entry; when the counts differ and the family's config cannot list
// per-layer counts (standard loaders need one count; EMO's `num_experts_per_layer` can), or a
// layer keeps fewer than experts per token (one top-k serves every layer); or when the plan does
// not fit the routing (check_plan_fits_routing: group-limited routing needs balanced groups).
// Refuses to slice a model that already has per-layer counts.
std::vector<int64_t> kept_counts(const KeepPlan& plan, const ModelSpec& spec);

// The check run before a slice is published: the same random hidden states go through every MoE
// layer of both models, and the sliced layer must equal the full layer with its router
// restricted to the kept experts (1e-5 relative: GEMM shapes differ, a wrong expert is O(1)).
// The full model's half reads only the input, so slice_checkpoint runs it while writing.
struct RestrictedOutputs {
  kernels::Matrix x;               // [tokens, hidden]
  std::vector<kernels::Matrix> y;  // per layer; empty for layers without experts
};
RestrictedOutputs restricted_layer_outputs(const Model& full, const KeepPlan& plan);
// Returns the largest relative difference; throws Error naming the first layer over the bar.
double check_sliced_layers(const Model& sliced, const RestrictedOutputs& expected);

// Copies the small files beside a checkpoint's weights (tokenizer, generation config, ...):
// everything but safetensors files, the index, config.json and pruning_metadata.json.
void copy_side_files(const std::filesystem::path& from, const std::filesystem::path& to);

// Slices `model` by `plan` into `out_dir` (atomic). `plan_document` is the plan file's JSON,
// stored in pruning_metadata.json.
SliceReport slice_checkpoint(const Model& model, const KeepPlan& plan,
                             const nlohmann::json& plan_document,
                             const std::filesystem::path& out_dir, const SliceOptions& options);

}  // namespace moeslice
