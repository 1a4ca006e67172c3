// The safetensors format's entry in the format registry (format_registry.h).
#pragma once

#include "format/format_registry.h"

namespace moeslice {

// Claims directories (and paths that do not exist, so that SafetensorsCheckpoint::open says
// "model directory ... does not exist"); opens them as SafetensorsCheckpoint; writes with
// SafetensorsWriter.
const CheckpointFormat& safetensors_format();

}  // namespace moeslice
