// The HTML side of `moeslice report`: escaping, number formatting for people, and the document
// skeleton with its inline style sheet (screen and print). Nothing here refers to anything outside
// the page: no scripts, fonts, style sheets or images are loaded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace moeslice {

// Escapes text for HTML element content and attribute values (& < > " ').
std::string escape_html(std::string_view text);

// `value` with `decimals` digits after the point; "-" for NaN or infinity.
std::string format_fixed(double value, int decimals);
// A number with about `significant` significant digits, without exponent notation for ordinary
// magnitudes: 12.3, 0.0123, 1234.
std::string format_significant(double value, int significant = 3);
// A fraction as a percentage: 0.251 -> "25.1%".
std::string format_percent(double fraction, int decimals = 1);
// A signed change: "+0.80", "-1.2%".
std::string format_signed(double value, int decimals);
std::string format_signed_percent(double fraction, int decimals = 1);
// Large counts for people: 6900000000 -> "6.90B", 51200 -> "51.2k", 950 -> "950".
std::string format_count(double value);
// Byte sizes: 13800000000 -> "13.8 GB" (decimal units).
std::string format_bytes(double bytes);

// A whole page: <!DOCTYPE html>, <head> with the title and the style sheet, then `body`.
std::string html_page(std::string_view title, std::string_view body);

}  // namespace moeslice
