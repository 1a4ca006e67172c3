// Running variants over documents and tasks and accumulating their metrics.
#include "eval/evaluator.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moeslice {
namespace {

double ratio(int64_t part, int64_t whole) {
  return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

nlohmann::json totals_json(const LmTotals* corpus, const McTotals* tasks,
                           const AgreementTotals* agreement) {
  nlohmann::json out = nlohmann::json::object();
  if (corpus != nullptr && corpus->tokens > 0) {
    out["perplexity"] = corpus->perplexity();
    out["top1_accuracy"] = corpus->top1_accuracy();
    out["tokens"] = corpus->tokens;
    out["nll"] = corpus->mean_nll();
  }
  if (tasks != nullptr && tasks->tasks > 0) {
    out["acc"] = tasks->acc();
    out["acc_norm"] = tasks->acc_norm();
    out["tasks"] = tasks->tasks;
  }
  if (agreement != nullptr && agreement->positions > 0) {
    out["kl"] = agreement->mean_kl();
    out["top1_agreement"] = agreement->top1_agreement();
  }
  return out;
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

nlohmann::json eval_report_json(const EvalReport& report, bool with_agreement) {
  nlohmann::json out =
      totals_json(&report.corpus, &report.tasks, with_agreement ? &report.agreement : nullptr);
  nlohmann::json domains = nlohmann::json::object();
  auto domain_entry = [&](const std::string& label) -> nlohmann::json& {
    if (!domains.contains(label)) domains[label] = nlohmann::json::object();
    return domains[label];
  };
  for (const auto& [label, totals] : report.corpus_domains)
    domain_entry(label).update(totals_json(&totals, nullptr, nullptr));
  for (const auto& [label, totals] : report.task_domains)
    domain_entry(label).update(totals_json(nullptr, &totals, nullptr));
  if (with_agreement)
    for (const auto& [label, totals] : report.agreement_domains)
      domain_entry(label).update(totals_json(nullptr, nullptr, &totals));
  out["domains"] = domains;
  return out;
}

std::vector<EvalReport> evaluate_variants(std::span<const EvalVariant> variants,
                                          std::span<const EvalDocument> documents,
                                          std::span<const McItem> tasks,
                                          const EvalOptions& options) {
  std::vector<std::unique_ptr<ForwardPass>> passes;
  for (const auto& variant : variants)
    passes.push_back(
        std::make_unique<ForwardPass>(*variant.model, variant_options(variant, options)));
  std::vector<EvalReport> reports(variants.size());

  for (const EvalDocument& document : documents) {
    DocumentResult reference;
    for (size_t v = 0; v < variants.size(); ++v) {
      DocumentResult result = passes[v]->run(document.tokens);
      const LmTotals totals = score_document(result.logits, document.tokens, result.windows);
      reports[v].corpus.add(totals);
      if (!document.domain.empty()) reports[v].corpus_domains[document.domain].add(totals);
      if (v == 0) {
        reference = std::move(result);
        continue;
      }
      const AgreementTotals agreement =
          compare_logits(reference.logits, result.logits, result.windows);
      reports[v].agreement.add(agreement);
      if (!document.domain.empty()) reports[v].agreement_domains[document.domain].add(agreement);
    }
  }

  for (const McItem& task : tasks) {
    for (size_t v = 0; v < variants.size(); ++v) {
      std::vector<double> log_likelihood, per_byte;
      for (size_t c = 0; c < task.choices.size(); ++c) {
        std::vector<int32_t> tokens = task.context;
        tokens.insert(tokens.end(), task.choices[c].begin(), task.choices[c].end());
        const DocumentResult result = passes[v]->run(tokens);
        const double ll =
            continuation_log_likelihood(result.logits, tokens, task.context.size(), tokens.size());
        log_likelihood.push_back(ll);
        per_byte.push_back(ll / static_cast<double>(std::max<size_t>(task.choice_bytes[c], 1)));
      }
      McTotals totals;
      totals.tasks = 1;
      totals.correct = first_argmax(log_likelihood) == task.answer ? 1 : 0;
      totals.correct_norm = first_argmax(per_byte) == task.answer ? 1 : 0;
      reports[v].tasks.add(totals);
      if (!task.domain.empty()) reports[v].task_domains[task.domain].add(totals);
    }
  }
  return reports;
}

}  // namespace moeslice
