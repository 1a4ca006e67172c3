// Blocked causal attention and the row softmax.
#include "kernels/attention.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/thread_pool.h"

namespace moeslice::kernels {
namespace {

constexpr size_t kQueryBlock = 128;

// x [n, heads * hd] -> BF16 [heads][n][hd]: each head dense, as oneDNN runs fastest.
void to_heads_bf16(ConstMatrixRef x, size_t heads, size_t hd, std::vector<uint16_t>& dst) {
  dst.resize(heads * x.rows * hd);
  for (size_t t = 0; t < x.rows; ++t)
    for (size_t h = 0; h < heads; ++h)
      f32_to_bf16(x.row(t) + h * hd, dst.data() + (h * x.rows + t) * hd, hd);
}

// softmax_row with the sum of PyTorch's AVX2 vectorised softmax (8 lane sums, then the lanes in
// order), so that the BF16 rounding of the probabilities agrees with a torch bf16 run more often.
void softmax_row_lanes(float* row, size_t n) {
  constexpr size_t kLanes = 8;
  float max = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) max = std::max(max, row[i]);
  float lanes[kLanes] = {};
  for (size_t i = 0; i < n; ++i) {
    row[i] = exp_vectorizable(row[i] - max);
    lanes[i % kLanes] += row[i];
  }
  float sum = lanes[0];
  for (size_t j = 1; j < kLanes; ++j) sum += lanes[j];
  const float inv = 1.0f / sum;
  for (size_t i = 0; i < n; ++i) row[i] *= inv;
}

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
    row[i] = exp_vectorizable(row[i] - max);
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

void causal_attention_bf16(ConstMatrixRef q, ConstMatrixRef k, ConstMatrixRef v,
                           const AttentionShape& shape, MatrixRef out, ThreadPool* pool) {
  const size_t n = q.rows;
  const size_t hd = shape.head_dim;
  assert(shape.kv_heads > 0 && shape.heads % shape.kv_heads == 0);
  assert(q.cols == shape.heads * hd && out.cols == q.cols && out.rows == n);
  assert(k.cols == shape.kv_heads * hd && v.cols == k.cols && k.rows == n && v.rows == n);
  const size_t group = shape.heads / shape.kv_heads;
  // `scores * head_dim ** -0.5`: PyTorch rounds the Python float to BF16 before multiplying the
  // BF16 scores (in fp32, rounded once).
  const float scale = round_bf16(static_cast<float>(std::pow(static_cast<double>(hd), -0.5)));
  const size_t blocks = (n + kQueryBlock - 1) / kQueryBlock;
  // Reused per calling thread (no page faults per layer). The tasks below run on other threads,
  // where these names would mean those threads' own buffers: they use the pointers.
  thread_local std::vector<uint16_t> q_storage, k_storage, v_storage;
  to_heads_bf16(q, shape.heads, hd, q_storage);
  to_heads_bf16(k, shape.kv_heads, hd, k_storage);
  to_heads_bf16(v, shape.kv_heads, hd, v_storage);
  const uint16_t* qh = q_storage.data();
  const uint16_t* kh = k_storage.data();
  const uint16_t* vh = v_storage.data();

  parallel_for(pool, shape.heads * blocks, [&](size_t task, size_t) {
    thread_local std::vector<float> scores_storage;
    thread_local std::vector<uint16_t> probs_storage;
    thread_local std::vector<float> context;
    const size_t head = task / blocks;
    const size_t kv_head = head / group;
    const size_t begin = (task % blocks) * kQueryBlock;
    const size_t rows = std::min(kQueryBlock, n - begin);
    const size_t keys = begin + rows;
    if (scores_storage.size() < rows * keys) scores_storage.resize(rows * keys);
    if (probs_storage.size() < rows * keys) probs_storage.resize(rows * keys);
    if (context.size() < rows * hd) context.resize(rows * hd);
    const MatrixRef scores(scores_storage.data(), rows, keys);

    const ConstBf16Ref q_block(qh + (head * n + begin) * hd, rows, hd);
    const ConstBf16Ref k_head(kh + kv_head * n * hd, keys, hd);
    const ConstBf16Ref v_head(vh + kv_head * n * hd, keys, hd);
    gemm_bf16_abt(q_block, k_head, scores);
    for (size_t i = 0; i < rows; ++i) {
      float* row = scores.row(i);
      const size_t visible = begin + i + 1;
      for (size_t j = 0; j < visible; ++j) row[j] = round_bf16(round_bf16(row[j]) * scale);
      softmax_row_lanes(row, visible);
      uint16_t* p = probs_storage.data() + i * keys;
      f32_to_bf16(row, p, visible);
      std::fill(p + visible, p + keys, uint16_t{0});
    }
    const MatrixRef ctx(context.data(), rows, hd);
    gemm_bf16_ab(ConstBf16Ref(probs_storage.data(), rows, keys), v_head, ctx);
    for (size_t i = 0; i < rows; ++i) {
      float* dst = out.row(begin + i) + head * hd;
      const float* src = ctx.row(i);
      for (size_t c = 0; c < hd; ++c) dst[c] = round_bf16(src[c]);
    }
  });
}

}  // namespace moeslice::kernels
