// `moeslice slice`: write a standalone checkpoint with only the experts a plan keeps.
#include <fmt/format.h>

#include "checkpoint_output_flags.h"
#include "command_io.h"
#include "commands.h"
#include "format/byte_size.h"
#include "format/json_file.h"
#include "slice/slicer.h"

namespace moeslice::app {

void add_slice_command(CLI::App& app) {
  struct Options {
    std::string model, plan, out;
    CheckpointOutputFlags output;
    bool no_verify = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "slice", "Write a smaller checkpoint holding only the experts a plan keeps");
  command->add_option("--model", options->model, "Full checkpoint directory")->required();
  command->add_option("--plan", options->plan, "Plan JSON with experts_kept_per_layer")->required();
  command->add_option("--out", options->out, "Output directory")->required();
  add_checkpoint_output_flags(*command, options->output);
  command->add_flag("--no-verify", options->no_verify,
                    "Skip checking each sliced layer against the restricted full layer");
  command->callback([options] {
    CommandIo io;
    io.checkpoint(options->model).file(options->plan, "--plan");
    io.output(options->out, options->output.force);
    const Model model = open_model(options->model);
    const nlohmann::json plan_document = read_json_file(options->plan);
    const KeepPlan plan = parse_keep_plan(plan_document, model.spec, options->plan);
    SliceOptions slice_options;
    slice_options.max_shard_bytes = options->output.max_shard_bytes();
    slice_options.overwrite = options->output.force;
    slice_options.verify = !options->no_verify;
    const SliceReport report =
        slice_checkpoint(model, plan, plan_document, options->out, slice_options);
    const std::string kept =
        report.experts_after_each_layer.empty()
            ? std::to_string(report.experts_after)
            : fmt::format("[{}]", fmt::join(report.experts_after_each_layer, ","));
    fmt::print(
        "wrote {}: {} of {} experts per layer, {} per token; {} -> {} ({:.1f}%)\n", options->out,
        kept, report.experts_before, report.experts_per_token_after,
        format_byte_size(report.bytes_before), format_byte_size(report.bytes_after),
        100.0 * static_cast<double>(report.bytes_after) / static_cast<double>(report.bytes_before));
    if (report.verify_max_relative_error >= 0)
      fmt::print(
          "verified: sliced layers equal the restricted full layers (max relative "
          "difference {:.2g})\n",
          report.verify_max_relative_error);
    else if (!options->no_verify)
      fmt::print("not verified: the forward pass does not support the {} family\n",
                 model.spec.family->family);
  });
}

}  // namespace moeslice::app
