// Blocked causal attention over a precision policy.
#include "kernels/attention.h"

#include <algorithm>
#include <cassert>
#include <type_traits>
#include <vector>

#include "kernels/precision.h"
#include "kernels/thread_pool.h"

namespace moeslice::kernels {
namespace {

constexpr size_t kQueryBlock = 128;

// gpt-oss's softmax over [row, sink] with the sink's probability dropped. As its eager attention:
// the max of both is subtracted first, which in bf16 rounds every difference (then the softmax of
// the BF16 values runs in fp32 and the caller rounds the probabilities).
template <class Math>
void softmax_with_sink(float* row, size_t n, float sink) {
  if constexpr (Math::kRoundsResults) {
    float max = sink;
    for (size_t i = 0; i < n; ++i) max = std::max(max, row[i]);
    for (size_t i = 0; i < n; ++i) row[i] = Math::round(row[i] - max);
    sink = Math::round(sink - max);
  }
  softmax_row_with_sink(row, n, sink);
}

}  // namespace

template <class Math>
void causal_attention(ConstMatrixRef q, ConstMatrixRef k, ConstMatrixRef v,
                      const AttentionShape& shape, MatrixRef out, ThreadPool* pool) {
  using Operand = typename Math::Operand;
  const size_t n = q.rows;
  const size_t hd = shape.head_dim;
  const size_t vd = shape.value_dim();
  assert(shape.kv_heads > 0 && shape.heads % shape.kv_heads == 0);
  assert(q.cols == shape.heads * hd && out.cols == shape.heads * vd && out.rows == n);
  assert(k.cols == shape.kv_heads * hd && v.cols == shape.kv_heads * vd && k.rows == n &&
         v.rows == n);
  const size_t group = shape.heads / shape.kv_heads;
  const size_t blocks = (n + kQueryBlock - 1) / kQueryBlock;
  // Reused per calling thread (no page faults per layer). The tasks below run on other threads,
  // where these names would mean those threads' own buffers: they use the views.
  thread_local std::vector<Operand> q_storage, k_storage, v_storage;
  const HeadOperands<Operand> q_heads = Math::heads(q, shape.heads, hd, q_storage);
  const HeadOperands<Operand> k_heads = Math::heads(k, shape.kv_heads, hd, k_storage);
  const HeadOperands<Operand> v_heads = Math::heads(v, shape.kv_heads, vd, v_storage);

  parallel_for(pool, shape.heads * blocks, [&](size_t task, size_t) {
    thread_local std::vector<float> scores_storage;
    thread_local std::vector<Operand> probs_storage;
    thread_local std::vector<float> context;
    const size_t head = task / blocks;
    const size_t kv_head = head / group;
    const size_t begin = (task % blocks) * kQueryBlock;
    const size_t rows = std::min(kQueryBlock, n - begin);
    const size_t keys = begin + rows;  // causal: the block's last query sees keys [0, keys)
    // With a window the block's first query sees keys from `first_key` on; no row sees before.
    const size_t first_key =
        shape.window != 0 && begin + 1 > shape.window ? begin + 1 - shape.window : 0;
    const size_t span = keys - first_key;
    if (scores_storage.size() < rows * span) scores_storage.resize(rows * span);
    const MatrixRef scores(scores_storage.data(), rows, span);
    // The probabilities as the second GEMM's operand: the scores themselves when that is fp32.
    BasicMatrixRef<Operand> probs;
    if constexpr (std::is_same_v<Operand, float>) {
      probs = scores;
    } else {
      if (probs_storage.size() < rows * span) probs_storage.resize(rows * span);
      probs = {probs_storage.data(), rows, span};
    }

    const ConstOperandRef<Math> k_head = k_heads.head(kv_head).row_range(first_key, span);
    const ConstOperandRef<Math> v_head = v_heads.head(kv_head).row_range(first_key, span);
    Math::attention_scores(q_heads.head(head).row_range(begin, rows), k_head, scores, hd,
                           shape.scale);
    for (size_t i = 0; i < rows; ++i) {
      float* row = scores.row(i);
      Operand* p = probs.row(i);
      const size_t position = begin + i;
      // Row i sees keys [from, position] (columns from - first_key ..).
      const size_t from =
          shape.window != 0 && position + 1 > shape.window ? position + 1 - shape.window : 0;
      const size_t skip = from - first_key;
      const size_t visible = position + 1 - from;
      if (shape.sinks != nullptr)
        softmax_with_sink<Math>(row + skip, visible, shape.sinks[head]);
      else
        Math::softmax(row + skip, visible);
      std::fill(p, p + skip, Operand{0});
      Math::to_operand(row + skip, p + skip, visible);
      std::fill(p + skip + visible, p + span, Operand{0});
    }
    const MatrixRef dst = out.columns(head * vd, vd).row_range(begin, rows);
    const MatrixRef tile = gemm_output<Math>(dst, context);
    Math::gemm_ab(probs, v_head, tile);
    store_results<Math>(tile, dst);
  });
}

template void causal_attention<Fp32Math>(ConstMatrixRef, ConstMatrixRef, ConstMatrixRef,
                                         const AttentionShape&, MatrixRef, ThreadPool*);
template void causal_attention<Bf16Math>(ConstMatrixRef, ConstMatrixRef, ConstMatrixRef,
                                         const AttentionShape&, MatrixRef, ThreadPool*);

}  // namespace moeslice::kernels
