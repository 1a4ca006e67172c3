// RMSNorm over the last dimension: y = x * rsqrt(mean(x^2) + eps) * weight, in fp32 with float
// accumulation, as every supported family computes it.
//
// Families differ in where the result is rounded to the activation dtype, which matters only
// when activations are BF16/F16 (a later mode); with fp32 activations both orders coincide.
#pragma once

#include <span>

#include "common/dtype.h"
#include "kernels/matrix.h"

namespace moeslice::kernels {

enum class NormWeightOrder {
  // Llama style (OLMoE, Mixtral, Qwen2/3-MoE): weight * normalised.to(dtype), product rounded.
  kCastThenScale,
  // OLMo2 style (FlexOlmo): (weight * normalised).to(dtype), one rounding of the fp32 product.
  kScaleThenCast,
};

class ThreadPool;

// Row-wise RMSNorm of x [n, d] into y [n, d] (y may be x). weight has d entries.
// `activation` is the dtype outputs are rounded to (F32: none). Rows are spread over `pool` when
// given (the same results).
void rms_norm(ConstMatrixRef x, std::span<const float> weight, float eps, MatrixRef y,
              NormWeightOrder order = NormWeightOrder::kCastThenScale,
              DType activation = DType::F32, ThreadPool* pool = nullptr);

}  // namespace moeslice::kernels
