// Scoring logits against a document's tokens: every position after the first token of each
// window predicts the next token. Sums are kept in double so documents can be added in any
// grouping (whole corpus, per domain) without loss.
#pragma once

#include <cstdint>
#include <span>

#include "forward/forward_pass.h"

namespace moeslice {

struct LmTotals {
  double nll = 0;       // sum of -log p(next token)
  int64_t tokens = 0;   // positions scored
  int64_t correct = 0;  // argmax == next token

  void add(const LmTotals& other);
  double mean_nll() const { return tokens > 0 ? nll / static_cast<double>(tokens) : 0.0; }
  double perplexity() const;
  double top1_accuracy() const;
};

// How a slice's next-token distributions differ from the full model's on the same positions.
struct AgreementTotals {
  double kl = 0;      // sum over positions of KL(p_full || p_slice), nats
  int64_t agree = 0;  // positions where both argmaxes are equal
  int64_t positions = 0;

  void add(const AgreementTotals& other);
  double mean_kl() const { return positions > 0 ? kl / static_cast<double>(positions) : 0.0; }
  double top1_agreement() const;
};

// Scores one window of a document: `logits` [window.length, vocab] (ForwardPass::window_logits),
// row i predicting the token after tokens[window.begin + i].
LmTotals score_window(kernels::ConstMatrixRef logits, std::span<const int32_t> tokens,
                      const Window& window);

// Compares two models' logits on the same window (rows as for score_window).
AgreementTotals compare_window(kernels::ConstMatrixRef full, kernels::ConstMatrixRef slice,
                               const Window& window);

// The same over a whole document's logits [tokens, vocab] (windows as the forward pass cut them).
LmTotals score_document(const kernels::Matrix& logits, std::span<const int32_t> tokens,
                        std::span<const Window> windows);
AgreementTotals compare_logits(const kernels::Matrix& full, const kernels::Matrix& slice,
                               std::span<const Window> windows);

// Sum of log p(tokens[i]) for i in [begin, end), each predicted from the row before it.
double continuation_log_likelihood(const kernels::Matrix& logits, std::span<const int32_t> tokens,
                                   size_t begin, size_t end);

}  // namespace moeslice
