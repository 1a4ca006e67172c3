// GPT-2's byte-to-character table: byte-level BPE vocabularies spell each byte as a printable
// code point (the 188 printable bytes as themselves, the other 68 as U+0100 upward) so that
// every token is a valid string.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace moeslice::text {

// The code point that spells byte `b`.
char32_t byte_level_char(uint8_t b);
// The UTF-8 encoding of byte_level_char(b).
std::string_view byte_level_utf8(uint8_t b);
// Maps a byte-level spelled string back to bytes, appending to `out`; returns false (leaving
// `out` partly written) when a character is not one of the 256 byte characters.
bool byte_level_decode(std::string_view spelled, std::string& out);
// Spells raw bytes with the byte-level characters.
std::string byte_level_encode(std::string_view bytes);

}  // namespace moeslice::text
