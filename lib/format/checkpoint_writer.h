// The writer interface every checkpoint format implements: a whole model (its configuration and
// its tensors, in a given order) written into an output directory. A format's writer fixes each
// file's layout first and hands it to range_copy.h, which writes produced tensors and copies byte
// ranges of the input disk to disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/byte_size.h"
#include "format/range_copy.h"
#include "format/tensor_source.h"

namespace moeslice {

// Free-form string pairs a format stores beside the tensors (safetensors: `__metadata__`).
using Metadata = std::map<std::string, std::string>;

struct WriteOptions {
  // A format that splits its output starts a new file before this many bytes of tensors.
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  RangeCopy copy = RangeCopy::kCached;
};

// Thread safety: stateless; write() may run on any thread.
class CheckpointWriter {
 public:
  virtual ~CheckpointWriter() = default;

  // The format's name in the registry ("safetensors").
  virtual std::string_view format_name() const = 0;
  // Writes `config` (a Hugging Face config.json object) and `tensors`, in the order given (callers
  // pass a deterministic order), with `metadata`, into the existing empty directory `dir` (the
  // staging directory of an AtomicOutputDir). Returns the files written. Throws InputError for
  // tensors the format cannot hold (a name twice), IoError when the disk refuses.
  virtual std::vector<std::filesystem::path> write(const std::filesystem::path& dir,
                                                   const nlohmann::json& config,
                                                   std::span<const TensorSource> tensors,
                                                   const Metadata& metadata,
                                                   const WriteOptions& options) const = 0;
};

}  // namespace moeslice
