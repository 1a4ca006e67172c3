// `moeslice inspect`: what is inside a checkpoint directory or a GGUF file, as a table or JSON.
#include <fmt/core.h>

#include "commands.h"
#include "common/json_parse.h"
#include "format/gguf/format.h"
#include "format/gguf/summary.h"
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
  command
      ->add_option("--model", options->model,
                   "Checkpoint directory (config.json + safetensors) or GGUF file")
      ->required();
  command->add_flag("--json", options->json, "Print JSON for scripts instead of a table");
  command->callback([options] {
    if (gguf_format().claims(options->model)) {
      const GgufSummary summary = summarize_gguf(*GgufModel::open(options->model));
      if (options->json)
        fmt::print("{}\n", dump_json(gguf_summary_to_json(summary), 2));
      else
        fmt::print("{}", gguf_summary_to_text(summary));
      return;
    }
    const Model model = open_model(options->model);
    const ModelSummary summary = summarize_model(model);
    if (options->json)
      fmt::print("{}\n", dump_json(summary_to_json(summary), 2));
    else
      fmt::print("{}", summary_to_text(summary));
  });
}

}  // namespace moeslice::app
