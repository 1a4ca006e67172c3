// Row softmax with max subtraction.
#include "kernels/softmax.h"

#include <algorithm>
#include <limits>

#include "kernels/elementwise.h"

namespace moeslice::kernels {

void softmax_row(float* row, size_t n) {
  float max = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) max = std::max(max, row[i]);
  if (max == -std::numeric_limits<float>::infinity()) {
    for (size_t i = 0; i < n; ++i) row[i] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    row[i] = exp_vectorizable(row[i] - max);
    sum += row[i];
  }
  const float inv = 1.0f / sum;
  for (size_t i = 0; i < n; ++i) row[i] *= inv;
}

void softmax_row_with_sink(float* row, size_t n, float sink) {
  float max = sink;
  for (size_t i = 0; i < n; ++i) max = std::max(max, row[i]);
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    row[i] = exp_vectorizable(row[i] - max);
    sum += row[i];
  }
  sum += exp_vectorizable(sink - max);
  const float inv = 1.0f / sum;
  for (size_t i = 0; i < n; ++i) row[i] *= inv;
}

void softmax_row_lane_sums(float* row, size_t n) {
  constexpr size_t kLanes = 8;
  float max = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) max = std::max(max, row[i]);
  float lanes[kLanes] = {};
  for (size_t i = 0; i < n; ++i) {
    row[i] = exp_vectorizable(row[i] - max);
    lanes[i % kLanes] += row[i];
  }
  float sum = lanes[0];
  for (size_t j = 1; j < kLanes; ++j) sum += lanes[j];
  const float inv = 1.0f / sum;
  for (size_t i = 0; i < n; ++i) row[i] *= inv;
}

}  // namespace moeslice::kernels
