// RunSettings handed to the forward pass.
#include "forward/run_settings.h"

#include <fmt/core.h>

#include "common/error.h"
#include "forward/forward_pass.h"
#include "forward/run_limits.h"

namespace moeslice {

ForwardOptions forward_options(const RunSettings& settings) {
  if (settings.threads > kMaxThreads)
    throw InputError(fmt::format("{} threads asked for; at most {} (0: one per core)",
                                 settings.threads, kMaxThreads));
  if (settings.max_seq > kMaxSequenceTokens)
    throw InputError(fmt::format("a window of {} tokens asked for; at most {}", settings.max_seq,
                                 kMaxSequenceTokens));
  ForwardOptions options;
  options.threads = settings.threads;
  options.max_seq = settings.max_seq;
  options.compute = settings.compute;
  return options;
}

}  // namespace moeslice
