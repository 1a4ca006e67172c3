// Checks of numeric flags with readable ranges: "--max-docs: expected a whole number from 1 to
// 1000000000, got 0" rather than a 300-digit bound or a conversion failure.
#pragma once

#include <cstdint>

#include <CLI/CLI.hpp>

namespace moeslice::app {

// Largest document, token or step count a flag takes (2^53: exact in a double as well).
inline constexpr uint64_t kMaxCountFlag = uint64_t{1} << 53;

// A whole number in [min, max].
CLI::Validator count_in_range(uint64_t min, uint64_t max);

}  // namespace moeslice::app
