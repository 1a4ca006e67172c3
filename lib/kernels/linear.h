// The Linear layer, Y = X W^T (+ bias), written once over a precision policy (precision.h):
// blocks of W's rows become GEMM operands (converted, or read in place) and are multiplied
// independently, spread over the thread pool. Instantiated for Fp32Math and Bf16Math.
//
// Determinism: the blocks are fixed per weight shape and each output value comes from one GEMM
// of its block, so results do not depend on the thread count.
#pragma once

#include <span>

#include "kernels/matrix.h"
#include "kernels/precision.h"
#include "kernels/weight_matrix.h"

namespace moeslice::kernels {

class ThreadPool;

// Y [n, out] = round(X W^T + bias) for activations X [n, in] (in bf16 they hold BF16 values),
// W [out, in], bias empty or [out]: one rounding of the fp32-accumulated sum, as PyTorch's bf16
// addmm (none in fp32). X becomes the policy's GEMM operand first (no copy in fp32). Y must not
// overlap X.
template <class Math>
void matmul_xWt(ConstMatrixRef x, const WeightMatrix& w, MatrixRef y,
                std::span<const float> bias = {}, ThreadPool* pool = nullptr);

// Same with X already the policy's GEMM operand (one conversion shared by several products).
template <class Math>
void matmul_operand_xWt(ConstOperandRef<Math> x, const WeightMatrix& w, MatrixRef y,
                        std::span<const float> bias = {}, ThreadPool* pool = nullptr);

}  // namespace moeslice::kernels
