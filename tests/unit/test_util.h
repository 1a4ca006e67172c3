// Helpers shared by the unit tests: scratch directories, files of raw bytes, safetensors images
// built by hand, and checks on the type and the text of a thrown error.
#pragma once

#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include <doctest/doctest.h>

namespace moeslice::test {

namespace fs = std::filesystem;

// A fresh directory under the system temporary directory, removed with everything in it when the
// object goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "moeslice-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("cannot create a temporary directory from " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  fs::path operator/(std::string_view name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline std::vector<std::byte> bytes_of(std::string_view text) {
  const auto view = std::as_bytes(std::span(text.data(), text.size()));
  return {view.begin(), view.end()};
}

inline void append(std::vector<std::byte>& out, std::span<const std::byte> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

inline void append(std::vector<std::byte>& out, std::string_view text) {
  append(out, bytes_of(text));
}

inline void append_u64_le(std::vector<std::byte>& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>((value >> (8 * i)) & 0xffu));
}

inline void write_file(const fs::path& path, std::span<const std::byte> bytes) {
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream.write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  if (!stream) throw std::runtime_error("cannot write " + path.string());
}

inline void write_file(const fs::path& path, std::string_view text) {
  write_file(path, bytes_of(text));
}

inline std::vector<std::byte> read_file(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw std::runtime_error("cannot read " + path.string());
  std::vector<char> chars{std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
  std::vector<std::byte> bytes(chars.size());
  for (size_t i = 0; i < chars.size(); ++i) bytes[i] = static_cast<std::byte>(chars[i]);
  return bytes;
}

inline std::string read_text(const fs::path& path) {
  const auto bytes = read_file(path);
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// A safetensors file image: the 8-byte little-endian header length (the header's own length
// unless `declared_length` says otherwise), the header text exactly as given, then `data`.
inline std::vector<std::byte> safetensors_image(std::string_view header,
                                                std::span<const std::byte> data = {},
                                                std::optional<uint64_t> declared_length = {}) {
  std::vector<std::byte> image;
  append_u64_le(image, declared_length.value_or(header.size()));
  append(image, header);
  append(image, data);
  return image;
}

// `count` bytes 0, 1, 2, ... (mod 251, so that every tensor's bytes differ from its neighbours').
inline std::vector<std::byte> counting_bytes(size_t count, unsigned start = 0) {
  std::vector<std::byte> bytes(count);
  for (size_t i = 0; i < count; ++i) bytes[i] = static_cast<std::byte>((start + i) % 251);
  return bytes;
}

// Runs `action` and returns the message of the `Expected` it throws. Records a failure (and
// returns "") when it throws nothing or something else: a FormatError test must not pass on a
// std::bad_alloc or a json exception that escaped the parser.
template <class Expected, class Action>
std::string thrown_message(Action&& action) {
  try {
    action();
  } catch (const Expected& error) {
    return error.what();
  } catch (const std::exception& error) {
    FAIL_CHECK("expected " << std::string(typeid(Expected).name()) << ", caught "
                           << std::string(typeid(error).name()) << ": "
                           << std::string(error.what()));
    return {};
  }
  FAIL_CHECK("expected " << std::string(typeid(Expected).name()) << ", but nothing was thrown");
  return {};
}

// Every part must appear in the message.
inline void check_mentions(const std::string& message,
                           std::initializer_list<std::string_view> parts) {
  for (const auto part : parts)
    CHECK_MESSAGE(message.find(part) != std::string::npos,
                  "message \"" << message << "\" does not mention \"" << std::string(part) << "\"");
}

}  // namespace moeslice::test
