// Escaping, number formatting and the page skeleton with its style sheet (see html_writer.h).
#include "report/html_writer.h"

#include <cmath>

#include <fmt/core.h>

namespace moeslice {
namespace {

// The page's only style sheet. System fonts only; colours stay on when printed; figures and
// tables are never split across printed pages.
constexpr std::string_view kStyleSheet = R"css(
:root {
  --ink: #1d2330; --muted: #5f6b7a; --faint: #8a94a3; --rule: #dfe3ea; --panel: #f6f7f9;
  --accent: #3b5bdb; --good: #1b7f4b; --bad: #c2372f;
}
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body {
  margin: 0; background: #fff; color: var(--ink);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans",
    Arial, sans-serif;
}
main { max-width: 1200px; margin: 0 auto; padding: 28px 32px 40px; }
header.report { border-bottom: 1px solid var(--rule); padding-bottom: 18px; margin-bottom: 8px; }
header.report .kicker { color: var(--accent); font-weight: 600; font-size: 12px;
  letter-spacing: .08em; text-transform: uppercase; }
h1 { font-size: 26px; line-height: 1.25; margin: 4px 0 6px; font-weight: 650; }
h2 { font-size: 19px; margin: 34px 0 4px; font-weight: 650; }
h3 { font-size: 15px; margin: 20px 0 6px; font-weight: 600; }
p.lead { color: var(--muted); margin: 0 0 14px; max-width: 900px; }
p.note { color: var(--muted); font-size: 12.5px; margin: 6px 0 0; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono",
  monospace; font-size: 12.5px; }
.path { color: var(--muted); word-break: break-all; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(118px, 1fr));
  gap: 10px 18px; margin: 16px 0 0; }
dl.facts div { background: var(--panel); border-radius: 6px; padding: 8px 12px; }
dl.facts dt { color: var(--muted); font-size: 11.5px; text-transform: uppercase;
  letter-spacing: .05em; }
dl.facts dd { margin: 0; font-size: 17px; font-weight: 600; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
dl.facts dd .unit { font-size: 12px; font-weight: 400; color: var(--muted); }
dl.sources { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px;
  margin: 14px 0 0; font-size: 12.5px; }
dl.sources dt { color: var(--muted); }
dl.sources dd { margin: 0; }
nav.toc { margin: 14px 0 0; font-size: 13px; color: var(--muted); }
nav.toc a { color: var(--accent); text-decoration: none; margin-right: 14px; }
figure { margin: 14px 0 8px; break-inside: avoid; page-break-inside: avoid; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 6px; max-width: 900px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr));
  gap: 8px 28px; }
