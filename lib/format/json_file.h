// Reading a whole JSON file (configs, indexes, plans, metadata beside a checkpoint).
#pragma once

#include <filesystem>

#include <nlohmann/json.hpp>

namespace moeslice {

// Reads a JSON file; InputError naming the file when it is missing or unreadable, FormatError
// when it is not JSON or nests deeper than kMaxJsonDepth (common/json_parse.h).
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace moeslice
