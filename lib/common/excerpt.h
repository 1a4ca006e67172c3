// Quoting input in messages: at most a few dozen bytes of it, so that a 100 MB bad line gives a
// one-line message.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace moeslice {

// How many bytes of input a message quotes at most.
inline constexpr size_t kMaxExcerptBytes = 48;

// `text` as a message may quote it: control bytes escaped (\n, \t, \xNN), and when it is longer
// than `max_bytes`, its first bytes (cut at a UTF-8 character boundary) followed by
// "... (N bytes)".
std::string excerpt(std::string_view text, size_t max_bytes = kMaxExcerptBytes);

}  // namespace moeslice
