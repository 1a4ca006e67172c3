// Reading a whole JSON file (configs, indexes, plans, metadata beside a checkpoint).
#pragma once

#include <filesystem>

#include <nlohmann/json.hpp>

namespace moeslice {

// Reads a JSON file; InputError naming the file when it is missing or unreadable, FormatError
// when it is not JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace moeslice
