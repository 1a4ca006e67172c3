// Element-wise and reduction helpers on fp32 rows: activations (silu, sigmoid, the SiLU-GLU of
// expert MLPs), dot products and sums of squares with float accumulation, and rounding of
// activations to a storage dtype (to emulate a bf16 forward pass later).
//
// Reductions use 16 float partial sums (the lane count of an AVX-512 register), as vectorised
// fp32 reductions in PyTorch do, rather than one sequential sum: faster and no less accurate.
#pragma once

#include <cmath>
#include <cstddef>

#include "common/dtype.h"
#include "forward/kernels/matrix.h"

namespace moeslice::kernels {

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
// x * sigmoid(x), written as PyTorch's CPU kernel does: x / (1 + exp(-x)).
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// out[i] = silu(gate[i]) * up[i]; out may alias gate or up.
void silu_glu(const float* gate, const float* up, float* out, size_t n);

float dot(const float* a, const float* b, size_t n);
float sum_of_squares(const float* x, size_t n);

// Rounds every value to the nearest `dtype` value (BF16, F16) and back to fp32; F32 is a no-op.
float round_to(DType dtype, float value);
void round_to(DType dtype, MatrixRef values);

// Qwen2-MoE's shared-expert gate: y[t] *= sigmoid(x[t] . gate_weight) for every row t.
// x [n, H], gate_weight [H], y [n, width].
void scale_by_sigmoid_gate(ConstMatrixRef x, const float* gate_weight, MatrixRef y);

}  // namespace moeslice::kernels
