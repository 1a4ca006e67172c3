// Writing one output file whose layout is fixed up front, for any format's writer: literal bytes
// (a header) at their offsets, tensors from produce() at theirs, and tensors that are byte ranges
// of existing files copied disk to disk on copier threads (O_DIRECT, or copy_file_range inside the
// kernel), falling back to produce() where the kernel will not copy.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "format/tensor_source.h"

namespace moeslice {

// How file ranges are copied. kCached copies them through the page cache (copy_file_range, as cp
// does), so they stay in memory for a caller that reads the same bytes meanwhile or next, e.g. a
// verification pass. kDirect reads and writes them with O_DIRECT, bypassing the page cache: the
// fastest way to copy gigabytes (little CPU time, no cache growth), but it leaves neither input
// nor output cached, so a reader that follows goes to the disk.
enum class RangeCopy { kCached, kDirect };

// Bytes written as given (a header), at `offset` of the output.
struct LiteralBytes {
  uint64_t offset = 0;
  std::span<const std::byte> bytes;
};

// A tensor at `offset` of the output, byte_size() bytes long. It is copied from its file_range
// when it has one of exactly that length, else from its file_ranges when they add up to that
// length, else written from produce().
struct PlacedTensor {
  uint64_t offset = 0;
  const TensorSource* tensor = nullptr;
};

// The whole output file: `size` bytes, every one of them covered by a literal or a tensor.
// Tensors are listed in the order to write them: neighbours in the list that are also neighbours
// in the output and in one source file (an expert's projections) are copied as one run.
struct FileLayout {
  std::filesystem::path path;
  uint64_t size = 0;
  std::vector<LiteralBytes> literals;
  std::vector<PlacedTensor> tensors;
};

// Writes `layout.path` (created or truncated; the caller takes care of atomicity). The file is
// preallocated and its bytes are placed at their offsets rather than front to back: file ranges
// are copied by a few threads, as `copy` says, while this thread writes the literals and the
// produced tensors (produce() is only ever called on this thread). Throws IoError naming the file
// (the output, or the source that could not be read) and std::logic_error when a producer emits
// the wrong number of bytes or a piece lies past `size`.
void write_file_layout(const FileLayout& layout, RangeCopy copy);

}  // namespace moeslice
