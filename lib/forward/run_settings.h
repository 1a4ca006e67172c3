// How a command runs the forward pass: threads, the longest window and the arithmetic. Every
// options struct that runs the model (ProfileOptions, SelectOptions, EvalOptions) embeds one
// RunSettings, so the three settings are declared, defaulted and handed to the pass in one place;
// apps/run_flags.h fills it from --threads, --max-seq and --compute.
#pragma once

#include <cstddef>

#include "forward/forward_config.h"

namespace moeslice {

struct ForwardOptions;

struct RunSettings {
  size_t threads = 0;  // 0: every hardware thread
  size_t max_seq = 0;  // longest window; 0: the model's max_position_embeddings
  // kBf16 makes the ForwardPass constructor throw UnsupportedError in a build without oneDNN.
  ComputeMode compute = ComputeMode::kFp32;
};

// The forward pass's options with these settings and every other option at its default.
ForwardOptions forward_options(const RunSettings& settings);

}  // namespace moeslice
