// Writing GGUF files (version 3) on the range-copy engine: the metadata in the order given (any
// value types), the tensor infos, the data section aligned to `general.alignment` (default 32)
// with every tensor padded to it as llama.cpp and gguf-py write them; tensors that are byte ranges
// of an input are copied disk to disk, the others produced. A model is written whole or not at
// all (staging files renamed into place), as one file or as split parts with correct split.* keys.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "format/checkpoint_writer.h"
#include "format/gguf/metadata.h"
#include "format/range_copy.h"
#include "format/tensor_source.h"

namespace moeslice {

// The bytes before the data section and where each tensor goes.
struct GgufLayout {
  std::string header;  // magic ... tensor infos, padded to the alignment
  uint32_t alignment = 32;
  std::vector<uint64_t> offsets;  // each tensor's offset in the data section
  uint64_t size = 0;              // the whole file
};

// Lays out a GGUF file of `metadata` and `tensors` (in this order). Throws InputError naming the
// tensor or key when the file cannot hold them: a name twice or longer than 63 bytes, more than 4
// dimensions, a dtype ggml has no type for, a size that is not whole blocks, a general.alignment
// that is not a UINT32 power of two.
GgufLayout gguf_layout(const GgufMetadata& metadata, std::span<const TensorSource> tensors);

// Writes one GGUF file at `path` (created or truncated; the caller takes care of atomicity).
void write_gguf_file(const std::filesystem::path& path, const GgufMetadata& metadata,
                     std::span<const TensorSource> tensors, RangeCopy copy = RangeCopy::kCached);

struct GgufWriteOptions {
  // When set and the tensors hold more bytes, split parts (NAME-00001-of-0000N.gguf beside
  // `path`, NAME being `path` without .gguf) each start before this many bytes of tensors (a
  // larger tensor gets a part alone); the first part carries every metadata key, every part
  // split.no (UINT16, from 0), split.count (UINT16) and split.tensors.count (INT32), as gguf-split
  // writes them.
  std::optional<uint64_t> max_part_bytes = std::nullopt;
  RangeCopy copy = RangeCopy::kCached;
  bool overwrite = false;
  // Called with the staged files (first part first) once all are written, before any is renamed
  // into place: a check that throws leaves nothing behind.
  std::function<void(const std::vector<std::filesystem::path>& staged)> check_before_commit =
      nullptr;
};

// Writes a model atomically: `path` itself, or its split parts. split.* keys of `metadata` (from
// a split input) are replaced, or dropped for a single file. Returns the files written. Throws
// InputError for an output that exists (without overwrite) or cannot be placed, IoError when the
// disk refuses; nothing is left behind on failure.
std::vector<std::filesystem::path> write_gguf_model(const std::filesystem::path& path,
                                                    const GgufMetadata& metadata,
                                                    std::span<const TensorSource> tensors,
                                                    const GgufWriteOptions& options);

// The CheckpointWriter entry of the gguf format. A GGUF carries metadata (tokenizer, chat
// template) the generic interface has no place for, so write() refuses with UnsupportedError
// until callers pass it; GGUF output goes through write_gguf_model.
class GgufWriter final : public CheckpointWriter {
 public:
  std::string_view format_name() const override;
  std::vector<std::filesystem::path> write(const std::filesystem::path& dir,
                                           const nlohmann::json& config,
                                           std::span<const TensorSource> tensors,
                                           const Metadata& metadata,
                                           const WriteOptions& options) const override;
};

}  // namespace moeslice
