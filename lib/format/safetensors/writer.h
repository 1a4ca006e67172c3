// Writing safetensors files and (sharded) checkpoint directories, streaming: each tensor's bytes
// are produced in chunks straight into the output (or copied disk to disk by range_copy.h), so
// memory stays bounded whatever the checkpoint size.
//
// Files are canonical: the header starts with `{`, is padded with spaces to a multiple of 8,
// carries `__metadata__` {"format": "pt", ...}, and tensors appear in the data buffer in the order
// given (callers pass a deterministic order).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "format/checkpoint_writer.h"
#include "format/range_copy.h"
#include "format/tensor_source.h"

namespace moeslice {

// Writes one safetensors file to `path` (the caller takes care of atomicity), its layout fixed
// first and written by write_file_layout (range_copy.h): file ranges copied as `copy` says, the
// header and produced tensors on this thread. Throws IoError on failure (naming the file) and
// std::logic_error if a producer emits the wrong number of bytes.
void write_safetensors_file(const std::filesystem::path& path,
                            std::span<const TensorSource> tensors, const Metadata& metadata,
                            RangeCopy copy = RangeCopy::kCached);

// Writes one safetensors file atomically (temporary sibling, fsync, rename), front to back.
void write_safetensors(const std::filesystem::path& path, std::span<const TensorSource> tensors,
                       const Metadata& metadata, bool overwrite);

// Writes the tensors into `dir` as model.safetensors, or, when they exceed `max_shard_bytes`, as
// model-0000i-of-0000N.safetensors shards plus model.safetensors.index.json (whose
// metadata.total_size is the sum of tensor bytes). Returns the files written.
std::vector<std::filesystem::path> write_checkpoint_tensors(const std::filesystem::path& dir,
                                                            std::span<const TensorSource> tensors,
                                                            const Metadata& metadata,
                                                            uint64_t max_shard_bytes,
                                                            RangeCopy copy = RangeCopy::kCached);

// The CheckpointWriter of the safetensors format: the tensors as write_checkpoint_tensors writes
// them, then config.json.
class SafetensorsWriter final : public CheckpointWriter {
 public:
  std::string_view format_name() const override;
  std::vector<std::filesystem::path> write(const std::filesystem::path& dir,
                                           const nlohmann::json& config,
                                           std::span<const TensorSource> tensors,
                                           const Metadata& metadata,
                                           const WriteOptions& options) const override;
};

}  // namespace moeslice
