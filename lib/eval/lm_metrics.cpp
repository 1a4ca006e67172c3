// Log-softmax scoring, KL divergence and argmax agreement over logits rows.
#include "eval/lm_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/elementwise.h"

namespace moeslice {
namespace {

constexpr size_t kLanes = 16;

// log(sum(exp(row))), stably: exponents of row[i] - max (<= 0) in float, which is exact to 2 ulp
// and vectorises (a double std::exp per vocabulary entry was a third of `eval`'s time), summed in
// 16 double lanes.
double log_sum_exp(const float* row, size_t n) {
  const float max = *std::max_element(row, row + n);
  double lanes[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (size_t j = 0; j < kLanes; ++j) lanes[j] += kernels::exp_vectorizable(row[i + j] - max);
  for (size_t j = 0; i < n; ++i, ++j) lanes[j] += kernels::exp_vectorizable(row[i] - max);
  double sum = 0;
  for (double lane : lanes) sum += lane;
  return max + std::log(sum);
}

size_t argmax(const float* row, size_t n) {
  return static_cast<size_t>(std::max_element(row, row + n) - row);
}

}  // namespace

void LmTotals::add(const LmTotals& other) {
  nll += other.nll;
  tokens += other.tokens;
  correct += other.correct;
}

double LmTotals::perplexity() const { return std::exp(mean_nll()); }

double LmTotals::top1_accuracy() const {
  return tokens > 0 ? static_cast<double>(correct) / static_cast<double>(tokens) : 0.0;
}

void AgreementTotals::add(const AgreementTotals& other) {
  kl += other.kl;
  agree += other.agree;
  positions += other.positions;
}

double AgreementTotals::top1_agreement() const {
  return positions > 0 ? static_cast<double>(agree) / static_cast<double>(positions) : 0.0;
}

// Inside a window every token but the last predicts its successor.
LmTotals score_window(kernels::ConstMatrixRef logits, std::span<const int32_t> tokens,
                      const Window& window) {
  LmTotals totals;
  const size_t vocab = logits.cols;
  for (size_t row = 0; row + 1 < window.length; ++row) {
    const float* values = logits.row(row);
    const auto next = static_cast<size_t>(tokens[window.begin + row + 1]);
    totals.nll += log_sum_exp(values, vocab) - values[next];
    totals.tokens += 1;
    totals.correct += argmax(values, vocab) == next ? 1 : 0;
  }
  return totals;
}

AgreementTotals compare_window(kernels::ConstMatrixRef full, kernels::ConstMatrixRef slice,
                               const Window& window) {
  AgreementTotals totals;
  const size_t vocab = full.cols;
  for (size_t row = 0; row + 1 < window.length; ++row) {
    const float* p = full.row(row);
    const float* q = slice.row(row);
    const double log_z_p = log_sum_exp(p, vocab);
    const double log_z_q = log_sum_exp(q, vocab);
    double kl = 0;
    for (size_t i = 0; i < vocab; ++i) {
      const double log_p = p[i] - log_z_p;
      kl += kernels::exp_vectorizable(static_cast<float>(log_p)) * (log_p - (q[i] - log_z_q));
    }
    totals.kl += std::max(kl, 0.0);
    totals.agree += argmax(p, vocab) == argmax(q, vocab) ? 1 : 0;
    totals.positions += 1;
  }
  return totals;
}

LmTotals score_document(const kernels::Matrix& logits, std::span<const int32_t> tokens,
                        std::span<const Window> windows) {
  LmTotals totals;
  for (const Window& window : windows)
    totals.add(score_window(logits.cref().row_range(window.begin, window.length), tokens, window));
  return totals;
}

AgreementTotals compare_logits(const kernels::Matrix& full, const kernels::Matrix& slice,
                               std::span<const Window> windows) {
  AgreementTotals totals;
  for (const Window& window : windows)
    totals.add(compare_window(full.cref().row_range(window.begin, window.length),
                              slice.cref().row_range(window.begin, window.length), window));
  return totals;
}

double continuation_log_likelihood(const kernels::Matrix& logits, std::span<const int32_t> tokens,
                                   size_t begin, size_t end) {
  double total = 0;
  const size_t vocab = logits.cols();
  for (size_t i = std::max<size_t>(begin, 1); i < end; ++i) {
    const float* values = logits.row(i - 1);
    total += values[static_cast<size_t>(tokens[i])] - log_sum_exp(values, vocab);
  }
  return total;
}

}  // namespace moeslice
