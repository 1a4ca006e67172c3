// `moeslice eval`: perplexity and next-token accuracy on a corpus, accuracy on multiple-choice
// tasks, for the full model or the full model restricted by a keep plan.
#include <fmt/core.h>

#include "command_io.h"
#include "commands.h"
#include "common/atomic_output.h"
#include "eval/evaluator.h"
#include "eval/metric_summary.h"
#include "eval_inputs.h"
#include "mpi_cluster.h"
#include "run_flags.h"

namespace moeslice::app {
namespace {

void print_summary(const MetricSummary& summary) {
  // metric_summary() sets a group's metrics together: all of perplexity, top-1 and tokens, or
  // none; all of acc, acc_norm and tasks, or none.
  auto line = [](const std::string& label, const MetricValues& m) {
    std::string text = fmt::format("{:<16}", label);
    if (m[Metric::kPerplexity])
      text += fmt::format(" perplexity {:.4f}  top1 {:.4f}  tokens {}", *m[Metric::kPerplexity],
                          m[Metric::kTop1Accuracy].value_or(0),
                          static_cast<int64_t>(m[Metric::kTokens].value_or(0)));
    if (m[Metric::kAcc])
      text += fmt::format("  acc {:.4f}  acc_norm {:.4f}  tasks {}", *m[Metric::kAcc],
                          m[Metric::kAccNorm].value_or(0),
                          static_cast<int64_t>(m[Metric::kTasks].value_or(0)));
    fmt::print("{}\n", text);
  };
  line("all", summary.all);
  for (const auto& [domain, metrics] : summary.domains) line(domain, metrics);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  struct Options {
    std::string model, tasks, keep, json;
    CorpusFlags corpus;
    RunSettings run;
    bool force = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "eval", "Perplexity, next-token accuracy and multiple-choice accuracy of a model or a plan");
  command->add_option("--model", options->model, "Checkpoint directory or GGUF file")->required();
  add_corpus_flags(*command, options->corpus, /*corpus_required=*/false);
  command->add_option("--tasks", options->tasks,
                      "Multiple-choice tasks, JSON Lines {\"context\", \"choices\", \"answer\"}");
  command->add_option("--keep", options->keep, "Evaluate with routing restricted to a plan");
  command->add_option("--json", options->json, "Also write the results as JSON");
  add_run_flags(*command, options->run);
  command->add_flag("--force", options->force, "Replace an existing --json file");
  command->callback([options] {
    require_shared_corpus(options->corpus.corpus);
    CommandIo io;
    io.checkpoint(options->model).corpus(options->corpus).file(options->tasks, "--tasks");
    io.file(options->keep, "--keep");
    if (!options->json.empty()) io.output(options->json, options->force);
    const Model model = open_model(options->model);
    const EvalInputs data = read_eval_inputs(options->corpus, options->tasks, model);
    EvalVariant variant{"model", &model, std::nullopt};
    if (!options->keep.empty()) variant.keep = read_keep_plan(options->keep, model.spec);
    const std::vector<EvalVariant> variants = {variant};
    const auto reports =
        evaluate_variants(variants, data.documents, data.tasks, EvalOptions{options->run, &job()});
    const MetricSummary summary = metric_summary(reports[0], /*with_agreement=*/false);
    model.checkpoint->check_unchanged();  // one version of the model throughout
    if (!job().is_root()) return;         // every rank has the results; rank 0 reports them
    print_summary(summary);
    if (!options->json.empty()) write_metric_summary_file(options->json, summary, options->force);
  });
}

}  // namespace moeslice::app
