// The flags shared by every command that runs the model (logits, profile, select, eval,
// compare): --threads, --max-seq and --compute, parsed into the library's RunSettings.
#pragma once

#include <CLI/CLI.hpp>

#include "forward/run_settings.h"

namespace moeslice::app {

// Registers the flags on `command`; `settings` must outlive the parse (keep it in the command's
// shared options). A --compute other than fp32 or bf16 is a command-line error (exit 2).
void add_run_flags(CLI::App& command, RunSettings& settings);

}  // namespace moeslice::app
