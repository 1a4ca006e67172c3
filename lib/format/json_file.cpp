// read_json_file: a whole file parsed, with errors that name it.
#include "format/json_file.h"

#include <fmt/core.h>

#include "common/error.h"
#include "common/io_rules.h"
#include "common/json_parse.h"

namespace moeslice {
namespace fs = std::filesystem;
using nlohmann::json;

json read_json_file(const fs::path& path) {
  if (!input_exists(path)) throw InputError(fmt::format("{} does not exist", path.string()));
  // A regular file of bounded size: a FIFO, a device or a directory is refused before reading.
  return parse_json(read_input_file(path, kMaxJsonFileBytes), path.string());
}

}  // namespace moeslice
