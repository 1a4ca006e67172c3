// RMSNorm rows.
#include "kernels/rms_norm.h"

#include <cassert>
#include <cmath>

#include "kernels/elementwise.h"
#include "kernels/thread_pool.h"

namespace moeslice::kernels {

void rms_norm(ConstMatrixRef x, std::span<const float> weight, float eps, MatrixRef y,
              NormWeightOrder order, DType activation, ThreadPool* pool) {
  assert(x.rows == y.rows && x.cols == y.cols && weight.size() == x.cols);
  const size_t d = x.cols;
  parallel_rows(pool, x.rows, [&](size_t begin, size_t count) {
    for (size_t r = begin; r < begin + count; ++r) {
      const float* in = x.row(r);
      float* out = y.row(r);
      const float mean = sum_of_squares(in, d) / static_cast<float>(d);
      const float inv_rms = 1.0f / std::sqrt(mean + eps);
      if (activation == DType::F32) {
        for (size_t c = 0; c < d; ++c) out[c] = in[c] * inv_rms * weight[c];
      } else if (order == NormWeightOrder::kCastThenScale) {
        for (size_t c = 0; c < d; ++c)
          out[c] = round_to(activation, weight[c] * round_to(activation, in[c] * inv_rms));
      } else {
        for (size_t c = 0; c < d; ++c) out[c] = round_to(activation, weight[c] * (in[c] * inv_rms));
      }
    }
  });
}

}  // namespace moeslice::kernels
