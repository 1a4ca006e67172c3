// TensorView and the shape and size arithmetic shared by every format.
#include "format/tensor_view.h"

#include <limits>

#include "common/ggml_type.h"

namespace moeslice {

int64_t TensorView::numel() const {
  int64_t count = 1;
  for (int64_t extent : shape) count *= extent;
  return count;
}

std::string TensorView::shape_string() const { return format_shape(shape); }

std::string format_shape(std::span<const int64_t> shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::optional<uint64_t> tensor_bit_count(DType dtype, std::span<const int64_t> shape) {
  if (dtype_block(dtype)) return std::nullopt;
  uint64_t count = 1;
  for (int64_t extent : shape) {
    if (extent < 0) return std::nullopt;
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(extent), &count)) return std::nullopt;
  }
  uint64_t bits = 0;
  if (__builtin_mul_overflow(count, static_cast<uint64_t>(dtype_bits(dtype)), &bits))
    return std::nullopt;
  return bits;
}

std::optional<uint64_t> tensor_byte_size(DType dtype, std::span<const int64_t> shape) {
  if (dtype_block(dtype)) {
    // Blocks run along the innermost axis: rows of whole blocks, times the outer extents.
    if (shape.empty() || shape.back() < 0) return std::nullopt;
    auto bytes = row_byte_size(dtype, static_cast<uint64_t>(shape.back()));
    uint64_t elements = static_cast<uint64_t>(shape.back());
    for (size_t axis = 0; bytes && axis + 1 < shape.size(); ++axis) {
      const int64_t extent = shape[axis];
      if (extent < 0 || __builtin_mul_overflow(*bytes, static_cast<uint64_t>(extent), &*bytes) ||
          __builtin_mul_overflow(elements, static_cast<uint64_t>(extent), &elements))
        return std::nullopt;
    }
    if (elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return bytes;
  }
  const auto bits = tensor_bit_count(dtype, shape);
  if (!bits || *bits % 8 != 0) return std::nullopt;
  return *bits / 8;
}

}  // namespace moeslice
