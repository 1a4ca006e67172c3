// The flags shared by every command that writes a checkpoint directory (make-random, slice,
// unslice): --max-shard-size and --force.
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "format/byte_size.h"

namespace moeslice::app {

struct CheckpointOutputFlags {
  std::string max_shard_size = byte_size_flag(kDefaultMaxShardBytes);
  bool force = false;

  // --max-shard-size in bytes; InputError naming the text when it is not a size.
  uint64_t max_shard_bytes() const;
};

// Registers the flags on `command`; `flags` must outlive the parse (keep it in the command's
// shared options).
void add_checkpoint_output_flags(CLI::App& command, CheckpointOutputFlags& flags);

}  // namespace moeslice::app
