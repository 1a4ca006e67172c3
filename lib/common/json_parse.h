// Parsing JSON text with a bound on nesting. nlohmann's parser keeps its own stack, but copying,
// comparing, dumping and walking a value recurse: an input nested 300,000 deep overflows the
// stack later, far from the parse. Every JSON the library reads goes through parse_json.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace moeslice {

// The deepest nesting of arrays and objects any JSON input may have. Real configs, plans,
// tokenizers and metadata nest fewer than 10 levels.
inline constexpr int kMaxJsonDepth = 256;

// The text is not JSON. what() is "<what>: not valid JSON (<detail>)"; detail() is nlohmann's
// description with the position and at most an excerpt of the input, for callers that word the
// message their own way.
class JsonSyntaxError : public FormatError {
 public:
  JsonSyntaxError(const std::string& what, std::string detail);
  const std::string& detail() const { return detail_; }

 private:
  std::string detail_;
};

// Throws FormatError "<what>: JSON nested more than <max_depth> levels deep (line L, column C)"
// when the arrays and objects of `text` nest deeper than `max_depth`. A linear scan that skips
// strings; it agrees with the parser up to the first syntax error, where the parser stops.
void check_json_depth(std::string_view text, const std::string& what,
                      int max_depth = kMaxJsonDepth);

// Parses `text` after check_json_depth. `what` names the input in messages: a file, "file:line",
// "--set KEY". Throws JsonSyntaxError when the text is not JSON; a FormatError thrown by
// `callback` passes through.
nlohmann::json parse_json(std::string_view text, const std::string& what,
                          int max_depth = kMaxJsonDepth,
                          const nlohmann::json::parser_callback_t& callback = nullptr);

// A JSON value as text, `indent` as nlohmann's dump. Strings that are not valid UTF-8 (GGUF
// strings are bytes; a file may hold anything) come out with U+FFFD for each invalid byte instead
// of nlohmann's type_error 316. Everything the library or the apps print as JSON goes through here.
std::string dump_json(const nlohmann::json& value, int indent = -1);

// A JSON value as a message quotes it: its compact text, cut to an excerpt (common/excerpt.h).
std::string json_excerpt(const nlohmann::json& value);

}  // namespace moeslice
