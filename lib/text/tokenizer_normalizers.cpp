// The normalizer steps and their construction from tokenizer.json.
#include "text/tokenizer_normalizers.h"

#include <fmt/core.h>

#include "common/json_parse.h"

namespace moeslice::text {

namespace {

constexpr std::string_view kSupported =
    "NFC, NFD, NFKC, NFKD, Lowercase, Strip, Replace, Prepend, Sequence";

}  // namespace

std::shared_ptr<const Regex> pattern_from_json(const Json& obj, const JsonPlace& place) {
  const Json& pattern = json_required(obj, "pattern", place);
  const JsonPlace where = place.child("pattern");
  if (pattern.is_object()) {
    if (const Json* s = json_optional(pattern, "String", where); s != nullptr && s->is_string()) {
      return std::make_shared<const Regex>(s->get<std::string>(), Regex::Syntax::kLiteral,
                                           fmt::format("{}: {}", *place.file, where.path));
    }
    if (const Json* r = json_optional(pattern, "Regex", where); r != nullptr && r->is_string()) {
      return std::make_shared<const Regex>(r->get<std::string>(), Regex::Syntax::kRegex,
                                           fmt::format("{}: {}", *place.file, where.path));
    }
  }
  throw_format(where, fmt::format("expected {{\"String\": ...}} or {{\"Regex\": ...}}, found {}",
                                  json_excerpt(pattern)));
}

Normalizer Normalizer::from_json(const Json& value, const JsonPlace& place) {
  Normalizer n;
  if (!value.is_null()) n.add_from_json(value, place);
  return n;
}

void Normalizer::add_from_json(const Json& value, const JsonPlace& place) {
  const std::string type = json_type(value, place);
  Step step{};
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    step.kind = Step::Kind::kUnicode;
    step.form = type == "NFC"    ? NormalForm::kNFC
                : type == "NFD"  ? NormalForm::kNFD
                : type == "NFKC" ? NormalForm::kNFKC
                                 : NormalForm::kNFKD;
  } else if (type == "Lowercase") {
    step.kind = Step::Kind::kLowercase;
  } else if (type == "Strip") {
    step.kind = Step::Kind::kStrip;
    step.strip_left = json_bool_or(value, "strip_left", true, place);
    step.strip_right = json_bool_or(value, "strip_right", true, place);
  } else if (type == "Replace") {
    step.kind = Step::Kind::kReplace;
    step.pattern = pattern_from_json(value, place);
    step.content = json_string(value, "content", place);
  } else if (type == "Prepend") {
    step.kind = Step::Kind::kPrepend;
    step.content = json_string(value, "prepend", place);
  } else if (type == "Sequence") {
    const Json& list = json_required(value, "normalizers", place);
    if (!list.is_array()) throw_format(place.child("normalizers"), "expected a list");
    for (size_t i = 0; i < list.size(); ++i) {
      add_from_json(list[i], place.sequence_item("normalizers", i));
    }
    return;
  } else {
    throw_unsupported_type(place, "normalizer", type, kSupported);
  }
  steps_.push_back(std::move(step));
}

bool replace_all(const Regex& pattern, std::string_view content, std::string_view text,
                 std::string& out) {
  std::string result;
  size_t copied = 0;
  bool any = false;
  pattern.for_each_match(text, [&](size_t begin, size_t end) {
    if (end == begin) return;
    any = true;
    result.append(text.substr(copied, begin - copied));
    result.append(content);
    copied = end;
  });
  if (!any) return false;
  result.append(text.substr(copied));
  out = std::move(result);
  return true;
}

bool Normalizer::apply_step(const Step& step, std::string_view text, std::string& out) {
  switch (step.kind) {
    case Step::Kind::kUnicode:
      return unicode_normalize(step.form, text, out);
    case Step::Kind::kLowercase: {
      std::string lower = unicode_lowercase(text);
      if (lower == text) return false;
      out = std::move(lower);
      return true;
    }
    case Step::Kind::kStrip: {
      size_t begin = 0;
      size_t end = text.size();
      if (step.strip_left) {
        while (begin < end) {
          const char32_t c = utf8_decode_at(text, begin);
          if (!is_unicode_whitespace(c)) break;
          begin += utf8_char_length(static_cast<unsigned char>(text[begin]));
        }
      }
      if (step.strip_right) {
        while (end > begin) {
          size_t start = 0;
          const char32_t c = utf8_decode_before(text, end, &start);
          if (!is_unicode_whitespace(c)) break;
          end = start;
        }
      }
      if (begin == 0 && end == text.size()) return false;
      out = std::string(text.substr(begin, end - begin));
      return true;
    }
    case Step::Kind::kReplace:
      return replace_all(*step.pattern, step.content, text, out);
    case Step::Kind::kPrepend:
      // The reference library leaves empty text empty.
      if (text.empty()) return false;
      out = step.content;
      out.append(text);
      return true;
  }
  return false;
}

std::string_view Normalizer::apply(std::string_view text, std::string& buffer) const {
  std::string_view current = text;
  std::string scratch;
  for (const Step& step : steps_) {
    if (apply_step(step, current, scratch)) {
      buffer.swap(scratch);
      current = buffer;
    }
  }
  return current;
}

}  // namespace moeslice::text
