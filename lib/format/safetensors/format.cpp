// The safetensors registry entry: which paths it claims, how it opens and writes them.
#include "format/safetensors/format.h"

#include "format/safetensors/checkpoint.h"
#include "format/safetensors/writer.h"

namespace moeslice {
namespace fs = std::filesystem;

namespace {

bool claims(const fs::path& path) {
  std::error_code error;
  return fs::is_directory(path, error) || !fs::exists(path, error);
}

std::shared_ptr<const TensorStore> open(const fs::path& path) {
  return SafetensorsCheckpoint::open(path);
}

}  // namespace

const CheckpointFormat& safetensors_format() {
  static const SafetensorsWriter writer;
  static const CheckpointFormat format{
      "safetensors",
      "a directory with config.json and model.safetensors, or shards listed in "
      "model.safetensors.index.json",
      claims, open, &writer};
  return format;
}

}  // namespace moeslice
