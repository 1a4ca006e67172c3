// `moeslice report`: one self-contained HTML page (inline CSS and SVG) from a usage profile, the
// keep plans and a `moeslice compare` JSON. Reads files only; never runs a model.
#include <filesystem>
#include <optional>

#include <fmt/core.h>

#include "command_io.h"
#include "commands.h"
#include "common/atomic_output.h"
#include "report/report_builder.h"

namespace moeslice::app {

void add_report_command(CLI::App& app) {
  struct Options {
    std::string usage, compare, out, title;
    std::vector<std::string> plans;
    bool force = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "report", "Write an HTML report: expert usage, coverage, kept experts, sliced vs full");
  command->add_option("--usage", options->usage, "Usage profile (moeslice profile output)")
      ->required();
  command->add_option("--plan", options->plans,
                      "Keep plan JSON (repeatable; the first one is marked on the heatmaps)");
  command->add_option("--compare", options->compare, "Comparison JSON (moeslice compare output)");
  command->add_option("--out", options->out, "Output HTML file")->required();
  command->add_option("--title", options->title, "Page title (default: from the model's name)");
  command->add_flag("--force", options->force, "Replace an existing output file");
  command->callback([options] {
    CommandIo io;
    io.file(options->usage, "--usage").files(options->plans, "--plan");
    io.file(options->compare, "--compare").output(options->out, options->force);
    const std::vector<std::filesystem::path> plans(options->plans.begin(), options->plans.end());
    const std::optional<std::filesystem::path> compare =
        options->compare.empty() ? std::nullopt
                                 : std::optional<std::filesystem::path>(options->compare);
    const std::string html =
        build_report_from_files(options->usage, plans, compare, options->title);
    write_file_atomically(options->out, html, options->force);
    fmt::print("wrote {} ({:.1f} kB)\n", options->out, static_cast<double>(html.size()) / 1000.0);
  });
}

}  // namespace moeslice::app
