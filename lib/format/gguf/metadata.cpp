// GgufValue (typed values, their JSON and encoding) and GgufMetadata (ordered keys, typed reads).
#include "format/gguf/metadata.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <utility>

#include <fmt/core.h>

#include "common/error.h"
#include "common/excerpt.h"
#include "common/json_parse.h"

namespace moeslice {
namespace {

struct TypeInfo {
  std::string_view name;
  uint64_t bytes;
};

constexpr TypeInfo kTypes[] = {
    {"UINT8", 1},  {"INT8", 1},    {"UINT16", 2},  {"INT16", 2},  {"UINT32", 4},
    {"INT32", 4},  {"FLOAT32", 4}, {"BOOL", 1},    {"STRING", 0}, {"ARRAY", 0},
    {"UINT64", 8}, {"INT64", 8},   {"FLOAT64", 8},
};

const TypeInfo& info(GgufType type) { return kTypes[static_cast<uint32_t>(type)]; }

bool is_signed(GgufType type) {
  return type == GgufType::kI8 || type == GgufType::kI16 || type == GgufType::kI32 ||
         type == GgufType::kI64;
}

bool is_unsigned(GgufType type) {
  return type == GgufType::kU8 || type == GgufType::kU16 || type == GgufType::kU32 ||
         type == GgufType::kU64;
}

bool is_float(GgufType type) { return type == GgufType::kF32 || type == GgufType::kF64; }

// The signed value of `bits` holding a two's complement integer of `bytes` bytes.
int64_t sign_extend(uint64_t bits, uint64_t bytes) {
  const unsigned shift = static_cast<unsigned>(64 - 8 * bytes);
  return static_cast<int64_t>(bits << shift) >> shift;
}

uint64_t load_le(const char* bytes, uint64_t count) {
  uint64_t value = 0;
  for (uint64_t i = count; i-- > 0;) value = value << 8 | static_cast<uint8_t>(bytes[i]);
  return value;
}

void store_le(std::string& out, uint64_t value, uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) out.push_back(static_cast<char>(value >> (8 * i) & 0xff));
}

void encode_string(std::string& out, const std::string& text) {
  store_le(out, text.size(), 8);
  out += text;
}

}  // namespace

std::optional<GgufType> gguf_type(uint32_t id) {
  if (id > static_cast<uint32_t>(GgufType::kF64)) return std::nullopt;
  return static_cast<GgufType>(id);
}

std::string_view gguf_type_name(GgufType type) { return info(type).name; }

uint64_t gguf_scalar_bytes(GgufType type) { return info(type).bytes; }

GgufValue GgufValue::scalar(GgufType type, uint64_t bits) {
  if (gguf_scalar_bytes(type) == 0)
    throw std::logic_error("GgufValue::scalar: " + std::string(gguf_type_name(type)) +
                           " is not a number or bool type");
  GgufValue value;
  value.type_ = type;
  const uint64_t bytes = gguf_scalar_bytes(type);
  value.bits_ = bytes == 8 ? bits : bits & ((uint64_t{1} << (8 * bytes)) - 1);
  return value;
}

GgufValue GgufValue::of_i32(int32_t value) {
  return scalar(GgufType::kI32, static_cast<uint32_t>(value));
}

GgufValue GgufValue::of_f32(float value) {
  return scalar(GgufType::kF32, std::bit_cast<uint32_t>(value));
}

GgufValue GgufValue::of_string(std::string text) {
  GgufValue value;
  value.type_ = GgufType::kString;
  value.string_ = std::move(text);
  return value;
}

GgufValue GgufValue::scalar_array(GgufType element_type, std::string bytes) {
  const uint64_t size = gguf_scalar_bytes(element_type);
  if (size == 0 || bytes.size() % size != 0)
    throw std::logic_error("GgufValue::scalar_array: bytes do not hold whole " +
                           std::string(gguf_type_name(element_type)) + " elements");
  GgufValue value;
  value.type_ = GgufType::kArray;
  value.element_type_ = element_type;
  value.count_ = bytes.size() / size;
  value.scalars_ = std::move(bytes);
  return value;
}

GgufValue GgufValue::string_array(std::vector<std::string> strings) {
  GgufValue value;
  value.type_ = GgufType::kArray;
  value.element_type_ = GgufType::kString;
  value.count_ = strings.size();
  value.strings_ = std::move(strings);
  return value;
}

GgufValue GgufValue::array_array(std::vector<GgufValue> arrays) {
  for (const auto& inner : arrays)
    if (inner.type_ != GgufType::kArray)
      throw std::logic_error("GgufValue::array_array: an element is not an array");
  GgufValue value;
  value.type_ = GgufType::kArray;
  value.element_type_ = GgufType::kArray;
  value.count_ = arrays.size();
  value.arrays_ = std::move(arrays);
  return value;
}

std::optional<uint64_t> GgufValue::as_uint() const {
  if (is_unsigned(type_)) return bits_;
  if (is_signed(type_)) {
    const int64_t value = sign_extend(bits_, gguf_scalar_bytes(type_));
    if (value >= 0) return static_cast<uint64_t>(value);
  }
  return std::nullopt;
}

