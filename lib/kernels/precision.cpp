// The out-of-line members of the precision policies: their GEMMs, expert products, attention
// scores and head operands.
#include "kernels/precision.h"

#include <algorithm>
#include <cmath>

#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"

namespace moeslice::kernels {

// ---- Fp32Math ----

size_t Fp32Math::gate_up_block_rows(size_t hidden) {
  return std::max<size_t>(weight_block_rows(hidden) / 2, 8);
}

void Fp32Math::gemm_abt(ConstMatrixRef a, ConstMatrixRef b, MatrixRef c) {
  kernels::gemm_abt(a, b, c);
}

void Fp32Math::gemm_ab(ConstMatrixRef a, ConstMatrixRef b, MatrixRef c) {
  kernels::gemm_ab(a, b, c);
}

void Fp32Math::expert_product(ConstMatrixRef x, const WeightMatrix& w, size_t begin, size_t count,
                              MatrixRef c) {
  if (x.rows <= kFewTokens)
    few_tokens_xWt(x, w, begin, count, c);
  else
    weight_rows_product<Fp32Math>(x, w, begin, count, c);
}

GateUpProducts Fp32Math::gate_up(ConstMatrixRef x, const WeightMatrix& gate, const WeightMatrix& up,
                                 size_t begin, size_t count) {
  thread_local std::vector<float> weights;
  thread_local std::vector<float> products;
  const size_t m = x.rows;
  const size_t hidden = x.cols;
  if (products.size() < m * 2 * count) products.resize(m * 2 * count);
  // [m, 2 * count] = [gate | up] per token.
  const MatrixRef both(products.data(), m, 2 * count);
  if (m <= kFewTokens) {
    few_tokens_xWt(x, gate, begin, count, both.columns(0, count));
    few_tokens_xWt(x, up, begin, count, both.columns(count, count));
  } else {
    if (weights.size() < 2 * count * hidden) weights.resize(2 * count * hidden);
    gate.rows_to_f32(begin, count, weights.data());
    up.rows_to_f32(begin, count, weights.data() + count * hidden);
    kernels::gemm_abt(x, ConstMatrixRef(weights.data(), 2 * count, hidden), both);
  }
  return {both.columns(0, count), both.columns(count, count)};
}

void Fp32Math::attention_scores(ConstMatrixRef q, ConstMatrixRef k, MatrixRef scores,
                                size_t head_dim, double scale) {
  const float factor =
      scale != 0 ? static_cast<float>(scale) : 1.0f / std::sqrt(static_cast<float>(head_dim));
  kernels::gemm_abt(q, k, scores, factor);
}

HeadOperands<float> Fp32Math::heads(ConstMatrixRef x, [[maybe_unused]] size_t heads,
                                    size_t head_dim, std::vector<float>& /*storage*/) {
  assert(x.cols == heads * head_dim);
  return {x.data, x.rows, head_dim, x.stride, head_dim};
}

// ---- Bf16Math ----

void Bf16Math::require_available() { require_bf16_gemm(); }

ConstBf16Ref Bf16Math::operand(ConstMatrixRef x, Bf16Matrix& scratch) {
  scratch.resize(x.rows, x.cols);
  f32_to_bf16(x, scratch.data());
  return scratch.cref();
}

void Bf16Math::gemm_abt(ConstBf16Ref a, ConstBf16Ref b, MatrixRef c) { gemm_bf16_abt(a, b, c); }

void Bf16Math::gemm_ab(ConstBf16Ref a, ConstBf16Ref b, MatrixRef c) { gemm_bf16_ab(a, b, c); }

void Bf16Math::expert_product(ConstBf16Ref x, const WeightMatrix& w, size_t begin, size_t count,
                              MatrixRef c) {
  weight_rows_product<Bf16Math>(x, w, begin, count, c);
}

GateUpProducts Bf16Math::gate_up(ConstBf16Ref x, const WeightMatrix& gate, const WeightMatrix& up,
                                 size_t begin, size_t count) {
  thread_local std::vector<float> products;
  const size_t m = x.rows;
  if (products.size() < 2 * m * count) products.resize(2 * m * count);
  const MatrixRef g(products.data(), m, count);
  const MatrixRef u(products.data() + m * count, m, count);
  expert_product(x, gate, begin, count, g);
  expert_product(x, up, begin, count, u);
  return {g, u};
}

void Bf16Math::attention_scores(ConstBf16Ref q, ConstBf16Ref k, MatrixRef scores, size_t head_dim,
                                double scale) {
  // `scores * head_dim ** -0.5`: PyTorch rounds the Python float to BF16 before multiplying the
  // BF16 scores (in fp32, rounded once).
  const double factor = scale != 0 ? scale : std::pow(static_cast<double>(head_dim), -0.5);
  const float scale_bf16 = round_bf16(static_cast<float>(factor));
  gemm_bf16_abt(q, k, scores);
  for (size_t r = 0; r < scores.rows; ++r) {
    float* row = scores.row(r);
    for (size_t j = 0; j < scores.cols; ++j) row[j] = round_bf16(round_bf16(row[j]) * scale_bf16);
  }
}

HeadOperands<uint16_t> Bf16Math::heads(ConstMatrixRef x, size_t heads, size_t head_dim,
                                       std::vector<uint16_t>& storage) {
  assert(x.cols == heads * head_dim);
  const size_t n = x.rows;
  storage.resize(heads * n * head_dim);
  for (size_t t = 0; t < n; ++t)
    for (size_t h = 0; h < heads; ++h)
      f32_to_bf16(x.row(t) + h * head_dim, storage.data() + (h * n + t) * head_dim, head_dim);
  return {storage.data(), n, head_dim, head_dim, n * head_dim};
}

}  // namespace moeslice::kernels
