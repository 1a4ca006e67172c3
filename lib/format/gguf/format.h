// The gguf entry of the format registry (format_registry.h).
#pragma once

#include "format/format_registry.h"

namespace moeslice {

// "gguf": a .gguf file, or the first part of a split model. Claims a regular file or a missing
// path whose name ends in .gguf (nothing is read).
const CheckpointFormat& gguf_format();

}  // namespace moeslice
