// Registration of the shared forward-pass flags (see run_flags.h).
#include "run_flags.h"

#include <map>
#include <string>

#include "count_flags.h"
#include "forward/run_limits.h"

namespace moeslice::app {

void add_run_flags(CLI::App& command, RunSettings& settings) {
  command.add_option("--threads", settings.threads, "Threads (0: all cores)")
      ->check(count_in_range(0, kMaxThreads));
  command
      .add_option("--max-seq", settings.max_seq,
                  "Cut longer documents into independent windows of at most N tokens (default: "
                  "the model's max_position_embeddings)")
      ->check(count_in_range(1, kMaxSequenceTokens));
  std::map<std::string, ComputeMode> modes;
  for (const ComputeMode mode : {ComputeMode::kFp32, ComputeMode::kBf16})
    modes.emplace(compute_mode_name(mode), mode);
  command
      .add_option("--compute", settings.compute,
                  "Arithmetic: fp32 (default), or bf16 (BF16 weights and activations, fp32 "
                  "accumulation, as a transformers bf16 run; needs a build with oneDNN)")
      ->transform(CLI::CheckedTransformer(modes))
      ->option_text("fp32|bf16");
}

}  // namespace moeslice::app
