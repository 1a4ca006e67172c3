// The format-neutral view of one stored tensor (name, dtype, shape, a span of its bytes in a
// mapped file), the byte range of a file that holds bytes, and the shape and size arithmetic every
// format shares.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace moeslice {

// A tensor inside a mapped file: dtype, shape and its bytes. No data is copied.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;

  int64_t numel() const;
  int64_t dim(size_t axis) const { return shape.at(axis); }
  // "[64, 2048]"
  std::string shape_string() const;
};

// A byte range of an existing file: lets a file writer copy a tensor from disk to disk (O_DIRECT,
// or copy_file_range inside the kernel) instead of through memory and the page cache.
struct FileRange {
  std::filesystem::path path;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// "[64, 2048]" for any shape vector.
std::string format_shape(std::span<const int64_t> shape);

// Element count x bits per element, multiplied left to right; nullopt on overflow or a negative
// extent, and for a block-quantized dtype.
std::optional<uint64_t> tensor_bit_count(DType dtype, std::span<const int64_t> shape);

// Byte size of a tensor of `shape` and `dtype`; nullopt on overflow or when the bit count is not a
// whole number of bytes. A block-quantized dtype (Q4_K...) stores rows of whole blocks along the
// innermost (last) axis: nullopt for a scalar or a last extent that is not a multiple of the block.
std::optional<uint64_t> tensor_byte_size(DType dtype, std::span<const int64_t> shape);

}  // namespace moeslice