.grid.three { grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); }
.figrow { display: flex; flex-wrap: wrap; gap: 8px 32px; align-items: flex-start; }
.figrow figure { flex: 0 1 auto; }
.aside { flex: 1 1 240px; margin-top: 22px; font-size: 13px; }
.aside .big { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
.aside div + div { margin-top: 14px; }
.grid figure { margin-top: 6px; }
.figtitle { font-weight: 600; font-size: 13.5px; margin-bottom: 4px; }
.figtitle .sub { color: var(--muted); font-weight: 400; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px;
  break-inside: avoid; page-break-inside: avoid; }
.table-wrap { overflow-x: auto; margin: 12px 0 6px; }
th, td { padding: 6px 9px; border-bottom: 1px solid var(--rule); text-align: right;
  vertical-align: top; white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 11px; text-transform: uppercase;
  letter-spacing: .04em; border-bottom: 2px solid var(--rule); vertical-align: bottom;
  white-space: normal; min-width: 52px; }
th.l, td.l { text-align: left; }
td.wrap { white-space: normal; }
tr.full td { background: var(--panel); }
td .chg { display: block; font-size: 11.5px; }
.good { color: var(--good); } .bad { color: var(--bad); } .flat { color: var(--faint); }
.muted { color: var(--muted); }
.plan { border: 1px solid var(--rule); border-radius: 8px; padding: 12px 16px; margin: 14px 0;
  break-inside: avoid; page-break-inside: avoid; }
.plan h3 { margin: 0 0 2px; }
.plan table { margin-top: 8px; }
.plan td.ids { text-align: left; white-space: normal; font-family: ui-monospace, Menlo, Consolas,
  "DejaVu Sans Mono", monospace; font-size: 12px; }
.bar { display: inline-block; height: 8px; background: var(--accent); border-radius: 2px;
  vertical-align: middle; margin-right: 6px; opacity: .75; }
.empty { color: var(--muted); font-style: italic; }
footer { margin-top: 40px; padding-top: 12px; border-top: 1px solid var(--rule);
  color: var(--faint); font-size: 12px; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
  "DejaVu Sans", Arial, sans-serif; }
@media print {
  main { max-width: none; padding: 0; }
  nav.toc { display: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .table-wrap { overflow: visible; }
  .grid { grid-template-columns: 1fr 1fr; }
  @page { margin: 14mm; }
}
)css";

}  // namespace

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string format_fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "-";
  std::string text = fmt::format("{:.{}f}", value, decimals);
  if (text.find_first_not_of("-0.") == std::string::npos && text[0] == '-') text.erase(0, 1);
  return text;
}

std::string format_significant(double value, int significant) {
  if (!std::isfinite(value)) return "-";
  if (value == 0) return "0";
  const int magnitude = static_cast<int>(std::floor(std::log10(std::fabs(value))));
  const int decimals = std::max(0, significant - 1 - magnitude);
  return format_fixed(value, std::min(decimals, 8));
}

std::string format_percent(double fraction, int decimals) {
  if (!std::isfinite(fraction)) return "-";
  return format_fixed(100.0 * fraction, decimals) + "%";
}

std::string format_signed(double value, int decimals) {
  if (!std::isfinite(value)) return "-";
  const std::string text = format_fixed(value, decimals);
  return text[0] == '-' || text.find_first_not_of("0.") == std::string::npos ? text : "+" + text;
}

std::string format_signed_percent(double fraction, int decimals) {
  if (!std::isfinite(fraction)) return "-";
  return format_signed(100.0 * fraction, decimals) + "%";
}

std::string format_count(double value) {
  if (!std::isfinite(value)) return "-";
  const double magnitude = std::fabs(value);
  if (magnitude >= 1e12) return format_significant(value / 1e12, 3) + "T";
  if (magnitude >= 1e9) return format_significant(value / 1e9, 3) + "B";
  if (magnitude >= 1e6) return format_significant(value / 1e6, 3) + "M";
  if (magnitude >= 1e4) return format_significant(value / 1e3, 3) + "k";
  return format_fixed(value, 0);
}

std::string format_bytes(double bytes) {
  if (!std::isfinite(bytes)) return "-";
  const double magnitude = std::fabs(bytes);
  if (magnitude >= 1e12) return format_significant(bytes / 1e12, 3) + " TB";
  if (magnitude >= 1e9) return format_significant(bytes / 1e9, 3) + " GB";
  if (magnitude >= 1e6) return format_significant(bytes / 1e6, 3) + " MB";
  if (magnitude >= 1e3) return format_significant(bytes / 1e3, 3) + " kB";
  return format_fixed(bytes, 0) + " B";
}

std::string html_page(std::string_view title, std::string_view body) {
  std::string page;
  page.reserve(body.size() + kStyleSheet.size() + 512);
  page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  page += "<meta name=\"generator\" content=\"moeslice report\">\n";
  page += "<title>" + escape_html(title) + "</title>\n<style>";
  page += kStyleSheet;
  page += "</style>\n</head>\n<body>\n<main>\n";
  page += body;
  page += "</main>\n</body>\n</html>\n";
  return page;
}

}  // namespace moeslice
