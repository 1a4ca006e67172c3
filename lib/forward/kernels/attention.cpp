// Blocked causal attention and the row softmax.
#include "forward/kernels/attention.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

#include "forward/kernels/gemm.h"
#include "forward/kernels/thread_pool.h"

namespace moeslice::kernels {
namespace {

constexpr size_t kQueryBlock = 128;

}  // namespace

void softmax_row(float* row, size_t n) {
  float max = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) max = std::max(max, row[i]);
  if (max == -std::numeric_limits<float>::infinity()) {
    for (size_t i = 0; i < n; ++i) row[i] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    row[i] = std::exp(row[i] - max);
    sum += row[i];
  }
  const float inv = 1.0f / sum;
  for (size_t i = 0; i < n; ++i) row[i] *= inv;
}

void causal_attention(ConstMatrixRef q, ConstMatrixRef k, ConstMatrixRef v,
                      const AttentionShape& shape, MatrixRef out, ThreadPool* pool) {
  const size_t n = q.rows;
  const size_t hd = shape.head_dim;
  assert(shape.kv_heads > 0 && shape.heads % shape.kv_heads == 0);
  assert(q.cols == shape.heads * hd && out.cols == q.cols && out.rows == n);
  assert(k.cols == shape.kv_heads * hd && v.cols == k.cols && k.rows == n && v.rows == n);
  const size_t group = shape.heads / shape.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const size_t blocks = (n + kQueryBlock - 1) / kQueryBlock;

  parallel_for(pool, shape.heads * blocks, [&](size_t task, size_t) {
    thread_local std::vector<float> scores_storage;
    const size_t head = task / blocks;
    const size_t kv_head = head / group;
    const size_t begin = (task % blocks) * kQueryBlock;
    const size_t rows = std::min(kQueryBlock, n - begin);
    const size_t keys = begin + rows;  // causal: the block's last query sees keys [0, keys)
    if (scores_storage.size() < rows * keys) scores_storage.resize(rows * keys);
    MatrixRef scores(scores_storage.data(), rows, keys);

    const ConstMatrixRef q_head = q.columns(head * hd, hd).row_range(begin, rows);
    const ConstMatrixRef k_head = k.columns(kv_head * hd, hd).row_range(0, keys);
    const ConstMatrixRef v_head = v.columns(kv_head * hd, hd).row_range(0, keys);
    gemm_abt(q_head, k_head, scores, scale);
    for (size_t i = 0; i < rows; ++i) {
      float* row = scores.row(i);
      const size_t visible = begin + i + 1;
      softmax_row(row, visible);
      std::fill(row + visible, row + keys, 0.0f);
    }
    gemm_ab(scores, v_head, out.columns(head * hd, hd).row_range(begin, rows));
  });
}

}  // namespace moeslice::kernels
