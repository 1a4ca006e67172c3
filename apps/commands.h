// The subcommands of `moeslice`. Each add_*_command registers one CLI11 subcommand whose callback
// parses nothing further and calls the library; errors propagate to main() as exceptions.
#pragma once

#include <CLI/CLI.hpp>

namespace moeslice::app {

void add_inspect_command(CLI::App& app);
void add_make_random_command(CLI::App& app);
void add_logits_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_profile_command(CLI::App& app);
void add_merge_command(CLI::App& app);
void add_rank_command(CLI::App& app);
void add_select_command(CLI::App& app);
void add_slice_command(CLI::App& app);
void add_unslice_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_report_command(CLI::App& app);

}  // namespace moeslice::app
