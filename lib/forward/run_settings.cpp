// RunSettings handed to the forward pass.
#include "forward/run_settings.h"

#include "forward/forward_pass.h"

namespace moeslice {

ForwardOptions forward_options(const RunSettings& settings) {
  ForwardOptions options;
  options.threads = settings.threads;
  options.max_seq = settings.max_seq;
  options.compute = settings.compute;
  return options;
}

}  // namespace moeslice
