// Element-wise and reduction helpers on fp32 rows: activations (exp, silu, sigmoid), dot products
// and sums of squares with float accumulation, and rounding of activations to a storage dtype.
//
// Reductions use 16 float partial sums (the lane count of an AVX-512 register), as vectorised
// fp32 reductions in PyTorch do, rather than one sequential sum: faster and no less accurate.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/dtype.h"
#include "kernels/matrix.h"

namespace moeslice::kernels {

// e^x to within 2 ulp over the float range (0 below about -87.3, where std::exp returns denormals,
// and about 2^127.9 at most, where it would overflow to infinity): range reduction by ln 2 and a
// degree-7 Taylor polynomial on |r| <= ln(2)/2, whose truncation error (< 6e-9) is below float's
// epsilon. Branch- and call-free, so loops over it vectorise; std::exp is a scalar libm call with
// errno handling.
inline float exp_vectorizable(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;  // ln 2 split so n * kLn2Hi is exact
  constexpr float kLn2Lo = 1.42860682030941723e-6f;
  constexpr float kRoundingShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  constexpr float kLowest = -87.33f;
  constexpr float kHighest = 88.37f;
  const float input = x;
  // Selects, not std::fmin/fmax (library calls without -ffast-math); a NaN becomes kLowest here
  // and is returned as itself below.
  x = x > kLowest ? x : kLowest;
  x = x < kHighest ? x : kHighest;
  const float n = (x * kLog2e + kRoundingShift) - kRoundingShift;
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t exponent_bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &exponent_bits, sizeof scale);
  const float result = input < kLowest ? 0.0f : p * scale;  // -inf gives 0
  return input != input ? input : result;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_vectorizable(-x)); }
// x * sigmoid(x), written as PyTorch's CPU kernel does: x / (1 + exp(-x)).
inline float silu(float x) { return x / (1.0f + exp_vectorizable(-x)); }

float dot(const float* a, const float* b, size_t n);
float sum_of_squares(const float* x, size_t n);

// Rounds every value to the nearest `dtype` value (BF16, F16) and back to fp32; F32 is a no-op.
float round_to(DType dtype, float value);
void round_to(DType dtype, MatrixRef values);

}  // namespace moeslice::kernels