std::optional<int64_t> GgufValue::as_int() const {
  if (is_signed(type_)) return sign_extend(bits_, gguf_scalar_bytes(type_));
  if (is_unsigned(type_) && bits_ <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return static_cast<int64_t>(bits_);
  return std::nullopt;
}

std::optional<double> GgufValue::as_double() const {
  if (type_ == GgufType::kF32) return std::bit_cast<float>(static_cast<uint32_t>(bits_));
  if (type_ == GgufType::kF64) return std::bit_cast<double>(bits_);
  if (is_unsigned(type_)) return static_cast<double>(bits_);
  if (is_signed(type_)) return static_cast<double>(sign_extend(bits_, gguf_scalar_bytes(type_)));
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (type_ != GgufType::kBool) return std::nullopt;
  return bits_ != 0;
}

const std::string* GgufValue::as_string() const {
  return type_ == GgufType::kString ? &string_ : nullptr;
}

GgufValue GgufValue::element(uint64_t index) const {
  if (type_ != GgufType::kArray || index >= count_)
    throw std::logic_error("GgufValue::element: not an array or index out of range");
  if (element_type_ == GgufType::kString) return of_string(strings_[index]);
  if (element_type_ == GgufType::kArray) return arrays_[index];
  const uint64_t size = gguf_scalar_bytes(element_type_);
  return scalar(element_type_, load_le(scalars_.data() + index * size, size));
}

nlohmann::json GgufValue::to_json() const {
  if (type_ == GgufType::kString) return string_;
  if (type_ == GgufType::kBool) return bits_ != 0;
  if (is_float(type_)) {
    const double value = *as_double();
    if (std::isfinite(value)) return value;
    return nullptr;  // JSON has no NaN or infinity
  }
  if (is_signed(type_)) return *as_int();
  if (is_unsigned(type_)) return bits_;
  nlohmann::json array = nlohmann::json::array();
  for (uint64_t i = 0; i < count_; ++i) array.push_back(element(i).to_json());
  return array;
}

std::string GgufValue::describe() const {
  if (type_ == GgufType::kArray)
    return fmt::format("ARRAY of {} {}", count_, gguf_type_name(element_type_));
  if (type_ == GgufType::kString) return fmt::format("STRING '{}'", excerpt(string_));
  return fmt::format("{} {}", gguf_type_name(type_), dump_json(to_json()));
}

void GgufValue::encode(std::string& out) const {
  switch (type_) {
    case GgufType::kString:
      encode_string(out, string_);
      return;
    case GgufType::kArray:
      store_le(out, static_cast<uint32_t>(element_type_), 4);
      store_le(out, count_, 8);
      if (element_type_ == GgufType::kString) {
        for (const auto& text : strings_) encode_string(out, text);
      } else if (element_type_ == GgufType::kArray) {
        for (const auto& inner : arrays_) inner.encode(out);
      } else {
        out += scalars_;
      }
      return;
    default:
      store_le(out, bits_, gguf_scalar_bytes(type_));
  }
}

uint64_t GgufValue::encoded_size() const {
  switch (type_) {
    case GgufType::kString:
      return 8 + string_.size();
    case GgufType::kArray: {
      uint64_t size = 12 + scalars_.size();
      for (const auto& text : strings_) size += 8 + text.size();
      for (const auto& inner : arrays_) size += inner.encoded_size();
      return size;
    }
    default:
      return gguf_scalar_bytes(type_);
  }
}

const GgufValue* GgufMetadata::find(std::string_view key) const {
  const auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

void GgufMetadata::set(const std::string& key, GgufValue value) {
  const auto it = index_.find(key);
  if (it != index_.end()) {
    entries_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(key, entries_.size());
  entries_.emplace_back(key, std::move(value));
}

bool GgufMetadata::erase(std::string_view key) {
  const auto it = index_.find(key);
  if (it == index_.end()) return false;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
  return true;
}

namespace {

// A key read with `read` (a GgufValue accessor returning an optional): nullopt when absent, a
// FormatError naming file and key when the value is not what `read` accepts.
template <class Read>
auto read_typed(const GgufMetadata& metadata, std::string_view key, std::string_view expected,
                Read read) -> decltype(read(std::declval<const GgufValue&>())) {
  const GgufValue* value = metadata.find(key);
  if (value == nullptr) return std::nullopt;
  auto result = read(*value);
  if (!result)
    throw FormatError(fmt::format("{}: metadata key '{}' holds {}, expected {}",
                                  metadata.source().string(), key, value->describe(), expected));
  return result;
}

}  // namespace

std::optional<uint64_t> GgufMetadata::get_uint(std::string_view key) const {
  return read_typed(*this, key, "a non-negative integer",
                    [](const GgufValue& value) { return value.as_uint(); });
}

std::optional<int64_t> GgufMetadata::get_int(std::string_view key) const {
  return read_typed(*this, key, "an integer",
                    [](const GgufValue& value) { return value.as_int(); });
}

std::optional<double> GgufMetadata::get_float(std::string_view key) const {
  return read_typed(*this, key, "a number",
                    [](const GgufValue& value) { return value.as_double(); });
}

std::optional<bool> GgufMetadata::get_bool(std::string_view key) const {
  return read_typed(*this, key, "a BOOL", [](const GgufValue& value) { return value.as_bool(); });
}

std::optional<std::string> GgufMetadata::get_string(std::string_view key) const {
  return read_typed(*this, key, "a STRING",
                    [](const GgufValue& value) -> std::optional<std::string> {
                      if (const std::string* text = value.as_string()) return *text;
                      return std::nullopt;
                    });
}

std::string GgufMetadata::architecture() const {
  const auto name = get_string("general.architecture");
  if (!name)
    throw FormatError(
        fmt::format("{}: metadata key 'general.architecture' is missing", source_.string()));
  return *name;
}

std::optional<uint64_t> GgufMetadata::arch_uint(std::string_view suffix) const {
  return get_uint(architecture() + "." + std::string(suffix));
}

}  // namespace moeslice
