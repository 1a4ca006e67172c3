// GGUF metadata: every GGUF value type (numbers, bool, string, arrays, arrays of arrays) as typed
// values, the key-value pairs of a file in their order, and typed accessors that the inspector and
// the slicer read them with (a key of an unexpected type is a FormatError naming file and key).
//
// Thread safety: values and GgufMetadata are plain data; concurrent reads are safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moeslice {

// The value types of GGUF metadata, by their id in the file.
enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// The type of an id; nullopt for an id GGUF does not define.
std::optional<GgufType> gguf_type(uint32_t id);
// "UINT32", "STRING", ... as gguf-py's GGUFValueType spells them.
std::string_view gguf_type_name(GgufType type);
// Bytes of one value of a number or bool type; 0 for STRING and ARRAY.
uint64_t gguf_scalar_bytes(GgufType type);

// One metadata value. Numbers and bools keep their exact type and bits; arrays keep their element
// type (arrays of numbers as their little-endian bytes, so a 150,000-token score list stays one
// buffer).
class GgufValue {
 public:
  GgufValue() = default;
  // A number or bool of `type` from its little-endian bits (the low gguf_scalar_bytes(type)).
  static GgufValue scalar(GgufType type, uint64_t bits);
  static GgufValue of_u32(uint32_t value) { return scalar(GgufType::kU32, value); }
  static GgufValue of_u16(uint16_t value) { return scalar(GgufType::kU16, value); }
  static GgufValue of_i32(int32_t value);
  static GgufValue of_u64(uint64_t value) { return scalar(GgufType::kU64, value); }
  static GgufValue of_f32(float value);
  static GgufValue of_bool(bool value) { return scalar(GgufType::kBool, value ? 1 : 0); }
  static GgufValue of_string(std::string value);
  // An array of numbers or bools of `element_type` from its elements' little-endian bytes.
  static GgufValue scalar_array(GgufType element_type, std::string bytes);
  static GgufValue string_array(std::vector<std::string> strings);
  // An array of arrays; `element_type` is kArray.
  static GgufValue array_array(std::vector<GgufValue> arrays);

  GgufType type() const { return type_; }
  // Numbers: the value when it is an integer of any type and fits the result; nullopt otherwise.
  std::optional<uint64_t> as_uint() const;
  std::optional<int64_t> as_int() const;
  // Any number type (integers converted).
  std::optional<double> as_double() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;

  // Arrays.
  GgufType element_type() const { return element_type_; }
  uint64_t size() const { return count_; }
  // Element `index` of an array (a scalar, a string or an array).
  GgufValue element(uint64_t index) const;

  // The value as JSON: numbers, bools, strings, arrays of them.
  nlohmann::json to_json() const;
  // "UINT32 7", "STRING 'olmoe'", "ARRAY of 50304 STRING": for messages and inspect.
  std::string describe() const;
  // Appends the encoding of the value (without its type id) to `out`, as a GGUF file holds it.
  void encode(std::string& out) const;
  // Bytes encode() appends.
  uint64_t encoded_size() const;

  bool operator==(const GgufValue& other) const = default;

 private:
  GgufType type_ = GgufType::kU8;
  uint64_t bits_ = 0;   // a number or bool
  std::string string_;  // a STRING
  GgufType element_type_ = GgufType::kU8;
  uint64_t count_ = 0;   // an ARRAY's element count
  std::string scalars_;  // an array of numbers or bools: the elements' bytes
  std::vector<std::string> strings_;
  std::vector<GgufValue> arrays_;
};

// The metadata of a GGUF file: key-value pairs in file order, keys unique.
class GgufMetadata {
 public:
  GgufMetadata() = default;
  // `source` is the file messages about a key name.
  explicit GgufMetadata(std::filesystem::path source) : source_(std::move(source)) {}

  const std::filesystem::path& source() const { return source_; }
  const std::vector<std::pair<std::string, GgufValue>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  const GgufValue* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  // Replaces the value of `key` where it stands, or appends the pair.
  void set(const std::string& key, GgufValue value);
  // Removes `key`; false when absent.
  bool erase(std::string_view key);

  // Typed reads: nullopt when the key is absent; FormatError naming the file and the key when it
  // holds another type (or an integer out of the result's range).
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  // `general.architecture`; FormatError naming the file when absent or not a string.
  std::string architecture() const;
  // `{architecture}.{suffix}` as an unsigned integer ("expert_count"); nullopt when absent.
  std::optional<uint64_t> arch_uint(std::string_view suffix) const;

 private:
  std::filesystem::path source_;
  std::vector<std::pair<std::string, GgufValue>> entries_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace moeslice
