// Planning a GGUF slice, as a pure function of the file's metadata and tensor list (no tensor byte
// is read): which tensors are cut along the expert axis, the kept experts per block, and the
// output metadata. The rule is generic for every llama.cpp MoE architecture:
// - in block N, every stacked expert tensor `blk.N.ffn_*_exps.*` (weights, per-expert biases and
//   scales), the router `blk.N.ffn_gate_inp.*` (not the shared expert's `ffn_gate_inp_shexp`) and
//   `blk.N.exp_probs_b.*` are cut along their outermost axis, which must be `{arch}.expert_count`
//   long; a kept expert is one contiguous byte range whatever the ggml type;
// - everything else (shared experts `*_shexp`, attention, norms, embeddings) is copied as is.
// llama.cpp has one expert count, so every MoE block must keep the same number; with
// group-limited routing (`expert_group_count` > 1) every group must keep the same number (>= 2:
// llama.cpp scores a group by its top 2). `expert_count` becomes the kept count,
// `expert_used_count` min(k, kept); every other key stays where it was; `moeslice.*` keys record
// the plan, the original counts and the source for unslice.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/gguf/metadata.h"
#include "format/tensor_view.h"
#include "model/keep_plan.h"
#include "slice/slice_plan.h"

namespace moeslice {

// The moeslice.* keys of a sliced GGUF.
inline constexpr std::string_view kGgufSliceOriginalExpertCount = "moeslice.original_expert_count";
inline constexpr std::string_view kGgufSliceOriginalExpertUsedCount =
    "moeslice.original_expert_used_count";
// ARRAY of INT32, `block_count` x `expert_count` (the slice's): block by block, the original ids
// of the experts the slice holds in their order in the slice, or -1s for a block without experts.
// Flat because llama.cpp's GGUF reader refuses arrays of arrays.
inline constexpr std::string_view kGgufSliceExpertsKept = "moeslice.experts_kept";
inline constexpr std::string_view kGgufSliceSource = "moeslice.source";  // the original's file name
inline constexpr std::string_view kGgufSliceSourceFingerprint = "moeslice.source_fingerprint";
inline constexpr std::string_view kGgufSlicePlan = "moeslice.plan";  // the plan file, as JSON

// One input tensor (in file order) and what becomes of it: kCopied, or kCutAlongExperts to the
// rows `kept_rows` of its outermost axis. Nothing is dropped: GGUF stacks every expert.
struct GgufPlannedTensor {
  const TensorView* source = nullptr;
  TensorFate fate = TensorFate::kCopied;
  std::vector<int64_t> output_shape;  // outermost first
  std::vector<int32_t> kept_rows;     // cut: ascending; else empty
  uint64_t output_bytes = 0;
};

// Where the GGUF came from, for messages and the moeslice.* keys.
struct GgufSliceSource {
  std::string name;         // the file name recorded in moeslice.source
  std::string fingerprint;  // gguf_fingerprint() of the input
};

// The numbers the command reports.
struct GgufSliceSummary {
  int64_t experts_before = 0;
  int64_t experts_after = 0;
  int64_t used_before = 0;  // experts per token
  int64_t used_after = 0;
  uint64_t bytes_before = 0;  // tensor bytes
  uint64_t bytes_after = 0;
};

struct GgufSlicePlan {
  KeepPlan keep;                           // the plan's ids per block, in the input's numbering
  std::vector<GgufPlannedTensor> tensors;  // every input tensor, in file order
  GgufMetadata metadata;                   // the output's
  GgufSliceSummary summary;
};

// A fingerprint of a GGUF model that does not depend on how it is split: every metadata key and
// value except split.* ones, and every tensor's name, type and shape. Reads no tensor bytes.
std::string gguf_fingerprint(const GgufMetadata& metadata,
                             std::span<const TensorView* const> tensors);

// Plans slicing the GGUF model whose metadata and tensors (file order) are given by
// `plan_document` (the plan file's JSON, named `plan_source` in messages). Throws InputError
// naming the plan, tensor or key and the reason for every refusal listed above, a plan whose
// layer count is not `{arch}.block_count`, an entry for a block without experts, a plan made for
// another family or expert count (check_plan_target), a model without `{arch}.expert_count`, a
// cut tensor whose outermost axis is not the expert count or whose only axis is blocked.
GgufSlicePlan plan_gguf_slice(const GgufMetadata& metadata,
                              std::span<const TensorView* const> tensors,
                              const nlohmann::json& plan_document, const std::string& plan_source,
                              const GgufSliceSource& source);

// The value of moeslice.experts_kept for the original ids `per_block` (empty for blocks without
// experts; the others `kept_count` long).
GgufValue encode_experts_kept(const std::vector<std::vector<int32_t>>& per_block,
                              int64_t kept_count);

// The original ids moeslice.experts_kept records per block (empty for blocks without experts),
// or nullopt when the key is absent. Throws FormatError naming the file and key when it is not
// an INT32 array of `{arch}.block_count` x `{arch}.expert_count` ascending ids or -1s.
std::optional<std::vector<std::vector<int32_t>>> recorded_experts_kept(
    const GgufMetadata& metadata);

// What a cut tensor is: "" for one that is copied, else the part of its name that makes it cut
// ("ffn_up_exps", "ffn_gate_inp", "exp_probs_b"); `block` receives N of `blk.N.`.
std::string_view gguf_expert_axis_kind(std::string_view name, int64_t& block);

}  // namespace moeslice
