// Unslicing: puts the experts of a (possibly fine-tuned) sliced model back into the full model it
// was cut from, by the original ids in its pruning_metadata.json. Kept experts, their router rows
// and every shared (non-expert) tensor come from the sliced model; the experts it dropped come
// from the full model.
#pragma once

#include <cstdint>
#include <filesystem>

#include "model/model_spec.h"

namespace moeslice {

struct UnsliceReport {
  int64_t tensors_from_sliced = 0;
  int64_t tensors_from_full = 0;
  int64_t tensors_merged = 0;  // router rows and fused experts mixed from both
  uint64_t bytes = 0;
};

UnsliceReport unslice_checkpoint(const Model& full, const Model& sliced,
                                 const std::filesystem::path& out_dir, uint64_t max_shard_bytes,
                                 bool overwrite);

}  // namespace moeslice
