// Packing plain values and vectors of them into a byte string and reading them back in the same
// order: what ranks of one job send each other (common/cluster.h). Same program, same machine
// type on every rank, so values travel in their in-memory representation; a short or malformed
// message is a bug, reported with std::logic_error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace moeslice {

class BytePacker {
 public:
  template <typename T>
  void put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  template <typename T>
  void put_vector(const std::vector<T>& values) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<uint64_t>(values.size());
    bytes_.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  }
  void put_string(const std::string& text) {
    put<uint64_t>(text.size());
    bytes_.append(text);
  }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class ByteUnpacker {
 public:
  explicit ByteUnpacker(const std::string& bytes) : bytes_(bytes) {}

  template <typename T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, take(sizeof(T)), sizeof(T));
    return value;
  }
  template <typename T>
  std::vector<T> get_vector() {
    const uint64_t count = get<uint64_t>();
    if (count > (bytes_.size() - at_) / sizeof(T)) throw std::logic_error("short rank message");
    std::vector<T> values(count);
    if (count > 0) std::memcpy(values.data(), take(count * sizeof(T)), count * sizeof(T));
    return values;
  }
  std::string get_string() {
    const uint64_t size = get<uint64_t>();
    const char* begin = take(size);
    return std::string(begin, size);
  }
  bool done() const { return at_ == bytes_.size(); }

 private:
  const char* take(size_t size) {
    if (size > bytes_.size() - at_) throw std::logic_error("short rank message");
    const char* begin = bytes_.data() + at_;
    at_ += size;
    return begin;
  }

  const std::string& bytes_;
  size_t at_ = 0;
};

}  // namespace moeslice
