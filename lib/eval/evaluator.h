// Evaluating a model, a keep plan or a sliced checkpoint on a corpus (token-weighted NLL,
// perplexity, next-token accuracy, per domain) and on multiple-choice tasks (acc, acc_norm), and
// comparing several variants against the full model in one run that shares the full model's pass.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/cluster.h"
#include "eval/lm_metrics.h"
#include "eval/metric_summary.h"
#include "forward/forward_pass.h"
#include "forward/run_settings.h"
#include "text/corpus.h"
#include "text/mc_tasks.h"

namespace moeslice {

// What is scored: corpus documents (id, domain, tokens) and tokenised multiple-choice tasks
// (context, continuation tokens per choice, choice lengths in bytes, answer), as lib/text reads
// them.
using EvalDocument = CorpusDocument;
using McItem = McTask;

struct McTotals {
  int64_t tasks = 0;
  int64_t correct = 0;       // highest summed log-likelihood is the answer
  int64_t correct_norm = 0;  // highest log-likelihood per byte is the answer
  void add(const McTotals& other);
  double acc() const;
  double acc_norm() const;
};

struct EvalReport {
  LmTotals corpus;
  std::map<std::string, LmTotals> corpus_domains;
  McTotals tasks;
  std::map<std::string, McTotals> task_domains;
  AgreementTotals agreement;  // against the full model (compare only)
  std::map<std::string, AgreementTotals> agreement_domains;
};

// The report's metrics by name: perplexity, top1_accuracy, tokens, nll (mean per token) when
// tokens were scored, acc, acc_norm, tasks when tasks were, kl and top1_agreement when
// `with_agreement` (a variant compared with the full model); the same per domain label.
MetricSummary metric_summary(const EvalReport& report, bool with_agreement);

// Something to evaluate: the full model, the full model under a keep plan, or a sliced model.
struct EvalVariant {
  std::string label;
  const Model* model = nullptr;
  std::optional<KeepPlan> keep;
};

struct EvalOptions {
  RunSettings run;
  // The job's ranks (common/cluster.h): each computes the documents and tasks it owns; the
  // reports, summed in corpus order, are the same bits on every rank and for one process.
  const Cluster* cluster = &single_process();
};

// Evaluates each variant; variants[0] is the reference for KL and top-1 agreement (its own
// agreement stays empty). The reference's logits are computed once per document and shared.
// Throws InputError when no document token and no task could be scored (one-token documents,
// --max-seq 1), rather than report empty metrics.
std::vector<EvalReport> evaluate_variants(std::span<const EvalVariant> variants,
                                          std::span<const EvalDocument> documents,
                                          std::span<const McItem> tasks,
                                          const EvalOptions& options);

}  // namespace moeslice
