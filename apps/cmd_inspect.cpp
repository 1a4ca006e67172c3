// `moeslice inspect`: what is inside a checkpoint directory, as a table or JSON.
#include <fmt/core.h>

#include "commands.h"
#include "model/model_summary.h"

namespace moeslice::app {

void add_inspect_command(CLI::App& app) {
  struct Options {
    std::string model;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "inspect", "Show a checkpoint's family, layers, experts, parameters, dtypes and shards");
  command->add_option("--model", options->model, "Checkpoint directory (config.json + safetensors)")
      ->required();
  command->add_flag("--json", options->json, "Print JSON for scripts instead of a table");
  command->callback([options] {
    const Model model = open_model(options->model);
    const ModelSummary summary = summarize_model(model);
    if (options->json)
      fmt::print("{}\n", summary_to_json(summary).dump(2));
    else
      fmt::print("{}", summary_to_text(summary));
  });
}

}  // namespace moeslice::app
