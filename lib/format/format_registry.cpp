// The format registry: the list of known formats and the choice among them. Adding a format adds
// one line to checkpoint_formats().
#include "format/format_registry.h"

#include <fmt/core.h>

#include "common/error.h"
#include "format/gguf/format.h"
#include "format/safetensors/format.h"

namespace moeslice {

std::span<const CheckpointFormat> checkpoint_formats() {
  static const CheckpointFormat formats[] = {safetensors_format(), gguf_format()};
  return formats;
}

std::string known_checkpoint_formats() {
  std::string text;
  for (const CheckpointFormat& format : checkpoint_formats())
    text += fmt::format("{}{} ({})", text.empty() ? "" : "; ", format.name, format.layout);
  return text;
}

std::shared_ptr<const TensorStore> open_tensor_store(const std::filesystem::path& path) {
  for (const bool by_name : {true, false})
    for (const CheckpointFormat& format : checkpoint_formats())
      if (format.claims_by_name == by_name && format.claims(path)) return format.open(path);
  throw UnsupportedError(fmt::format("{} is not a checkpoint in a format moeslice reads; known: {}",
                                     path.string(), known_checkpoint_formats()));
}

const CheckpointFormat& checkpoint_format(std::string_view name) {
  for (const CheckpointFormat& format : checkpoint_formats())
    if (format.name == name) return format;
  throw UnsupportedError(
      fmt::format("unknown checkpoint format '{}'; known: {}", name, known_checkpoint_formats()));
}

}  // namespace moeslice
