// `moeslice make-random`: a random checkpoint of any family, for tests, trials and benchmarks.
#include <fmt/core.h>

#include "checkpoint_output_flags.h"
#include "command_io.h"
#include "commands.h"
#include "common/error.h"
#include "common/excerpt.h"
#include "common/json_parse.h"
#include "format/byte_size.h"
#include "model/family_profile.h"
#include "model/random_checkpoint.h"

namespace moeslice::app {

void add_make_random_command(CLI::App& app) {
  struct Options {
    RandomModelOptions model;
    std::string out;
    std::string dtype = "f32";
    CheckpointOutputFlags output;
    std::vector<std::string> settings;
    std::map<Dim, int64_t> dims;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "make-random", "Write a random checkpoint of any family in the Hugging Face layout");
  command->add_option("--family", options->model.family, "Family: " + known_family_names())
      ->required();
  command->add_option("--out", options->out, "Output directory (must not exist)")->required();
  const std::vector<std::pair<Dim, std::string>> sizes = {
      {Dim::kLayers, "Decoder layers (2)"},
      {Dim::kHidden, "Hidden size (64)"},
      {Dim::kExperts, "Experts per layer, shared ones included (8)"},
      {Dim::kTopK, "Experts per token (2)"},
      {Dim::kExpertWidth, "Width of one expert's MLP (32)"},
      {Dim::kVocab, "Vocabulary size (256)"},
      {Dim::kHeads, "Attention heads (4)"},
      {Dim::kKvHeads, "Key/value heads (2)"}};
  for (const auto& [dim, help] : sizes) {
    std::string flag(name(dim));  // --top-k for top_k
    std::replace(flag.begin(), flag.end(), '_', '-');
    command->add_option_function<int64_t>(
        "--" + flag, [options, dim = dim](const int64_t& value) { options->dims[dim] = value; },
        help);
  }
  command
      ->add_option("--dtype", options->dtype,
                   "Weight dtype: f32, bf16 or f16; mxfp4: fused experts (gpt_oss) as MXFP4 "
                   "blocks and scales, the rest bf16, as released; fp8: Linear weights as "
                   "F8_E4M3 with 128x128 block scales, the rest bf16, as DeepSeek-V3 ships")
      ->check(CLI::IsMember({"f32", "bf16", "f16", "mxfp4", "fp8"}));
  command->add_option("--seed", options->model.seed, "Random seed (0)");
  add_checkpoint_output_flags(*command, options->output);
  command->add_option("--set", options->settings,
                      "Extra config key as KEY=JSON, e.g. --set 'mlp_only_layers=[0]'");
  command->callback([options] {
    CommandIo().output(options->out, options->output.force);
    RandomModelOptions model = options->model;
    model.dims = options->dims;
    model.mxfp4_experts = options->dtype == "mxfp4";
    model.dtype = options->dtype == "bf16" || model.mxfp4_experts ? DType::BF16
                  : options->dtype == "f16"                       ? DType::F16
                  : options->dtype == "fp8"                       ? DType::F8_E4M3
                                                                  : DType::F32;
    model.max_shard_bytes = options->output.max_shard_bytes();
    model.overwrite = options->output.force;
    for (const auto& setting : options->settings) {
      const auto equals = setting.find('=');
      if (equals == std::string::npos || equals == 0)
        throw InputError(fmt::format("--set '{}': expected KEY=JSON", excerpt(setting)));
      const std::string key = setting.substr(0, equals);
      try {
        model.config_overrides[key] =
            parse_json(std::string_view(setting).substr(equals + 1), "--set " + excerpt(key));
      } catch (const JsonSyntaxError&) {
        throw InputError(
            fmt::format("--set '{}': the value is not JSON (quote strings: "
                        "KEY='\"text\"')",
                        excerpt(setting)));
      }
    }
    const uint64_t bytes = write_random_checkpoint(model, options->out);
    fmt::print("wrote {} ({} checkpoint, {} of tensors)\n", options->out, model.family,
               format_byte_size(bytes));
  });
}

}  // namespace moeslice::app
