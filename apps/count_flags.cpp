// count_in_range: the validator behind every count flag (see count_flags.h).
#include "count_flags.h"

#include <charconv>
#include <string>

#include <fmt/core.h>

namespace moeslice::app {

CLI::Validator count_in_range(uint64_t min, uint64_t max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        uint64_t value = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
        const bool whole = error == std::errc() && end == text.data() + text.size();
        if (whole && value >= min && value <= max) return {};
        const std::string shown = text.size() > 24 ? text.substr(0, 24) + "..." : text;
        return fmt::format("expected a whole number from {} to {}, got '{}'", min, max, shown);
      },
      fmt::format("INT in [{} - {}]", min, max), "count");
}

}  // namespace moeslice::app
