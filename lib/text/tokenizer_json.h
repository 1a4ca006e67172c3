// Reading tokenizer.json: typed accessors that turn a missing key or a wrong JSON type into a
// FormatError naming the file and the JSON path, and the refusal of unknown component types.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace moeslice::text {

using Json = nlohmann::json;

// How deep Sequence normalizers, pre-tokenizers, post-processors and decoders may nest inside one
// another. Published tokenizers nest at most two; the components are read recursively.
inline constexpr int kMaxSequenceNesting = 16;

// Where a JSON value sits: the file and the path inside it ("pre_tokenizer.pretokenizers[0]"),
// and how many Sequence components enclose it.
struct JsonPlace {
  const std::string* file;
  std::string path;
  int sequence_depth = 0;

  JsonPlace child(std::string_view key) const;
  JsonPlace index(size_t i) const;
  // The place of item i of a Sequence component's list `key`; FormatError when that nests
  // Sequences more than kMaxSequenceNesting deep.
  JsonPlace sequence_item(std::string_view key, size_t i) const;
};

[[noreturn]] void throw_format(const JsonPlace& place, std::string_view what);

// Throws UnsupportedError: "<file>: <path>: unsupported <kind> type '<type>' (supported: ...)".
[[noreturn]] void throw_unsupported_type(const JsonPlace& place, std::string_view kind,
                                         std::string_view type, std::string_view supported);

// `obj` must be an object; returns obj[key], which must exist and not be null.
const Json& json_required(const Json& obj, std::string_view key, const JsonPlace& place);
// obj[key], or nullptr when absent or null.
const Json* json_optional(const Json& obj, std::string_view key, const JsonPlace& place);

std::string json_string(const Json& obj, std::string_view key, const JsonPlace& place);
std::string json_string_or(const Json& obj, std::string_view key, std::string_view fallback,
                           const JsonPlace& place);
bool json_bool_or(const Json& obj, std::string_view key, bool fallback, const JsonPlace& place);
int64_t json_int_or(const Json& obj, std::string_view key, int64_t fallback,
                    const JsonPlace& place);
// A token id: an integer in [0, 2^31).
int32_t json_token_id(const Json& value, const JsonPlace& place);
// The "type" member of a component object.
std::string json_type(const Json& obj, const JsonPlace& place);
// A string that must hold exactly one Unicode character (Metaspace replacement, Strip content).
std::string json_single_char(const Json& obj, std::string_view key, const JsonPlace& place);

}  // namespace moeslice::text
