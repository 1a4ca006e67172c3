// UTF-8 helpers and ICU-backed normalisation and character properties for the tokenizer.
#include "text/tokenizer_unicode.h"

#include <cstring>

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/ustring.h>
#include <unicode/utypes.h>

#include <fmt/core.h>

#include "common/error.h"

namespace moeslice::text {

namespace {

// The valid range of the second byte of a sequence, by lead byte (Unicode Table 3-7); the third
// and fourth bytes are always 0x80..0xBF. `length` 0 marks a byte that cannot start a sequence.
struct LeadInfo {
  unsigned char length;
  unsigned char second_lo;
  unsigned char second_hi;
};

LeadInfo lead_info(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Length of the well-formed sequence at s[i], or 0 with *bad set to the length of the maximal
// ill-formed subpart (at least 1).
size_t sequence_at(std::string_view s, size_t i, size_t* bad) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  const LeadInfo info = lead_info(b0);
  if (info.length == 1) return 1;
  *bad = 1;
  if (info.length == 0 || i + 1 >= s.size()) return 0;
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < info.second_lo || b1 > info.second_hi) return 0;
  for (size_t k = 2; k < info.length; ++k) {
    *bad = k;
    if (i + k >= s.size()) return 0;
    const auto bk = static_cast<unsigned char>(s[i + k]);
    if (bk < 0x80 || bk > 0xBF) return 0;
  }
  return info.length;
}

const icu::Normalizer2& normalizer_for(NormalForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalForm::kNFC:
      n = icu::Normalizer2::getNFCInstance(status);
      break;
    case NormalForm::kNFD:
      n = icu::Normalizer2::getNFDInstance(status);
      break;
    case NormalForm::kNFKC:
      n = icu::Normalizer2::getNFKCInstance(status);
      break;
    case NormalForm::kNFKD:
      n = icu::Normalizer2::getNFKDInstance(status);
      break;
  }
  if (U_FAILURE(status) || n == nullptr) {
    throw Error(fmt::format("ICU normalizer unavailable: {}", u_errorName(status)));
  }
  return *n;
}

}  // namespace

size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII runs dominate real text; skip them eight bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t word;
      std::memcpy(&word, s.data() + i, 8);
      if (word & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= s.size()) break;
    size_t bad = 0;
    const size_t n = sequence_at(s, i, &bad);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

char32_t utf8_decode_at(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return b0;
  const size_t n = utf8_char_length(b0);
  char32_t c = b0 & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (size_t k = 1; k < n && i + k < s.size(); ++k) {
    c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  }
  return c;
}

char32_t utf8_decode_before(std::string_view s, size_t end, size_t* start) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  *start = i;
  return utf8_decode_at(s, i);
}

void utf8_append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    size_t bad = 0;
    const size_t n = sequence_at(bytes, i, &bad);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      i += bad;
    } else {
      out.append(bytes.substr(i, n));
      i += n;
    }
  }
  return out;
}

bool unicode_normalize(NormalForm form, std::string_view s, std::string& out) {
  // Below U+0300 no character decomposes, composes or combines under NFC (ICU's own
  // minimum for its quick check); in UTF-8 those are the bytes below 0xCC. The other forms
  // change some Latin-1 characters (NFD: accented letters; NFKC: U+00A0, superscripts), so only
  // ASCII is safe for them.
  const unsigned char limit = form == NormalForm::kNFC ? 0xCC : 0x80;
  bool fast = true;
  for (char ch : s) {
    if (static_cast<unsigned char>(ch) >= limit) {
      fast = false;
      break;
    }
  }
  if (fast) return false;

  const icu::Normalizer2& normalizer = normalizer_for(form);
  UErrorCode status = U_ZERO_ERROR;
  const icu::StringPiece piece(s.data(), static_cast<int32_t>(s.size()));
  if (normalizer.isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return false;
  status = U_ZERO_ERROR;
  std::string result;
  result.reserve(s.size() + s.size() / 8);
  icu::StringByteSink<std::string> sink(&result);
  normalizer.normalizeUTF8(0, piece, sink, nullptr, status);
  if (U_FAILURE(status)) {
    throw Error(fmt::format("ICU normalisation failed: {}", u_errorName(status)));
  }
  out = std::move(result);
  return true;
}

std::string unicode_lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      out += static_cast<char>(b0 >= 'A' && b0 <= 'Z' ? b0 + 32 : b0);
      ++i;
      continue;
    }
    const size_t n = utf8_char_length(b0);
    const char32_t c = utf8_decode_at(s, i);
    i += n;
    // One code point at a time, so that context-dependent rules (final sigma) do not apply,
    // matching Rust's per-char mapping.
    UChar src[2];
    int32_t src_len = 0;
    U16_APPEND_UNSAFE(src, src_len, static_cast<UChar32>(c));
    UChar dst[8];
    UErrorCode status = U_ZERO_ERROR;
    const int32_t dst_len = u_strToLower(dst, 8, src, src_len, "", &status);
    if (U_FAILURE(status)) {
      utf8_append(out, c);
      continue;
    }
    for (int32_t k = 0; k < dst_len;) {
      UChar32 lc;
      U16_NEXT_UNSAFE(dst, k, lc);
      utf8_append(out, static_cast<char32_t>(lc));
    }
  }
  return out;
}

bool is_unicode_whitespace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE) != 0;
}

bool is_word_character(char32_t c) {
  if (c < 0x80) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  const auto cp = static_cast<UChar32>(c);
  if (u_hasBinaryProperty(cp, UCHAR_ALPHABETIC) || u_hasBinaryProperty(cp, UCHAR_JOIN_CONTROL)) {
    return true;
  }
  const int8_t type = u_charType(cp);
  return type == U_NON_SPACING_MARK || type == U_ENCLOSING_MARK ||
         type == U_COMBINING_SPACING_MARK || type == U_DECIMAL_DIGIT_NUMBER ||
         type == U_CONNECTOR_PUNCTUATION;
}

}  // namespace moeslice::text
