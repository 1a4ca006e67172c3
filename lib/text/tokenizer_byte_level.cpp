// The byte-level alphabet of GPT-2 (bytes_to_unicode) and its inverse.
#include "text/tokenizer_byte_level.h"

#include <array>

#include "text/tokenizer_unicode.h"

namespace moeslice::text {

namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8{};
  // Code points 0..0x143 cover the whole alphabet; -1 marks a character outside it.
  std::array<int16_t, 0x144> to_byte{};

  Tables() {
    to_byte.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_char[b] = printable ? static_cast<char32_t>(b) : next++;
      to_byte[to_char[b]] = static_cast<int16_t>(b);
      utf8_append(to_utf8[b], to_char[b]);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_level_char(uint8_t b) { return tables().to_char[b]; }

std::string_view byte_level_utf8(uint8_t b) { return tables().to_utf8[b]; }

bool byte_level_decode(std::string_view spelled, std::string& out) {
  const Tables& t = tables();
  size_t i = 0;
  while (i < spelled.size()) {
    const auto lead = static_cast<unsigned char>(spelled[i]);
    const size_t n = utf8_char_length(lead);
    if (i + n > spelled.size()) return false;
    const char32_t c = utf8_decode_at(spelled, i);
    if (c >= t.to_byte.size() || t.to_byte[c] < 0) return false;
    out += static_cast<char>(static_cast<uint8_t>(t.to_byte[c]));
    i += n;
  }
  return true;
}

std::string byte_level_encode(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) out += t.to_utf8[static_cast<uint8_t>(ch)];
  return out;
}

}  // namespace moeslice::text
