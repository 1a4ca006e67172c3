// `moeslice unslice`: put a (fine-tuned) sliced model's experts back into the full model.
#include <fmt/core.h>

#include "checkpoint_output_flags.h"
#include "command_io.h"
#include "commands.h"
#include "format/byte_size.h"
#include "format/gguf/format.h"
#include "format/gguf/model.h"
#include "slice/gguf_slicer.h"
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
  command->add_option("--model", options->model, "Full checkpoint directory or GGUF file")
      ->required();
  command->add_option("--sliced", options->sliced, "Sliced checkpoint directory or GGUF file")
      ->required();
  command->add_option("--out", options->out, "Output directory (a .gguf file for GGUF models)")
      ->required();
  add_checkpoint_output_flags(*command, options->output);
  command->callback([options, command] {
    CommandIo()
        .checkpoint(options->model)
        .checkpoint(options->sliced)
        .output(options->out, options->output.force);
    if (gguf_format().claims(options->model)) {
      GgufSliceOptions gguf_options;
      if (command->get_option("--max-shard-size")->count() > 0)
        gguf_options.max_part_bytes = options->output.max_shard_bytes();
      gguf_options.overwrite = options->output.force;
      const GgufUnsliceReport report =
          unslice_gguf(*GgufModel::open(options->model), *GgufModel::open(options->sliced),
                       options->out, gguf_options);
      fmt::print(
          "wrote {} ({}): {} tensors from the sliced model, {} from the full model, {} "
          "merged by rows\n",
          options->out, format_byte_size(report.bytes), report.tensors_from_sliced,
          report.tensors_from_full, report.tensors_merged);
      return;
    }
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
