// Causal self-attention over one document with grouped KV heads (query head h reads KV head
// h / (heads / kv_heads)), scale 1/sqrt(head_dim), fp32 softmax with max subtraction.
//
// Work is split into (head, block of 128 query rows) tasks; each computes its score block with
// one GEMM, the softmax, and the weighted sum with a second GEMM, so a 512-token prefill is a
// handful of BLAS calls per head. The split is fixed, so results do not depend on thread count.
#pragma once

#include <cstddef>

#include "kernels/matrix.h"

namespace moeslice::kernels {

class ThreadPool;

struct AttentionShape {
  size_t heads = 0;
  size_t kv_heads = 0;  // heads % kv_heads == 0
  size_t head_dim = 0;
};

// q [n, heads * head_dim], k and v [n, kv_heads * head_dim] (RoPE already applied), out
// [n, heads * head_dim] (must not overlap the inputs). Token t attends to tokens 0..t.
void causal_attention(ConstMatrixRef q, ConstMatrixRef k, ConstMatrixRef v,
                      const AttentionShape& shape, MatrixRef out, ThreadPool* pool = nullptr);

// bf16 mode (--compute bf16), transformers' eager bf16 attention: scores q k^T from BF16 operands
// (fp32 accumulation) rounded to BF16, times the scale and rounded again, fp32 softmax, the
// probabilities rounded to BF16, and p v rounded to BF16. q, k, v hold BF16 values; the GEMMs run
// on gemm_bf16 with the same fixed (head, query block) split.
void causal_attention_bf16(ConstMatrixRef q, ConstMatrixRef k, ConstMatrixRef v,
                           const AttentionShape& shape, MatrixRef out, ThreadPool* pool = nullptr);

// In-place softmax of one row with max subtraction; -inf entries become 0. A row that is all
// -inf becomes all NaN, as in PyTorch.
void softmax_row(float* row, size_t n);

}  // namespace moeslice::kernels
