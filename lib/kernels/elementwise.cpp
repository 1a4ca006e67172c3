// Element-wise activations and float-accumulated reductions.
#include "kernels/elementwise.h"

#include <cassert>

namespace moeslice::kernels {
namespace {

constexpr size_t kLanes = 16;

// Sums 16 partial sums pairwise, as a vector horizontal add does.
float reduce_lanes(float (&acc)[kLanes]) {
  for (size_t width = kLanes / 2; width > 0; width /= 2)
    for (size_t j = 0; j < width; ++j) acc[j] += acc[j + width];
  return acc[0];
}

}  // namespace

float dot(const float* a, const float* b, size_t n) {
  float acc[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (size_t j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  for (size_t j = 0; i < n; ++i, ++j) acc[j] += a[i] * b[i];
  return reduce_lanes(acc);
}

float sum_of_squares(const float* x, size_t n) { return dot(x, x, n); }

float round_to(DType dtype, float value) {
  switch (dtype) {
    case DType::F32:
      return value;
    case DType::BF16:
      return bf16_to_f32(f32_to_bf16(value));
    case DType::F16:
      return f16_to_f32(f32_to_f16(value));
    default:
      assert(false && "round_to needs a compute-float dtype");
      return value;
  }
}

void round_to(DType dtype, MatrixRef values) {
  if (dtype == DType::F32) return;
  for (size_t r = 0; r < values.rows; ++r) {
    float* row = values.row(r);
    for (size_t c = 0; c < values.cols; ++c) row[c] = round_to(dtype, row[c]);
  }
}

}  // namespace moeslice::kernels
