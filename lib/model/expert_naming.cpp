// Writing and reading expert tensor name prefixes.
#include "model/expert_naming.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace moeslice {
namespace {

constexpr std::string_view kLayer = "{layer}";
constexpr std::string_view kExpert = "{expert}";

std::string substitute(std::string text, std::string_view placeholder, int64_t value) {
  const size_t at = text.find(placeholder);
  return text.replace(at, placeholder.size(), std::to_string(value));
}

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

void require_placeholder(const std::string& text, std::string_view placeholder) {
  const size_t at = text.find(placeholder);
  const size_t after = at + placeholder.size();
  if (at == std::string::npos || text.find(placeholder, after) != std::string::npos ||
      after >= text.size() || is_digit(text[after]) || text[after] == '{')
    throw std::invalid_argument("expert_prefix '" + text + "' must hold " +
                                std::string(placeholder) +
                                " once, followed by text that is not a digit");
}

}  // namespace

ExpertNaming::ExpertNaming(std::string prefix_template) : template_(std::move(prefix_template)) {
  require_placeholder(template_, kLayer);
  require_placeholder(template_, kExpert);
  if (std::count(template_.begin(), template_.end(), '{') != 2)
    throw std::invalid_argument("expert_prefix '" + template_ +
                                "' may hold no placeholder but {layer} and {expert}");
}

std::string ExpertNaming::prefix(int64_t layer, int64_t expert) const {
  return substitute(substitute(template_, kLayer, layer), kExpert, expert);
}

std::optional<ExpertNaming::Parsed> ExpertNaming::parse(std::string_view name) const {
  Parsed parsed;
  size_t at = 0;  // in name
  for (size_t from = 0; from < template_.size();) {
    const size_t open = template_.find('{', from);
    const std::string_view literal =
        std::string_view(template_).substr(from, open == std::string::npos ? open : open - from);
    if (name.substr(at, literal.size()) != literal) return std::nullopt;
    at += literal.size();
    if (open == std::string::npos) break;
    const bool layer = template_.compare(open, kLayer.size(), kLayer) == 0;
    size_t end = at;
    while (end < name.size() && end - at < 18 && is_digit(name[end])) ++end;
    if (end == at || (name[at] == '0' && end - at > 1)) return std::nullopt;
    int64_t value = 0;
    for (size_t i = at; i < end; ++i) value = value * 10 + (name[i] - '0');
    (layer ? parsed.layer : parsed.expert) = value;
    at = end;
    from = open + (layer ? kLayer : kExpert).size();
  }
  parsed.suffix = name.substr(at);
  return parsed;
}

}  // namespace moeslice
