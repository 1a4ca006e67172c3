// `moeslice rank`: a keep plan from a usage profile (metric, keep amount, weighting, domain,
// uniform or global budget).
#include <cstdio>

#include <fmt/core.h>

#include "command_io.h"
#include "commands.h"
#include "common/atomic_output.h"
#include "rank/expert_ranking.h"
#include "rank/plan_file.h"

namespace moeslice::app {

void add_rank_command(CLI::App& app) {
  struct Options {
    std::string usage, keep, metric = "mass", out, domain;
    bool per_document = false, nonuniform = false, no_group_balance = false, force = false;
    uint64_t seed = 0;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command =
      app.add_subcommand("rank", "Choose the experts to keep per layer from a usage profile");
  command->add_option("--usage", options->usage, "Usage profile (moeslice profile output)")
      ->required();
  command
      ->add_option("--keep", options->keep,
                   "Experts kept per layer, shared ones included: P% of the experts "
                   "(rounded) or a count K")
      ->required();
  command
      ->add_option("--metric", options->metric,
                   "mass (router probability mass), freq (top-k counts), reap (mean gate x "
                   "output norm), coverage (share of documents), random")
      ->capture_default_str();
  command->add_option("--out", options->out, "Output plan (.json)")->required();
  command->add_flag("--per-document", options->per_document,
                    "Weigh every document equally (default: every token)");
  command->add_option("--domain", options->domain, "Rank on the documents of one domain label");
  command->add_flag("--nonuniform", options->nonuniform,
                    "Spend K x MoE layers over the layers by score share (standard loaders "
                    "cannot load the result)");
  command->add_flag(
      "--no-group-balance", options->no_group_balance,
      "With group-limited routing (n_group > 1), keep the best experts of the layer instead of the "
      "same number in every group (the plan can be evaluated with --keep, not sliced)");
  command->add_option("--seed", options->seed, "Seed of the random metric")->capture_default_str();
  command->add_flag("--force", options->force, "Replace an existing output file");
  command->callback([options] {
    CommandIo io;
    io.file(options->usage, "--usage").output(options->out, options->force);
    RankOptions rank;
    rank.metric = parse_rank_metric(options->metric);
    rank.keep = parse_keep_amount(options->keep);
    rank.weighting = options->per_document ? Weighting::kDocument : Weighting::kToken;
    if (!options->domain.empty()) rank.domain = options->domain;
    rank.nonuniform = options->nonuniform;
    rank.balance_groups = !options->no_group_balance;
    rank.seed = options->seed;
    const UsageProfile usage = read_usage_profile(options->usage);
    RankedPlan plan = rank_experts(usage, rank, options->usage);
    plan.source = {{"usage", normalized_absolute_path(options->usage)},
                   {"max_seq", usage.info.value("max_seq", nlohmann::json())},
                   {"profile_keep_plan", usage.info.value("keep_plan", nlohmann::json())}};
    if (options->nonuniform)
      fmt::print(stderr,
                 "moeslice: warning: --nonuniform keeps different expert counts per layer; "
                 "transformers, vLLM and llama.cpp cannot load such a slice (moeslice slice "
                 "writes one only for the emo family, as num_experts_per_layer, which EMO's own "
                 "modeling code reads)\n");
    write_plan_file(options->out, plan, options->force);
    fmt::print("wrote {}: {}\n", options->out, plan_summary(plan));
  });
}

}  // namespace moeslice::app
