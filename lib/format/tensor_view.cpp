// TensorView and the shape and size arithmetic shared by every format.
#include "format/tensor_view.h"

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
  const auto bits = tensor_bit_count(dtype, shape);
  if (!bits || *bits % 8 != 0) return std::nullopt;
  return *bits / 8;
}

}  // namespace moeslice
