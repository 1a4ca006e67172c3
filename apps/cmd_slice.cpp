// `moeslice slice`: write a standalone checkpoint with only the experts a plan keeps.
#include <fmt/format.h>

#include "checkpoint_output_flags.h"
#include "command_io.h"
#include "commands.h"
#include "format/byte_size.h"
#include "format/gguf/format.h"
#include "format/gguf/model.h"
#include "format/json_file.h"
#include "slice/gguf_slicer.h"
#include "slice/slicer.h"

namespace moeslice::app {
namespace {

// `slice` of a GGUF file: a GGUF holding the kept experts, llama.cpp's counts rewritten.
void slice_gguf_file(const std::string& model_path, const std::string& plan_path,
                     const std::string& out, const GgufSliceOptions& options) {
  const auto model = GgufModel::open(model_path);
  const GgufSliceReport report =
      slice_gguf(*model, read_json_file(plan_path), plan_path, out, options);
  fmt::print(
      "wrote {}{}: {} of {} experts per layer, {} of {} per token; {} -> {} ({:.1f}%); {} "
      "tensors cut along the expert axis, {} copied\n",
      out,
      report.files.size() > 1 ? fmt::format(" in {} parts", report.files.size()) : std::string(),
      report.experts_after, report.experts_before, report.used_after, report.used_before,
      format_byte_size(report.bytes_before), format_byte_size(report.bytes_after),
      100.0 * static_cast<double>(report.bytes_after) / static_cast<double>(report.bytes_before),
      report.tensors_cut, report.tensors_copied);
  if (report.verified)
    fmt::print("verified: the output reads back and every tensor equals its source bytes\n");
}

}  // namespace

void add_slice_command(CLI::App& app) {
  struct Options {
    std::string model, plan, out;
    CheckpointOutputFlags output;
    bool no_verify = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "slice", "Write a smaller checkpoint holding only the experts a plan keeps");
  command->add_option("--model", options->model, "Full checkpoint directory or GGUF file")
      ->required();
  command->add_option("--plan", options->plan, "Plan JSON with experts_kept_per_layer")->required();
  command->add_option("--out", options->out, "Output directory (a .gguf file for a GGUF model)")
      ->required();
  add_checkpoint_output_flags(*command, options->output);
  command->add_flag("--no-verify", options->no_verify,
                    "Skip checking each sliced layer against the restricted full layer");
  command->callback([options, command] {
    CommandIo io;
    io.checkpoint(options->model).file(options->plan, "--plan");
    io.output(options->out, options->output.force);
    if (gguf_format().claims(options->model)) {
      GgufSliceOptions gguf_options;
      if (command->get_option("--max-shard-size")->count() > 0)
        gguf_options.max_part_bytes = options->output.max_shard_bytes();
      gguf_options.overwrite = options->output.force;
      gguf_options.verify = !options->no_verify;
      slice_gguf_file(options->model, options->plan, options->out, gguf_options);
      return;
    }
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
    if (report.mtp_layers_dropped > 0)
      fmt::print(
          "dropped the multi-token-prediction layer(s) ({} layer(s), {} tensors): the slice "
          "says num_nextn_predict_layers 0\n",
          report.mtp_layers_dropped, report.mtp_tensors_dropped);
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
