// Parsing and printing byte sizes.
#include "format/byte_size.h"

#include <cctype>
#include <exception>
#include <map>

#include <fmt/core.h>

#include "common/error.h"

namespace moeslice {

uint64_t parse_byte_size(const std::string& text) {
  size_t digits_end = 0;
  double number = 0;
  try {
    number = std::stod(text, &digits_end);
  } catch (const std::exception&) {
    digits_end = 0;
  }
  std::string unit = text.substr(digits_end);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::map<std::string, double> units = {{"", 1},
                                               {"B", 1},
                                               {"KB", 1e3},
                                               {"MB", 1e6},
                                               {"GB", 1e9},
                                               {"TB", 1e12},
                                               {"KIB", 1024.0},
                                               {"MIB", 1048576.0},
                                               {"GIB", 1073741824.0},
                                               {"TIB", 1099511627776.0}};
  const auto it = units.find(unit);
  // At least one byte, and below 2^64 so that the conversion to an integer is defined.
  const double bytes = it == units.end() ? 0 : number * it->second;
  if (digits_end == 0 || it == units.end() || !(bytes >= 1) || !(bytes < 0x1p64))
    throw InputError(
        fmt::format("cannot read size '{}': expected a positive number with an "
                    "optional unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. 5GB",
                    text));
  return static_cast<uint64_t>(bytes);
}

std::string byte_size_flag(uint64_t bytes) {
  struct Unit {
    uint64_t size;
    const char* name;
  };
  for (const Unit unit : {Unit{1'000'000'000'000, "TB"}, Unit{1'000'000'000, "GB"},
                          Unit{1'000'000, "MB"}, Unit{1'000, "KB"}})
    if (bytes >= unit.size && bytes % unit.size == 0)
      return fmt::format("{}{}", bytes / unit.size, unit.name);
  return fmt::format("{}B", bytes);
}

std::string format_byte_size(uint64_t bytes) {
  const double value = static_cast<double>(bytes);
  if (value >= 1e9) return fmt::format("{:.2f} GB", value / 1e9);
  if (value >= 1e6) return fmt::format("{:.2f} MB", value / 1e6);
  if (value >= 1e3) return fmt::format("{:.2f} kB", value / 1e3);
  return fmt::format("{} B", bytes);
}

}  // namespace moeslice
