// `moeslice compare`: the full model and its slices (keep plans or sliced checkpoints) side by
// side in one run that shares the full model's pass: size, metrics, their change, KL divergence
// and top-1 agreement.
#include <fmt/core.h>

#include "command_io.h"
#include "commands.h"
#include "common/atomic_output.h"
#include "common/error.h"
#include "eval/comparison.h"
#include "eval_inputs.h"
#include "mpi_cluster.h"
#include "run_flags.h"

namespace moeslice::app {

void add_compare_command(CLI::App& app) {
  struct Options {
    std::string model, tasks, json;
    std::vector<std::string> plans, sliced;
    CorpusFlags corpus;
    RunSettings run;
    bool force = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "compare", "Full model and its slices side by side: size, metrics, KL, top-1 agreement");
  command->add_option("--model", options->model, "Full checkpoint directory or GGUF file")
      ->required();
  command->add_option("--plan", options->plans, "Keep plans to evaluate (repeatable)");
  command->add_option("--sliced", options->sliced, "Sliced checkpoints to evaluate (repeatable)");
  add_corpus_flags(*command, options->corpus, /*corpus_required=*/false);
  command->add_option("--tasks", options->tasks, "Multiple-choice tasks (JSON Lines)");
  command->add_option("--json", options->json, "Also write the comparison as JSON");
  add_run_flags(*command, options->run);
  command->add_flag("--force", options->force, "Replace an existing --json file");
  command->callback([options] {
    if (options->plans.empty() && options->sliced.empty())
      throw InputError("compare needs at least one --plan or --sliced");
    require_shared_corpus(options->corpus.corpus);
    CommandIo io;
    io.checkpoint(options->model).corpus(options->corpus).file(options->tasks, "--tasks");
    io.files(options->plans, "--plan");
    for (const auto& path : options->sliced) io.checkpoint(path);
    if (!options->json.empty()) io.output(options->json, options->force);
    const Model full = open_model(options->model);
    std::vector<Model> sliced_models;
    sliced_models.reserve(options->sliced.size());
    for (const auto& path : options->sliced) {
      sliced_models.push_back(open_model(path));
      if (sliced_models.back().spec.family != full.spec.family)
        throw InputError(fmt::format("{} is a {} model but {} is {}", path,
                                     sliced_models.back().spec.family->family, options->model,
                                     full.spec.family->family));
    }
    const EvalInputs data = read_eval_inputs(options->corpus, options->tasks, full);
    std::vector<EvalVariant> variants = {{"full", &full, std::nullopt}};
    std::vector<VariantInfo> infos = {describe_full_model(full)};
    for (const auto& path : options->plans) {
      KeepPlan plan = read_keep_plan(path, full.spec);
      infos.push_back(describe_plan(full, plan, path));
      variants.push_back({path, &full, std::move(plan)});
    }
    for (size_t i = 0; i < sliced_models.size(); ++i) {
      infos.push_back(describe_sliced_model(sliced_models[i], full, options->sliced[i]));
      variants.push_back({options->sliced[i], &sliced_models[i], std::nullopt});
    }
    make_labels_unique(infos);
    const auto reports =
        evaluate_variants(variants, data.documents, data.tasks, EvalOptions{options->run, &job()});
    // One version of every model throughout.
    full.checkpoint->check_unchanged();
    for (const Model& sliced : sliced_models) sliced.checkpoint->check_unchanged();
    const ComparisonDocument comparison = build_comparison(
        normalized_absolute_path(options->model),
        options->corpus.corpus.empty() ? "" : normalized_absolute_path(options->corpus.corpus),
        options->tasks.empty() ? "" : normalized_absolute_path(options->tasks), infos, reports);
    if (!job().is_root()) return;  // every rank has the results; rank 0 reports them
    fmt::print("{}", comparison_table(comparison));
    if (!options->json.empty()) write_comparison_file(options->json, comparison, options->force);
  });
}

}  // namespace moeslice::app
