// The checkpoint formats moeslice reads and writes, and opening a checkpoint from a path by its
// format. A format is one folder under lib/format/ (gguf/, safetensors/) plus one entry here.
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "format/checkpoint_writer.h"
#include "format/tensor_store.h"

namespace moeslice {

struct CheckpointFormat {
  std::string_view name;    // "safetensors"; published: never renamed
  std::string_view layout;  // what a checkpoint in it looks like, for messages
  // Whether `path` is this format's to open, from its kind and name alone (nothing is read), so
  // that the format's own open() explains what is wrong with a broken one.
  bool (*claims)(const std::filesystem::path& path) = nullptr;
  // Opens and validates; throws InputError/FormatError naming the file.
  std::shared_ptr<const TensorStore> (*open)(const std::filesystem::path& path) = nullptr;
  const CheckpointWriter* writer = nullptr;
  // True for a format that claims paths by their file name (".gguf"): such formats are asked
  // first, before one that claims directories and missing paths of any name (safetensors).
  bool claims_by_name = false;
};

// Every known format, safetensors first (the order messages list them in).
std::span<const CheckpointFormat> checkpoint_formats();

// Opens `path` with the first format that claims it, asking those that claim by file name first.
// Throws UnsupportedError naming the path and listing the known formats when none does.
std::shared_ptr<const TensorStore> open_tensor_store(const std::filesystem::path& path);

// The format of that name; UnsupportedError listing the known ones when there is none.
const CheckpointFormat& checkpoint_format(std::string_view name);

// "safetensors (a directory with config.json and ...)", one per format, separated by "; ".
std::string known_checkpoint_formats();

}  // namespace moeslice
