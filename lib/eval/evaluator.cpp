// Running variants over documents and tasks and accumulating their metrics.
#include "eval/evaluator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "common/byte_packing.h"
#include "common/error.h"

namespace moeslice {
namespace {

double ratio(int64_t part, int64_t whole) {
  return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

// Each set_* leaves the metrics out when nothing was scored.
void set_corpus_metrics(MetricValues& values, const LmTotals& corpus) {
  if (corpus.tokens <= 0) return;
  values[Metric::kPerplexity] = corpus.perplexity();
  values[Metric::kTop1Accuracy] = corpus.top1_accuracy();
  values[Metric::kTokens] = static_cast<double>(corpus.tokens);
  values[Metric::kNll] = corpus.mean_nll();
}

void set_task_metrics(MetricValues& values, const McTotals& tasks) {
  if (tasks.tasks <= 0) return;
  values[Metric::kAcc] = tasks.acc();
  values[Metric::kAccNorm] = tasks.acc_norm();
  values[Metric::kTasks] = static_cast<double>(tasks.tasks);
}

void set_agreement_metrics(MetricValues& values, const AgreementTotals& agreement) {
  if (agreement.positions <= 0) return;
  values[Metric::kKl] = agreement.mean_kl();
  values[Metric::kTop1Agreement] = agreement.top1_agreement();
}

// Index of the largest value; the first on ties, as lm-eval's argmax.
size_t first_argmax(const std::vector<double>& values) {
  return static_cast<size_t>(std::max_element(values.begin(), values.end()) - values.begin());
}

ForwardOptions variant_options(const EvalVariant& variant, const EvalOptions& options) {
  ForwardOptions forward = forward_options(options.run);
  forward.keep = variant.keep;
  return forward;
}

}  // namespace

void McTotals::add(const McTotals& other) {
  tasks += other.tasks;
  correct += other.correct;
  correct_norm += other.correct_norm;
}

double McTotals::acc() const { return ratio(correct, tasks); }
double McTotals::acc_norm() const { return ratio(correct_norm, tasks); }

MetricSummary metric_summary(const EvalReport& report, bool with_agreement) {
  MetricSummary summary;
  set_corpus_metrics(summary.all, report.corpus);
  set_task_metrics(summary.all, report.tasks);
  if (with_agreement) set_agreement_metrics(summary.all, report.agreement);
  // A domain is listed once it has documents or tasks, even when none of them could be scored.
  for (const auto& [label, totals] : report.corpus_domains)
    set_corpus_metrics(summary.domains[label], totals);
  for (const auto& [label, totals] : report.task_domains)
    set_task_metrics(summary.domains[label], totals);
  if (with_agreement)
    for (const auto& [label, totals] : report.agreement_domains)
      set_agreement_metrics(summary.domains[label], totals);
  return summary;
}

namespace {

// One document's or task's scores under every variant: the unit the reports are summed from, in
// corpus order (documents, then tasks), whichever rank computed it.
struct ItemScores {
  std::string domain;
  std::vector<LmTotals> lm;                // a document: per variant
  std::vector<AgreementTotals> agreement;  // a document: per variant after the reference
  std::vector<McTotals> mc;                // a task: per variant
};

std::string pack(const std::vector<std::pair<int64_t, ItemScores>>& items) {
  BytePacker packer;
  packer.put<uint64_t>(items.size());
  for (const auto& [index, scores] : items) {
    packer.put<int64_t>(index);
    packer.put_string(scores.domain);
    packer.put_vector(scores.lm);
    packer.put_vector(scores.agreement);
    packer.put_vector(scores.mc);
  }
  return packer.take();
}

void unpack(const std::string& message, std::vector<ItemScores>& items) {
  ByteUnpacker reader(message);
  for (uint64_t n = reader.get<uint64_t>(); n > 0; --n) {
    ItemScores& scores = items.at(static_cast<size_t>(reader.get<int64_t>()));
    scores.domain = reader.get_string();
    scores.lm = reader.get_vector<LmTotals>();
    scores.agreement = reader.get_vector<AgreementTotals>();
    scores.mc = reader.get_vector<McTotals>();
  }
}

void add_scores(std::vector<EvalReport>& reports, const ItemScores& scores) {
  for (size_t v = 0; v < scores.lm.size(); ++v) {
    reports[v].corpus.add(scores.lm[v]);
    if (!scores.domain.empty()) reports[v].corpus_domains[scores.domain].add(scores.lm[v]);
    if (v == 0) continue;
    reports[v].agreement.add(scores.agreement[v - 1]);
    if (!scores.domain.empty())
      reports[v].agreement_domains[scores.domain].add(scores.agreement[v - 1]);
  }
  for (size_t v = 0; v < scores.mc.size(); ++v) {
    reports[v].tasks.add(scores.mc[v]);
    if (!scores.domain.empty()) reports[v].task_domains[scores.domain].add(scores.mc[v]);
  }
}

// A window waiting in the pool: its document and that document's entry in `mine`.
struct PendingWindow {
  size_t document = 0;
  size_t item = 0;
  Window window;
};

// Scores a pool of windows (in document order) for every variant: each variant's pass takes all
// of them through its layers at once (ForwardPass::run_layer_batch: the same bits as one window at
// a time, the experts' GEMMs shared), keeping only their hidden states; then window by window,
// every variant in turn, one window's logits per variant (each pass reuses its buffer) are scored.
void score_pool(std::span<const std::unique_ptr<ForwardPass>> passes,
                std::span<const EvalDocument> documents,
                std::vector<std::pair<int64_t, ItemScores>>& mine,
                std::span<const PendingWindow> pool) {
  if (pool.empty()) return;
  const auto document_of = [&](const PendingWindow& pending) -> const EvalDocument& {
    return documents[pending.document];
  };
  std::vector<std::vector<WindowState>> states(passes.size());
  for (size_t v = 0; v < passes.size(); ++v) {
    ForwardPass& pass = *passes[v];
    for (const PendingWindow& pending : pool)
      states[v].push_back(naming_document(document_of(pending).id, [&] {
        return pass.embed(document_of(pending).tokens, pending.window);
      }));
    std::vector<WindowState*> pointers;
    for (WindowState& state : states[v]) pointers.push_back(&state);
    for (int64_t l = 0; l <= pass.last_layer(); ++l) {
      pass.run_layer_batch(l, pointers);
      for (size_t w = 0; w < pool.size(); ++w)
        naming_document(document_of(pool[w]).id, [&] { pass.check_layer_output(l, states[v][w]); });
    }
  }
  for (size_t w = 0; w < pool.size(); ++w) {
    const EvalDocument& document = document_of(pool[w]);
    ItemScores& scores = mine[pool[w].item].second;
    kernels::ConstMatrixRef reference;
    for (size_t v = 0; v < passes.size(); ++v) {
      const kernels::ConstMatrixRef logits =
          naming_document(document.id, [&] { return passes[v]->logits_of(states[v][w]); });
      scores.lm[v].add(score_window(logits, document.tokens, pool[w].window));
      if (v == 0)
        reference = logits;
      else
        scores.agreement[v - 1].add(compare_window(reference, logits, pool[w].window));
    }
  }
}

}  // namespace

std::vector<EvalReport> evaluate_variants(std::span<const EvalVariant> variants,
                                          std::span<const EvalDocument> documents,
                                          std::span<const McItem> tasks,
                                          const EvalOptions& options) {
  const Cluster& cluster = *options.cluster;
  std::vector<std::unique_ptr<ForwardPass>> passes;
  for (const auto& variant : variants)
    passes.push_back(
        std::make_unique<ForwardPass>(*variant.model, variant_options(variant, options)));

  // This rank's items: documents first, then tasks, dealt by position.
  std::vector<std::pair<int64_t, ItemScores>> mine;
  std::vector<PendingWindow> pool;
  size_t pool_tokens = 0;
  for (size_t d = 0; d < documents.size(); ++d) {
    if (!cluster.owns(static_cast<int64_t>(d))) continue;
    const EvalDocument& document = documents[d];
    ItemScores& scores = mine.emplace_back(static_cast<int64_t>(d), ItemScores{}).second;
    scores.domain = document.domain;
    scores.lm.resize(variants.size());
    scores.agreement.resize(variants.size() - 1);
    for (const Window& window : passes[0]->windows_for(document.tokens.size())) {
      if (!pool.empty() && pool_tokens + window.length > ForwardPass::kPooledTokens) {
        score_pool(passes, documents, mine, pool);
        pool.clear();
        pool_tokens = 0;
      }
      pool.push_back({d, mine.size() - 1, window});
      pool_tokens += window.length;
    }
  }
  score_pool(passes, documents, mine, pool);
  for (size_t t = 0; t < tasks.size(); ++t) {
    const int64_t item = static_cast<int64_t>(documents.size() + t);
    if (!cluster.owns(item)) continue;
    const McItem& task = tasks[t];
    ItemScores scores;
    scores.domain = task.domain;
    for (size_t v = 0; v < variants.size(); ++v) {
      std::vector<double> log_likelihood, per_byte;
      for (size_t c = 0; c < task.choices.size(); ++c) {
        std::vector<int32_t> tokens = task.context;
        tokens.insert(tokens.end(), task.choices[c].begin(), task.choices[c].end());
        const DocumentResult result =
            naming_input("task " + task.id, [&] { return passes[v]->run(tokens); });
        const double ll =
            continuation_log_likelihood(result.logits, tokens, task.context.size(), tokens.size());
        log_likelihood.push_back(ll);
        per_byte.push_back(ll / static_cast<double>(std::max<size_t>(task.choice_bytes[c], 1)));
      }
      McTotals totals;
      totals.tasks = 1;
      totals.correct = first_argmax(log_likelihood) == task.answer ? 1 : 0;
      totals.correct_norm = first_argmax(per_byte) == task.answer ? 1 : 0;
      scores.mc.push_back(totals);
    }
    mine.emplace_back(item, std::move(scores));
  }

  // Summed in corpus order: the same additions, in the same order, on any number of ranks.
  std::vector<ItemScores> items(documents.size() + tasks.size());
  if (cluster.size() == 1)
    for (auto& [index, scores] : mine) items[static_cast<size_t>(index)] = std::move(scores);
  else
    for (const std::string& message : cluster.all_gather(pack(mine))) unpack(message, items);
  std::vector<EvalReport> reports(variants.size());
  for (const ItemScores& scores : items) add_scores(reports, scores);

  if (!reports.empty() && reports.front().corpus.tokens <= 0 && reports.front().tasks.tasks <= 0)
    throw InputError(fmt::format(
        "nothing could be scored: {} document(s) and no multiple-choice task gave no token to "
        "predict (a token is scored only after another in the same window: one-token documents "
        "or --max-seq 1 score nothing)",
        documents.size()));
  return reports;
}

}  // namespace moeslice
