// Writing safetensors files and (sharded) checkpoints, streaming: each tensor's bytes are produced
// in chunks straight into the output, so memory stays bounded whatever the checkpoint size.
//
// Files are canonical: the header starts with `{`, is padded with spaces to a multiple of 8,
// carries `__metadata__` {"format": "pt", ...}, and tensors appear in the data buffer in the order
// given (callers pass a deterministic order).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "format/safetensors.h"

namespace moeslice {

// Receives a tensor's bytes, in order, in any number of calls.
using ByteSink = std::function<void(std::span<const std::byte>)>;

// A byte range of an existing file: lets a file writer copy a tensor from disk to disk (O_DIRECT,
// or copy_file_range inside the kernel) instead of through produce() and the page cache.
struct FileRange {
  std::filesystem::path path;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct TensorSource {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  // Emits exactly byte_size() bytes into the sink; called once per write.
  std::function<void(const ByteSink&)> produce;
  // When set, the same bytes as produce() emits, as a range of a file; a file writer copies it
  // (on several threads) and falls back to produce() where the kernel cannot.
  std::optional<FileRange> file_range;

  uint64_t byte_size() const;

  // Copies a mapped tensor byte for byte (optionally under a new name); the source's pages are
  // released after copying so reading a huge checkpoint does not fill memory.
  static TensorSource copy_of(const TensorView& view, const MappedFile* mapping,
                              std::string new_name = {});
  // Owns its bytes.
  static TensorSource from_bytes(std::string name, DType dtype, std::vector<int64_t> shape,
                                 std::vector<std::byte> bytes);
  // fp32 values stored as `dtype` (F32, F16 or BF16).
  static TensorSource from_floats(std::string name, DType dtype, std::vector<int64_t> shape,
                                  std::vector<float> values);
};

using Metadata = std::map<std::string, std::string>;

// How a file writer copies file ranges. kCached copies them through the page cache
// (copy_file_range, as cp does), so they stay in memory for a caller that reads the same bytes
// meanwhile or next, e.g. a verification pass. kDirect reads and writes them with O_DIRECT,
// bypassing the page cache: the fastest way to copy gigabytes (little CPU time, no cache growth),
// but it leaves neither input nor output cached, so a reader that follows goes to the disk.
enum class RangeCopy { kCached, kDirect };

// Writes one safetensors file to `path` (the caller takes care of atomicity). The file is
// preallocated and its bytes are placed at their offsets rather than front to back: file ranges
// are copied by a few threads, as `copy` says, while this thread writes the header and the
// produced tensors (produce() is only ever called on this thread). Throws IoError on failure
// (naming the file) and std::logic_error if a producer emits the wrong number of bytes.
void write_safetensors_file(const std::filesystem::path& path,
                            std::span<const TensorSource> tensors, const Metadata& metadata,
                            RangeCopy copy = RangeCopy::kCached);

// Writes one safetensors file atomically (temporary sibling, fsync, rename).
void write_safetensors(const std::filesystem::path& path, std::span<const TensorSource> tensors,
                       const Metadata& metadata, bool overwrite);

inline constexpr uint64_t kDefaultMaxShardBytes = 5'000'000'000;

// Writes the tensors into `dir` as model.safetensors, or, when they exceed `max_shard_bytes`, as
// model-0000i-of-0000N.safetensors shards plus model.safetensors.index.json (whose
// metadata.total_size is the sum of tensor bytes). Returns the files written.
std::vector<std::filesystem::path> write_checkpoint_tensors(const std::filesystem::path& dir,
                                                            std::span<const TensorSource> tensors,
                                                            const Metadata& metadata,
                                                            uint64_t max_shard_bytes,
                                                            RangeCopy copy = RangeCopy::kCached);

// Parses "5GB", "500MB", "2GiB", "1000000" into bytes (decimal units as Hugging Face does, binary
// with "i"). Throws InputError naming the text.
uint64_t parse_byte_size(const std::string& text);
// "1.23 GB"
std::string format_byte_size(uint64_t bytes);

}  // namespace moeslice
