// Causal self-attention over one document with grouped KV heads (query head h reads KV head
// h / (heads / kv_heads)), scale 1/sqrt(head_dim), softmax with max subtraction; written once over
// a precision policy (precision.h), instantiated for Fp32Math and Bf16Math.
//
// Work is split into (head, block of 128 query rows) tasks; each computes its score block with
// one GEMM, the softmax, and the weighted sum with a second GEMM, so a 512-token prefill is a
// handful of GEMM calls per head. The split is fixed, so results do not depend on thread count.
//
// In bf16 this is transformers' eager bf16 attention: scores from BF16 operands rounded to BF16,
// scaled and rounded again, the softmax in fp32 (PyTorch's lane sums), probabilities rounded to
// BF16, and p v rounded to BF16.
#pragma once

#include <cstddef>

#include "kernels/matrix.h"
#include "kernels/softmax.h"

namespace moeslice::kernels {

class ThreadPool;

struct AttentionShape {
  size_t heads = 0;
  size_t kv_heads = 0;    // heads % kv_heads == 0
  size_t head_dim = 0;    // of q and k
  size_t v_head_dim = 0;  // of v and the output; 0: head_dim (MLA's differs)
  double scale = 0;       // of the scores; 0: head_dim^-0.5 (MLA with YaRN: times mscale^2)
  // Sliding window: token t attends to tokens max(0, t - window + 1)..t; 0: all of 0..t.
  size_t window = 0;
  // gpt-oss's attention sinks: one logit per head [heads] added to each softmax's denominator
  // (softmax_row_with_sink); null: none.
  const float* sinks = nullptr;

  size_t value_dim() const { return v_head_dim != 0 ? v_head_dim : head_dim; }
};

// q [n, heads * head_dim], k [n, kv_heads * head_dim] and v [n, kv_heads * value_dim()] (RoPE
// already applied; in bf16 holding BF16 values), out [n, heads * value_dim()] (must not overlap
// the inputs). Token t attends to tokens 0..t (or the last `window` of them).
template <class Math>
void causal_attention(ConstMatrixRef q, ConstMatrixRef k, ConstMatrixRef v,
                      const AttentionShape& shape, MatrixRef out, ThreadPool* pool = nullptr);

}  // namespace moeslice::kernels
