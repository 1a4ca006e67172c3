// read_json_file: a whole file parsed, with errors that name it.
#include "format/json_file.h"

#include <fstream>
#include <sstream>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"

namespace moeslice {
namespace fs = std::filesystem;
using nlohmann::json;

json read_json_file(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) {
    if (!fs::exists(path)) throw InputError(fmt::format("{} does not exist", path.string()));
    throw InputError(fmt::format("cannot read {}", path.string()));
  }
  std::ostringstream buffer;
  buffer << stream.rdbuf();
  return parse_json(buffer.str(), path.string());
}

}  // namespace moeslice
