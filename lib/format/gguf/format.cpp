// The gguf registry entry: which paths it claims, how it opens them.
#include "format/gguf/format.h"

#include "format/gguf/model.h"
#include "format/gguf/writer.h"

namespace moeslice {
namespace fs = std::filesystem;

namespace {

bool claims(const fs::path& path) {
  if (path.extension() != ".gguf") return false;
  std::error_code error;
  const auto status = fs::status(path, error);
  return status.type() == fs::file_type::not_found || status.type() == fs::file_type::regular;
}

std::shared_ptr<const TensorStore> open(const fs::path& path) { return GgufModel::open(path); }

}  // namespace

const CheckpointFormat& gguf_format() {
  static const GgufWriter writer;
  static const CheckpointFormat format{
      "gguf",  "a .gguf file, or the first part NAME-00001-of-0000N.gguf of a split model",
      claims,  open,
      &writer, /*claims_by_name=*/true};
  return format;
}

}  // namespace moeslice
