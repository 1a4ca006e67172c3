// Registration and parsing of the checkpoint-output flags (see checkpoint_output_flags.h).
#include "checkpoint_output_flags.h"

#include <fmt/core.h>

#include "format/byte_size.h"

namespace moeslice::app {

uint64_t CheckpointOutputFlags::max_shard_bytes() const { return parse_byte_size(max_shard_size); }

void add_checkpoint_output_flags(CLI::App& command, CheckpointOutputFlags& flags) {
  command.add_option(
      "--max-shard-size", flags.max_shard_size,
      fmt::format("Largest shard, e.g. 5GB or 500MB ({})", byte_size_flag(kDefaultMaxShardBytes)));
  command.add_flag("--force", flags.force, "Replace an existing output directory");
}

}  // namespace moeslice::app
