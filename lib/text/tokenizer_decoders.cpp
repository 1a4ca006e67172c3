// The decoder steps, each a transformation of the list of token strings (the reference's
// decode_chain); the final text is their concatenation.
#include "text/tokenizer_decoders.h"

#include <fmt/core.h>

#include "text/tokenizer_byte_level.h"
#include "text/tokenizer_normalizers.h"
#include "text/tokenizer_unicode.h"

namespace moeslice::text {

namespace {

constexpr std::string_view kSupported =
    "ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence";

// "<0x41>" -> 0x41; -1 for anything else.
int byte_fallback_value(std::string_view token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') return -1;
  int value = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = token[i];
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

}  // namespace

Decoder Decoder::from_json(const Json& value, const JsonPlace& place) {
  Decoder d;
  if (value.is_null()) return d;
  d.present_ = true;
  d.add_from_json(value, place);
  return d;
}

void Decoder::add_from_json(const Json& value, const JsonPlace& place) {
  const std::string type = json_type(value, place);
  Step step;
  if (type == "Sequence") {
    const Json& list = json_required(value, "decoders", place);
    if (!list.is_array()) throw_format(place.child("decoders"), "expected a list");
    for (size_t i = 0; i < list.size(); ++i) {
      add_from_json(list[i], place.sequence_item("decoders", i));
    }
    return;
  }
  if (type == "ByteLevel") {
    step.kind = Step::Kind::kByteLevel;
  } else if (type == "Metaspace") {
    step.kind = Step::Kind::kMetaspace;
    step.text = json_single_char(value, "replacement", place);
    const std::string scheme = json_string_or(value, "prepend_scheme", "", place);
    // Every scheme but "never" drops the replacement characters of the first token.
    step.flag =
        scheme.empty() ? json_bool_or(value, "add_prefix_space", true, place) : scheme != "never";
  } else if (type == "Replace") {
    step.kind = Step::Kind::kReplace;
    step.pattern = pattern_from_json(value, place);
    step.text = json_string(value, "content", place);
  } else if (type == "ByteFallback") {
    step.kind = Step::Kind::kByteFallback;
  } else if (type == "Fuse") {
    step.kind = Step::Kind::kFuse;
  } else if (type == "Strip") {
    step.kind = Step::Kind::kStrip;
    step.text = json_single_char(value, "content", place);
    const int64_t start = json_int_or(value, "start", 0, place);
    const int64_t stop = json_int_or(value, "stop", 0, place);
    if (start < 0 || stop < 0) throw_format(place, "Strip start and stop must not be negative");
    step.start = static_cast<size_t>(start);
    step.stop = static_cast<size_t>(stop);
  } else {
    throw_unsupported_type(place, "decoder", type, kSupported);
  }
  steps_.push_back(std::move(step));
}

void Decoder::apply(const Step& step, std::vector<std::string>& tokens) {
  switch (step.kind) {
    case Step::Kind::kByteLevel: {
      // All tokens at once: a character's bytes may be split across tokens.
      std::string bytes;
      for (const std::string& token : tokens) {
        const size_t mark = bytes.size();
        if (!byte_level_decode(token, bytes)) {
          // A token spelled outside the byte alphabet (an added token) is taken as it is.
          bytes.resize(mark);
          bytes.append(token);
        }
      }
      tokens.assign(1, utf8_lossy(bytes));
      return;
    }
    case Step::Kind::kMetaspace:
      for (size_t i = 0; i < tokens.size(); ++i) {
        std::string out;
        out.reserve(tokens[i].size());
        const std::string& t = tokens[i];
        for (size_t at = 0; at < t.size();) {
          if (t.compare(at, step.text.size(), step.text) == 0) {
            if (!(i == 0 && step.flag)) out += ' ';
            at += step.text.size();
          } else {
            out += t[at++];
          }
        }
        tokens[i] = std::move(out);
      }
      return;
    case Step::Kind::kReplace:
      for (std::string& token : tokens) {
        std::string out;
        if (replace_all(*step.pattern, step.text, token, out)) token = std::move(out);
      }
      return;
    case Step::Kind::kByteFallback: {
      std::vector<std::string> result;
      result.reserve(tokens.size());
      std::string pending;  // bytes of consecutive <0xXX> tokens
      size_t pending_count = 0;
      auto flush = [&] {
        if (pending_count == 0) return;
        if (find_invalid_utf8(pending) == std::string::npos) {
          result.push_back(pending);
        } else {
          // The reference emits one U+FFFD per byte token when the bytes are not valid UTF-8.
          for (size_t k = 0; k < pending_count; ++k) result.emplace_back("\xEF\xBF\xBD");
        }
        pending.clear();
        pending_count = 0;
      };
      for (std::string& token : tokens) {
        const int value = byte_fallback_value(token);
        if (value >= 0) {
          pending += static_cast<char>(value);
          ++pending_count;
        } else {
          flush();
          result.push_back(std::move(token));
        }
      }
      flush();
      tokens = std::move(result);
      return;
    }
    case Step::Kind::kFuse: {
      std::string all;
      for (const std::string& token : tokens) all += token;
      tokens.assign(1, std::move(all));
      return;
    }
    case Step::Kind::kStrip:
      for (std::string& token : tokens) {
        size_t begin = 0;
        for (size_t k = 0; k < step.start && token.compare(begin, step.text.size(), step.text) == 0;
             ++k) {
          begin += step.text.size();
        }
        size_t end = token.size();
        for (size_t k = 0; k < step.stop && end >= begin + step.text.size() &&
                           token.compare(end - step.text.size(), step.text.size(), step.text) == 0;
             ++k) {
          end -= step.text.size();
        }
        token = token.substr(begin, end - begin);
      }
      return;
  }
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  if (!present_) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) joined += ' ';
      joined += tokens[i];
    }
    return joined;
  }
  for (const Step& step : steps_) apply(step, tokens);
  std::string text;
  for (const std::string& token : tokens) text += token;
  return text;
}

}  // namespace moeslice::text
