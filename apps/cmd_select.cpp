// `moeslice select`: EMO's greedy layer-wise expert selection over a calibration corpus.
#include <unistd.h>

#include <cstdio>

#include <fmt/core.h>

#include "command_io.h"
#include "commands.h"
#include "common/atomic_output.h"
#include "common/error.h"
#include "corpus_options.h"
#include "mpi_cluster.h"
#include "rank/layerwise_select.h"
#include "rank/plan_file.h"
#include "run_flags.h"

namespace moeslice::app {

void add_select_command(CLI::App& app) {
  struct Options {
    std::string model, keep, metric = "mass", out, usage_out;
    CorpusFlags corpus;
    RunSettings run;
    bool per_document = false, no_group_balance = false, force = false, quiet = false;
    uint64_t seed = 0;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command =
      app.add_subcommand("select",
                         "Choose experts layer by layer, each layer measured with the earlier ones "
                         "already restricted (EMO's greedy selection)");
  command->add_option("--model", options->model, "Checkpoint directory or GGUF file")->required();
  add_corpus_flags(*command, options->corpus);
  command
      ->add_option("--keep", options->keep,
                   "Experts kept per layer, shared ones included: P% or a count K")
      ->required();
  command->add_option("--metric", options->metric, "mass, freq, reap, coverage or random")
      ->capture_default_str();
  command->add_option("--out", options->out, "Output plan (.json)")->required();
  command->add_option("--usage-out", options->usage_out,
                      "Also write the statistics measured per layer as a usage profile");
  add_run_flags(*command, options->run);
  command->add_flag("--per-document", options->per_document,
                    "Weigh every document equally (default: every token)");
  command->add_flag(
      "--no-group-balance", options->no_group_balance,
      "With group-limited routing (n_group > 1), keep the best experts of the layer instead of the "
      "same number in every group (the plan can be evaluated with --keep, not sliced)");
  command->add_option("--seed", options->seed, "Seed of the random metric")->capture_default_str();
  command->add_flag("--quiet", options->quiet, "No progress line");
  command->add_flag("--force", options->force, "Replace existing output files");
  command->callback([options] {
    require_shared_corpus(options->corpus.corpus);
    CommandIo io;
    io.checkpoint(options->model).corpus(options->corpus);
    std::vector<std::string> outputs = {options->out};
    if (!options->usage_out.empty()) outputs.push_back(options->usage_out);
    for (const std::string& out : outputs) io.output(out, options->force);
    if (outputs.size() == 2 &&
        normalized_absolute_path(outputs[0]) == normalized_absolute_path(outputs[1]))
      throw InputError("--out and --usage-out name the same file");
    SelectOptions select;
    select.rank.metric = parse_rank_metric(options->metric);
    select.rank.keep = parse_keep_amount(options->keep);
    select.rank.weighting = options->per_document ? Weighting::kDocument : Weighting::kToken;
    select.rank.seed = options->seed;
    select.rank.balance_groups = !options->no_group_balance;
    select.run = options->run;
    select.usage_output_norms = !options->usage_out.empty();
    select.cluster = &job();
    const bool progress = !options->quiet && job().is_root() && ::isatty(::fileno(stderr));
    select.progress = [progress](int64_t done, int64_t total) {
      if (!progress) return;
      fmt::print(stderr, "\rMoE layers chosen {}/{}   ", done, total);
      if (done == total) fmt::print(stderr, "\n");
    };
    const Model model = open_model(options->model);
    CorpusStats stats;
    const std::vector<CorpusDocument> documents =
        read_corpus(options->corpus.corpus,
                    corpus_options(options->corpus, options->model, model.spec.vocab), &stats);
    if (job().is_root()) print_corpus_warnings(options->corpus, stats);
    SelectResult result = select_experts(model, documents, select);
    const std::string corpus =
        options->corpus.corpus == "-" ? "-" : normalized_absolute_path(options->corpus.corpus);
    result.plan.source["corpus"] = corpus;
    result.usage.info["sources"] =
        nlohmann::json::array({{{"corpus", corpus}, {"documents", documents.size()}}});
    if (job().size() > 1) result.usage.info["sources"][0]["ranks"] = job().size();
    model.checkpoint->check_unchanged();  // one version of the model throughout
    if (!job().is_root()) return;         // every rank chose the same plan; rank 0 writes it
    if (!options->usage_out.empty())
      write_usage_profile(options->usage_out, result.usage, options->force);
    write_plan_file(options->out, result.plan, options->force);
    fmt::print("wrote {}: {}\n", options->out, plan_summary(result.plan));
  });
}

}  // namespace moeslice::app
