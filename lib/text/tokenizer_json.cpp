// Typed accessors for tokenizer.json values; every failure names the file and the JSON path.
#include "text/tokenizer_json.h"

#include <cstdint>

#include <fmt/core.h>

#include "common/error.h"
#include "common/json_parse.h"
#include "text/tokenizer_unicode.h"

namespace moeslice::text {

JsonPlace JsonPlace::child(std::string_view key) const {
  return {file, path.empty() ? std::string(key) : fmt::format("{}.{}", path, key), sequence_depth};
}

JsonPlace JsonPlace::index(size_t i) const {
  return {file, fmt::format("{}[{}]", path, i), sequence_depth};
}

JsonPlace JsonPlace::sequence_item(std::string_view key, size_t i) const {
  JsonPlace item = child(key).index(i);
  if (++item.sequence_depth > kMaxSequenceNesting)
    throw_format(item,
                 fmt::format("Sequence components nested more than {} deep", kMaxSequenceNesting));
  return item;
}

void throw_format(const JsonPlace& place, std::string_view what) {
  if (place.path.empty()) throw FormatError(fmt::format("{}: {}", *place.file, what));
  throw FormatError(fmt::format("{}: {}: {}", *place.file, place.path, what));
}

void throw_unsupported_type(const JsonPlace& place, std::string_view kind, std::string_view type,
                            std::string_view supported) {
  throw UnsupportedError(fmt::format("{}: {}: unsupported {} type '{}' (supported: {})",
                                     *place.file, place.path, kind, type, supported));
}

namespace {

const char* type_name(const Json& value) { return value.type_name(); }

void require_object(const Json& obj, const JsonPlace& place) {
  if (!obj.is_object()) {
    throw_format(place, fmt::format("expected a JSON object, found {}", type_name(obj)));
  }
}

}  // namespace

const Json& json_required(const Json& obj, std::string_view key, const JsonPlace& place) {
  require_object(obj, place);
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    throw_format(place, fmt::format("missing key '{}'", key));
  }
  return *it;
}

const Json* json_optional(const Json& obj, std::string_view key, const JsonPlace& place) {
  require_object(obj, place);
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string json_string(const Json& obj, std::string_view key, const JsonPlace& place) {
  const Json& value = json_required(obj, key, place);
  if (!value.is_string()) {
    throw_format(place.child(key), fmt::format("expected a string, found {}", type_name(value)));
  }
  return value.get<std::string>();
}

std::string json_string_or(const Json& obj, std::string_view key, std::string_view fallback,
                           const JsonPlace& place) {
  const Json* value = json_optional(obj, key, place);
  if (value == nullptr) return std::string(fallback);
  if (!value->is_string()) {
    throw_format(place.child(key), fmt::format("expected a string, found {}", type_name(*value)));
  }
  return value->get<std::string>();
}

bool json_bool_or(const Json& obj, std::string_view key, bool fallback, const JsonPlace& place) {
  const Json* value = json_optional(obj, key, place);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) {
    throw_format(place.child(key),
                 fmt::format("expected true or false, found {}", type_name(*value)));
  }
  return value->get<bool>();
}

int64_t json_int_or(const Json& obj, std::string_view key, int64_t fallback,
                    const JsonPlace& place) {
  const Json* value = json_optional(obj, key, place);
  if (value == nullptr) return fallback;
  if (!value->is_number_integer()) {
    throw_format(place.child(key),
                 fmt::format("expected an integer, found {}", json_excerpt(*value)));
  }
  return value->get<int64_t>();
}

int32_t json_token_id(const Json& value, const JsonPlace& place) {
  if (!value.is_number_integer()) {
    throw_format(place,
                 fmt::format("expected a token id (integer), found {}", json_excerpt(value)));
  }
  const int64_t id = value.is_number_unsigned() && value.get<uint64_t>() > INT32_MAX
                         ? int64_t{INT32_MAX} + 1
                         : value.get<int64_t>();
  if (id < 0 || id > INT32_MAX) {
    throw_format(place, fmt::format("token id {} is out of range [0, 2^31)", json_excerpt(value)));
  }
  return static_cast<int32_t>(id);
}

std::string json_type(const Json& obj, const JsonPlace& place) {
  return json_string(obj, "type", place);
}

std::string json_single_char(const Json& obj, std::string_view key, const JsonPlace& place) {
  std::string value = json_string(obj, key, place);
  if (value.empty() || find_invalid_utf8(value) != std::string_view::npos ||
      utf8_char_length(static_cast<unsigned char>(value[0])) != value.size()) {
    throw_format(place.child(key),
                 fmt::format("expected exactly one character, found \"{}\"", value));
  }
  return value;
}

}  // namespace moeslice::text
