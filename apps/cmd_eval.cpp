// `moeslice eval`: perplexity and next-token accuracy on a corpus, accuracy on multiple-choice
// tasks, for the full model or the full model restricted by a keep plan.
#include <fmt/core.h>

#include "commands.h"
#include "common/atomic_output.h"
#include "common/error.h"
#include "eval/comparison.h"
#include "eval_inputs.h"
#include "run_flags.h"

namespace moeslice::app {
namespace {

void print_report(const nlohmann::json& report) {
  auto line = [](const std::string& label, const nlohmann::json& m) {
    std::string text = fmt::format("{:<16}", label);
    if (m.contains("perplexity"))
      text +=
          fmt::format(" perplexity {:.4f}  top1 {:.4f}  tokens {}", m["perplexity"].get<double>(),
                      m["top1_accuracy"].get<double>(), m["tokens"].get<int64_t>());
    if (m.contains("acc"))
      text += fmt::format("  acc {:.4f}  acc_norm {:.4f}  tasks {}", m["acc"].get<double>(),
                          m["acc_norm"].get<double>(), m["tasks"].get<int64_t>());
    fmt::print("{}\n", text);
  };
  line("all", report);
  for (const auto& [domain, metrics] : report["domains"].items()) line(domain, metrics);
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
  command->add_option("--model", options->model, "Checkpoint directory")->required();
  add_corpus_flags(*command, options->corpus, /*corpus_required=*/false);
  command->add_option("--tasks", options->tasks,
                      "Multiple-choice tasks, JSON Lines {\"context\", \"choices\", \"answer\"}");
  command->add_option("--keep", options->keep, "Evaluate with routing restricted to a plan");
  command->add_option("--json", options->json, "Also write the results as JSON");
  add_run_flags(*command, options->run);
  command->add_flag("--force", options->force, "Replace an existing --json file");
  command->callback([options] {
    std::vector<std::filesystem::path> inputs = corpus_inputs(options->corpus);
    inputs.emplace_back(options->model);
    if (!options->tasks.empty()) inputs.emplace_back(options->tasks);
    if (!options->json.empty()) {
      check_output_outside_inputs(options->json, inputs);
      if (!options->force && std::filesystem::exists(options->json))
        throw InputError(
            fmt::format("output {} already exists (use --force to replace it)", options->json));
    }
    const Model model = open_model(options->model);
    const EvalInputs data = read_eval_inputs(options->corpus, options->tasks, model);
    EvalVariant variant{"model", &model, std::nullopt};
    if (!options->keep.empty()) variant.keep = read_keep_plan(options->keep, model.spec);
    const std::vector<EvalVariant> variants = {variant};
    const auto reports =
        evaluate_variants(variants, data.documents, data.tasks, EvalOptions{options->run});
    const nlohmann::json report = eval_report_json(reports[0], false);
    print_report(report);
    if (!options->json.empty())
      write_file_atomically(options->json, report.dump(2) + "\n", options->force);
  });
}

}  // namespace moeslice::app
