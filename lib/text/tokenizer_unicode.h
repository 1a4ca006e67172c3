// Unicode helpers for the tokenizer: UTF-8 validation, decoding and repair, normalisation forms
// (through ICU) and the character classes that the Hugging Face library takes from Rust's
// `char` and `regex` (White_Space, \w).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace moeslice::text {

// Byte offset of the first byte that does not start a well-formed UTF-8 sequence, or npos.
size_t find_invalid_utf8(std::string_view s);

// Length of the sequence that `lead` starts (1 for ASCII and for stray bytes).
inline size_t utf8_char_length(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// The code point at s[i]; s must be valid UTF-8 and i a character boundary.
char32_t utf8_decode_at(std::string_view s, size_t i);
// The code point that ends right before s[end] (end > 0, a character boundary); sets *start.
char32_t utf8_decode_before(std::string_view s, size_t end, size_t* start);
void utf8_append(std::string& out, char32_t c);

// Replaces every ill-formed sequence with U+FFFD, one per maximal ill-formed subpart, as Rust's
// String::from_utf8_lossy does (and the Unicode standard recommends).
std::string utf8_lossy(std::string_view bytes);

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// Writes the normal form of `s` (valid UTF-8) into `out` and returns true, or returns false
// without touching `out` when `s` is already in that form. Text made only of code points below
// U+0300 (NFC) or of ASCII (the other forms) is answered without calling ICU.
bool unicode_normalize(NormalForm form, std::string_view s, std::string& out);

// Lowercases code point by code point with the full (unconditional) Unicode mapping, like
// Rust's char::to_lowercase, which the Lowercase normalizer applies to each char.
std::string unicode_lowercase(std::string_view s);

// Unicode White_Space: Rust's char::is_whitespace and the `\s` of Rust's regex crate.
bool is_unicode_whitespace(char32_t c);
// Rust regex `\w`: Alphabetic, marks, decimal digits, connector punctuation, joiners.
bool is_word_character(char32_t c);

}  // namespace moeslice::text
