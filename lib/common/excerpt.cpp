// excerpt: a bounded, printable quote of input for messages.
#include "common/excerpt.h"

#include <fmt/core.h>

namespace moeslice {
namespace {

bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

void append_escaped(std::string& out, char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (c == '\n') {
    out += "\\n";
  } else if (c == '\t') {
    out += "\\t";
  } else if (c == '\r') {
    out += "\\r";
  } else if (byte < 0x20 || byte == 0x7F) {
    out += fmt::format("\\x{:02X}", byte);
  } else {
    out += c;
  }
}

}  // namespace

std::string excerpt(std::string_view text, size_t max_bytes) {
  size_t shown = text.size();
  if (text.size() > max_bytes) {
    shown = max_bytes;
    // Back up to the start of a character, unless the text is not UTF-8 there at all.
    size_t start = shown;
    while (start > 0 && shown - start < 4 && is_continuation_byte(text[start])) --start;
    if (start > 0 && !is_continuation_byte(text[start])) shown = start;
  }
  std::string out;
  out.reserve(shown + 24);
  for (size_t i = 0; i < shown; ++i) append_escaped(out, text[i]);
  if (shown < text.size()) out += fmt::format("... ({} bytes)", text.size());
  return out;
}

}  // namespace moeslice
