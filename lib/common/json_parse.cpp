// parse_json: JSON text parsed with nesting bounded before nlohmann sees it, and syntax errors
// that quote at most an excerpt of the input.
#include "common/json_parse.h"

#include <algorithm>
#include <utility>

#include <fmt/core.h>

#include "common/excerpt.h"

namespace moeslice {
namespace {

// nlohmann's message without its "[json.exception.parse_error.101] " prefix, and with the
// "last read: '...'" token (which can be the whole rest of a truncated input) shortened.
std::string describe(const nlohmann::json::exception& error) {
  std::string_view message = error.what();
  if (const size_t close = message.find("] ");
      message.starts_with("[json.exception.") && close != std::string_view::npos)
    message.remove_prefix(close + 2);
  constexpr std::string_view kLastRead = "last read: '";
  const size_t read = message.find(kLastRead);
  if (read == std::string_view::npos) return std::string(message.substr(0, 4 * kMaxExcerptBytes));
  const size_t token_begin = read + kLastRead.size();
  // The token ends at the quote before "; expected ..." or at the last quote of the message.
  size_t token_end = message.rfind("'; expected ");
  if (token_end == std::string_view::npos || token_end < token_begin)
    token_end = message.ends_with('\'') ? message.size() - 1 : message.size();
  return fmt::format("{}{}'{}", message.substr(0, token_begin),
                     excerpt(message.substr(token_begin, token_end - token_begin)),
                     message.substr(std::min(token_end + 1, message.size())));
}

}  // namespace

JsonSyntaxError::JsonSyntaxError(const std::string& what, std::string detail)
    : FormatError(fmt::format("{}: not valid JSON ({})", what, detail)),
      detail_(std::move(detail)) {}

void check_json_depth(std::string_view text, const std::string& what, int max_depth) {
  int depth = 0;
  bool in_string = false;
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '\n') {
      ++line;
      line_start = i + 1;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        throw FormatError(fmt::format(
            "{}: JSON nested more than {} levels deep (line {}, column {}); the limit keeps a "
            "crafted file from exhausting the stack",
            what, max_depth, line, i - line_start + 1));
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

nlohmann::json parse_json(std::string_view text, const std::string& what, int max_depth,
                          const nlohmann::json::parser_callback_t& callback) {
  check_json_depth(text, what, max_depth);
  try {
    return nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::exception& error) {
    // parse_error, and out_of_range 406 for a number beyond a double ("1e400").
    throw JsonSyntaxError(what, describe(error));
  }
}

std::string dump_json(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string json_excerpt(const nlohmann::json& value) { return excerpt(dump_json(value)); }

}  // namespace moeslice
