// Parsing and resolving `--keep` amounts.
#include "rank/keep_amount.h"

#include <cctype>
#include <cmath>
#include <stdexcept>

#include <fmt/core.h>

#include "common/error.h"

namespace moeslice {
namespace {

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// Digits with at most one decimal point that has digits on both sides.
bool is_decimal(std::string_view text) {
  const size_t dot = text.find('.');
  if (dot == std::string_view::npos) return all_digits(text);
  return all_digits(text.substr(0, dot)) && all_digits(text.substr(dot + 1));
}

}  // namespace

KeepAmount parse_keep_amount(std::string_view text) {
  KeepAmount keep;
  keep.text = std::string(text);
  const auto fail = [&text](std::string_view why) {
    throw InputError(fmt::format("keep amount '{}': {}", text, why));
  };
  constexpr std::string_view kExpected =
      "expected a percentage of the experts per layer such as 25% or 12.5%, or a count such as 16";
  if (!text.empty() && text.back() == '%') {
    const std::string_view number = text.substr(0, text.size() - 1);
    if (!is_decimal(number) || number.size() > 32) fail(kExpected);
    keep.percent = true;
    keep.value = std::stod(std::string(number));
    if (!(keep.value > 0.0) || keep.value > 100.0)
      fail("a percentage must be more than 0% and at most 100%");
    return keep;
  }
  if (!all_digits(text) || text.size() > 9) fail(kExpected);
  keep.value = static_cast<double>(std::stoll(std::string(text)));
  if (keep.value < 1) fail("a count must be at least 1");
  return keep;
}

int64_t resolve_keep_count(const KeepAmount& keep, int64_t experts, int64_t shared) {
  const int64_t count =
      keep.percent
          ? static_cast<int64_t>(std::llround(keep.value * static_cast<double>(experts) / 100.0))
          : static_cast<int64_t>(keep.value);
  const std::string shared_note =
      shared > 0 ? fmt::format(" ({} shared, always kept, + 1 routed)", shared) : std::string();
  if (count < shared + 1)
    throw InputError(
        fmt::format("keep amount '{}' keeps {} of {} experts per layer; at least {} "
                    "are needed{}",
                    keep.text, count, experts, shared + 1, shared_note));
  if (count > experts)
    throw InputError(
        fmt::format("keep amount '{}' keeps {} experts per layer, but layers have "
                    "only {}",
                    keep.text, count, experts));
  return count;
}

}  // namespace moeslice
