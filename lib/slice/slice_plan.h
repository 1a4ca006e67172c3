// Planning a slice, as a pure function: from a model (its spec and its tensors) and a keep plan,
// the fate of every input tensor (copied as is, a kept expert's tensor under its new number, cut
// along the expert axis to the kept rows, or dropped), the output tensors in the order they are
// written, the kept counts, the sliced config.json, the pruning_metadata.json document and the
// numbers the command reports. Nothing is written and no tensor byte is read; slicer.h carries a
// plan out.
//
// Kept experts are renumbered 0..K-1 in ascending original order (EMO's shared experts, the
// highest ids, stay last); every tensor an expert owns moves with it, companions the profile does
// not list included (FP8 `weight_scale_inv`). Router rows, router and correction biases and fused
// expert tensors are cut along their expert axis. The multi-token-prediction layers of DeepSeek-V3
// and GLM-4.5 (num_nextn_predict_layers) are dropped: they predict with the full model's experts,
// which a slice no longer has, and transformers never loads them; the sliced config says 0.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/checkpoint_writer.h"
#include "format/tensor_store.h"
#include "model/keep_plan.h"
#include "model/model_spec.h"
#include "slice/pruning_metadata.h"

namespace moeslice {

enum class TensorFate : uint8_t {
  kCopied,           // written as is, under its own name
  kKeptExpert,       // a kept expert's tensor, as is, under its new number (may equal the old)
  kCutAlongExperts,  // only the kept experts' rows along the expert axis (axis 0)
  kDropped,          // a dropped expert's tensor
  kDroppedMtp,       // a multi-token-prediction layer's tensor (the slice has no MTP layer)
};
// "copied", "kept expert", "cut along experts", "dropped", "dropped MTP layer".
std::string_view fate_name(TensorFate fate);

// One input tensor and what becomes of it.
struct PlannedTensor {
  const TensorView* source = nullptr;  // a tensor of the planned store
  TensorFate fate = TensorFate::kCopied;
  std::string output_name;            // empty when dropped
  std::vector<int64_t> output_shape;  // the source's, with the kept count on axis 0 when cut
  std::vector<int32_t> kept_rows;     // cut: the rows kept, ascending; else empty
  std::optional<FileRange> range;     // where the source's bytes lie (orders the output)

  uint64_t output_bytes() const;
};

// What the command reports about a slice.
struct SliceSummary {
  uint64_t bytes_before = 0;   // every input tensor
  uint64_t bytes_after = 0;    // every output tensor
  int64_t experts_before = 0;  // per layer
  int64_t experts_after = 0;   // per layer (the largest layer when counts differ)
  std::vector<int64_t> experts_after_each_layer;  // per MoE layer when counts differ, else empty
  int64_t experts_per_token_after = 0;
  int64_t tensors_written = 0;
  int64_t mtp_layers_dropped = 0;   // the model's num_nextn_predict_layers
  int64_t mtp_tensors_dropped = 0;  // their tensors
};

// Refers to the planned store's tensors: valid while that store lives.
struct SlicePlan {
  KeepPlan keep;
  // Every input tensor, in the store's (name) order.
  std::vector<PlannedTensor> tensors;
  // The tensors written (indices into `tensors`), in the order the input holds their bytes: file,
  // then offset (ties in name order). The kept experts are then read front to back, which the
  // page cache serves a third faster than name order.
  std::vector<size_t> output_order;
  std::vector<int64_t> kept_counts;  // [layers], 0 for layers without experts
  // EMO's prune_keep_k: the count per layer, or the average a nonuniform plan keeps (rounded).
  int64_t keep_k = 0;
  nlohmann::json config;     // config.json of the slice
  nlohmann::json metadata;   // pruning_metadata.json of the slice
  Metadata format_metadata;  // stored beside the tensors by the format
  SliceSummary summary;

  const PlannedTensor* find(std::string_view input_name) const;
};

// What `plan` keeps per layer ([L], 0 for layers without experts). Throws InputError when a
// layer with experts has no entry; when the counts differ and the family's config cannot list
// per-layer counts (standard loaders need one count; EMO's `num_experts_per_layer` can), or a
// layer keeps fewer than experts per token (one top-k serves every layer); or when the plan does
// not fit the routing (check_plan_fits_routing: group-limited routing needs balanced groups).
// Throws UnsupportedError for a model that already has per-layer counts.
std::vector<int64_t> kept_counts(const KeepPlan& plan, const ModelSpec& spec);

// Every tensor of `store` (in name order) and its fate when the model (`spec`) keeps what `plan`
// keeps, which must list the kept ids of every layer with experts (std::logic_error otherwise):
// plan_slice() without its refusals and totals. Unslicing reads the fates backwards. Throws
// UnsupportedError for a tensor whose expert axis is not its first.
std::vector<PlannedTensor> plan_tensor_fates(const ModelSpec& spec, const TensorStore& store,
                                             const KeepPlan& plan);

// Plans slicing the model (`spec` resolved for `store`) down to what `plan` keeps. Throws as
// kept_counts() and plan_tensor_fates() do.
SlicePlan plan_slice(const ModelSpec& spec, const TensorStore& store, const KeepPlan& plan,
                     const SliceProvenance& provenance);

}  // namespace moeslice
