// Softmax of one row, in the two summation orders the precision policies use (precision.h): a
// sequential float sum, and PyTorch's AVX2 kernel's eight lane sums.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>

namespace moeslice::kernels {

// In-place softmax of one row with max subtraction; -inf entries become 0. A row that is all
// -inf becomes all NaN, as in PyTorch.
void softmax_row(float* row, size_t n);

// softmax_row with the sum of PyTorch's AVX2 vectorised softmax (8 lane sums, then the lanes in
// order), so that the BF16 rounding of the probabilities agrees with a torch bf16 run more often.
void softmax_row_lane_sums(float* row, size_t n);

// Softmax of row[0..n) with one more logit, `sink`, in the denominator (gpt-oss's attention
// sinks: the softmax runs over [row, sink] and the sink's probability is dropped), max subtracted
// over both. Sequential float sum, as softmax_row.
void softmax_row_with_sink(float* row, size_t n, float sink);

}  // namespace moeslice::kernels
