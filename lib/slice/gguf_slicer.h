// Slicing and unslicing GGUF files: a plan from gguf_slice_plan.h carried out through the GGUF
// writer (copied tensors disk to disk by the range-copy engine, cut tensors streamed expert by
// expert, metadata in the input's order), the staged output read back by the strict reader and
// every tensor compared with its source bytes before it is published; and a slice's experts put
// back into its full model by the moeslice.* keys.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/gguf/model.h"
#include "slice/gguf_slice_plan.h"

namespace moeslice {

struct GgufSliceOptions {
  // Split the output into parts of at most this many tensor bytes; nullopt: one file for one
  // input file, parts no larger than the input's largest for a split input.
  std::optional<uint64_t> max_part_bytes;
  bool overwrite = false;
  bool verify = true;  // read the staged output back and compare every tensor with its source
};

struct GgufSliceReport : GgufSliceSummary {
  int64_t tensors_cut = 0;
  int64_t tensors_copied = 0;
  std::vector<std::filesystem::path> files;  // written, first part first
  bool verified = false;
};

// Plans and writes the slice of `model` that `plan_document` (the plan file `plan_source`) asks
// for, at `out` (a .gguf path; split parts beside it). Throws InputError for the plan's refusals
// (plan_gguf_slice), an output that is an input or exists without options.overwrite; Error when
// the read-back check fails. Nothing is written on failure.
GgufSliceReport slice_gguf(const GgufModel& model, const nlohmann::json& plan_document,
                           const std::string& plan_source, const std::filesystem::path& out,
                           const GgufSliceOptions& options);

struct GgufUnsliceReport {
  int64_t tensors_from_sliced = 0;
  int64_t tensors_from_full = 0;
  int64_t tensors_merged = 0;  // stacked experts and routers mixed from both
  uint64_t bytes = 0;
  std::vector<std::filesystem::path> files;
};

// Writes `full` with the experts of `sliced` (a slice of it made by slice_gguf, possibly
// fine-tuned) put back at their original ids, and every other tensor the slice holds taken from
// it; the full model's metadata. Throws InputError naming the slice and the key when it has no
// moeslice.* keys or they do not match `full` (another expert count, another fingerprint), and
// naming the tensor when a tensor's type or shape does not match.
GgufUnsliceReport unslice_gguf(const GgufModel& full, const GgufModel& sliced,
                               const std::filesystem::path& out, const GgufSliceOptions& options);

}  // namespace moeslice
