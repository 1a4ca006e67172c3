// `moeslice unslice`: put a (fine-tuned) sliced model's experts back into the full model.
#include <fmt/core.h>

#include "checkpoint_output_flags.h"
#include "command_io.h"
#include "commands.h"
#include "format/byte_size.h"
#include "slice/unslicer.h"

namespace moeslice::app {

void add_unslice_command(CLI::App& app) {
  struct Options {
    std::string model, sliced, out;
    CheckpointOutputFlags output;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "unslice", "Put a sliced model's experts back into the full model, by pruning_metadata.json");
  command->add_option("--model", options->model, "Full checkpoint directory")->required();
  command->add_option("--sliced", options->sliced, "Sliced checkpoint directory")->required();
  command->add_option("--out", options->out, "Output directory")->required();
  add_checkpoint_output_flags(*command, options->output);
  command->callback([options] {
    CommandIo()
        .checkpoint(options->model)
        .checkpoint(options->sliced)
        .output(options->out, options->output.force);
    const Model full = open_model(options->model);
    const Model sliced = open_model(options->sliced);
    const UnsliceReport report = unslice_checkpoint(
        full, sliced, options->out, options->output.max_shard_bytes(), options->output.force);
    fmt::print(
        "wrote {} ({}): {} tensors from the sliced model, {} from the full model, {} "
        "merged by rows\n",
        options->out, format_byte_size(report.bytes), report.tensors_from_sliced,
        report.tensors_from_full, report.tensors_merged);
  });
}

}  // namespace moeslice::app
